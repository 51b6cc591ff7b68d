"""Import every method module of a family package so its `@register_model` decorators run."""

from __future__ import annotations

import importlib
import pkgutil


def import_all(package_name: str, package_path) -> None:
    """Import each non-private module of a package (one file per method)."""
    for info in sorted(pkgutil.iter_modules(package_path), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package_name}.{info.name}")
