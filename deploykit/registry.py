"""One generic registry: register by name, get with close-name suggestions, discovery by package scan.

Models, graph patches (and, as they move onto it, backends and metrics) keep their entries in a
`Registry`. A duplicate name is an error, not a warning; an unknown name raises the registry's
error class with the closest names; `discover` imports every non-private module of a package so a
new file registers itself without editing a list (a module left out of a hand-written list used to
be silently never registered).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Callable, Generic, Iterator, Optional, TypeVar

from .errors import BadInputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind.

    Args:
        kind: what an entry is, for messages ("model", "graph patch").
        error: the exception raised for an unknown name (a BadInputError subclass).
        hint: what to tell the user when no close name exists (default: the known names).
    """

    def __init__(self, kind: str, error: type[BadInputError] = BadInputError, hint: Optional[str] = None) -> None:
        self.kind = kind
        self.error = error
        self.hint = hint
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        """Add `entry` under `name`; ValueError if the name is taken (a duplicate is a bug)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice; names must be unique")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        """The entry registered as `name`; `self.error` with the closest names otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = (f"did you mean {', '.join(close)}?" if close else
                    self.hint or f"known: {', '.join(sorted(self._entries)) or 'none'}")
            raise self.error(f"unknown {self.kind} {name!r}; {hint}") from None

    def names(self, where: Optional[Callable[[T], bool]] = None) -> list[str]:
        """Registered names, sorted; only those whose entry satisfies `where` if given."""
        return sorted(n for n, e in self._entries.items() if where is None or where(e))

    def values(self) -> Iterator[T]:
        return iter(list(self._entries.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)


def discover(package_name: str, package_path, skip: tuple[str, ...] = ()) -> list[str]:
    """Import each non-private module of a package (so its registration decorators run).

    Returns:
        The imported module names, sorted.
    """
    found = []
    for info in sorted(pkgutil.iter_modules(package_path), key=lambda i: i.name):
        if not info.name.startswith("_") and info.name not in skip:
            importlib.import_module(f"{package_name}.{info.name}")
            found.append(info.name)
    return found
