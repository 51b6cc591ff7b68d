"""Import every method module of a family package so its `@register_model` decorators run."""

from __future__ import annotations

from ..registry import discover


def import_all(package_name: str, package_path) -> None:
    """Import each non-private module of a package (one file per method)."""
    discover(package_name, package_path)
