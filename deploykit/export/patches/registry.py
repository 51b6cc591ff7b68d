"""The graph-patch registry: one `Patch` per module, registered by decorator.

A patch module defines `match(graph) -> list[Match]` and `rewrite(graph, match) -> None` and
registers them with `@register_patch(name, order=..., default=...)` on its `match` function:

    @register_patch("focal-fold", order=40)
    def match(graph): ...

    def rewrite(graph, m): ...

`match` finds occurrences by op type and graph structure, never by tensor names. `rewrite` edits
the graph in place for one match and leaves clean-up (dead nodes, topological order, shape
inference) to the driver (`driver.apply_patches`), which alone runs those.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, Callable, Iterable, Optional, Sequence

from ...registry import Registry, discover


@dataclasses.dataclass(frozen=True)
class Match:
    """One occurrence of a pattern.

    Attributes:
        nodes: the anchor nodes of the occurrence (the first is the one named in reports).
        info: pattern facts `rewrite` needs (axes, sizes, tensors), computed once by `match`.
    """

    nodes: tuple
    info: dict = dataclasses.field(default_factory=dict, compare=False)

    def describe(self) -> str:
        first = self.nodes[0] if self.nodes else None
        where = f"{first.op} {first.name!r}" if first is not None else "graph"
        return f"{where} (+{len(self.nodes) - 1} nodes)" if len(self.nodes) > 1 else where


MatchFn = Callable[[Any], list]
RewriteFn = Callable[[Any, Match], None]


@dataclasses.dataclass(frozen=True)
class Patch:
    """A registered graph pass.

    Attributes:
        name: registry name (`--patch NAME`), lower-case with hyphens.
        match: `graph -> list[Match]`; an empty list means the graph has no such pattern.
        module: the module defining it, whose `rewrite(graph, match) -> None` edits the graph in place.
        order: position in the pipeline (lower runs first).
        default: part of the default set that `deploykit export` applies.
    """

    name: str
    match: MatchFn
    module: str
    order: int
    default: bool

    @property
    def rewrite(self) -> RewriteFn:
        return sys.modules[self.module].rewrite

    @property
    def summary(self) -> str:
        """First line of the module docstring."""
        doc = (sys.modules[self.module].__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


_REGISTRY: Registry[Patch] = Registry("graph patch", hint="`deploykit patch --list` shows them")
# modules of this package that are not patches; every other non-private module is one
_NOT_PATCHES = ("registry", "driver")


def register_patch(name: str, *, order: int, default: bool = True) -> Callable[[MatchFn], MatchFn]:
    """Decorator on a patch module's `match`: registers it with the module's `rewrite`.

    Args:
        name: the patch name.
        order: pipeline position (lower first).
        default: whether `deploykit export` applies it without `--patch`; default True.

    Raises:
        ValueError: the name is registered twice (checked here), or the module defines no
            `rewrite` (checked when the registry loads the module).
    """

    def deco(match_fn: MatchFn) -> MatchFn:
        _REGISTRY.register(name, Patch(name, match_fn, match_fn.__module__, order, default))
        return match_fn

    return deco


def _load() -> None:
    """Import every patch module of this package (package scan: a new file registers itself)."""
    package = sys.modules[__package__]
    for mod in discover(__package__, package.__path__, skip=_NOT_PATCHES):
        module = sys.modules[f"{__package__}.{mod}"]
        if not callable(getattr(module, "rewrite", None)):
            raise ValueError(f"graph patch module {module.__name__} defines no rewrite(graph, match)")


def names(default_only: bool = False) -> list[str]:
    """Registered patch names in pipeline order; only the default set with `default_only`."""
    _load()
    return [p.name for p in sorted(_REGISTRY.values(), key=lambda p: p.order) if p.default or not default_only]


def get(name: str) -> Patch:
    """The patch registered as `name`.

    Raises:
        BadInputError: unknown name, with the closest registered names.
    """
    _load()
    return _REGISTRY.get(name)


def resolve(selected: Optional[Iterable[str]]) -> list[Patch]:
    """The patches to run, in pipeline order: the default set for None, else exactly `selected`."""
    chosen: Sequence[str] = names(default_only=True) if selected is None else list(dict.fromkeys(selected))
    return sorted((get(n) for n in chosen), key=lambda p: p.order)
