"""One `Backend` record per engine backend, registered once (mmdeploy's backend manager is the model).

A record is plain data (torch-free, and it imports no backend library): its name, what it needs
to run here (`available()`), the file suffixes it loads when a manifest names no backend, its
priority for `--backend auto`, its `Engine` subclass and its builder module as import-path strings,
and how `deploykit bench` and `deploykit doctor` show it. The builder is named by a string because
building sits above the runtime (`deploykit/build/backends/NAME.py`): the runtime never imports it.

Each record lives in its own module of `deploykit/runtime/backends/`, found by package scan:

    >>> from deploykit.runtime import backend
    >>> [b.name for b in backend.by_priority()]
    ['tensorrt', 'openvino', 'onnxruntime']
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from ..errors import BadInputError
from ..registry import Registry, discover

# a doctor row: {"backend": label, "usable": bool, "why": str}
DoctorRows = Callable[[Mapping[str, Any]], list]


@dataclasses.dataclass(frozen=True)
class BenchVariant:
    """One `deploykit bench --backends` entry of a backend.

    Attributes:
        name: the `--backends` name, e.g. "ort-int8".
        build: BuildOptions fields for `EngineFromOnnx` (e.g. {"int8": True}); None times the exported
            ONNX model itself, unbuilt.
    """

    name: str
    build: Optional[Mapping[str, Any]] = None


@dataclasses.dataclass(frozen=True)
class Backend:
    """What deploykit knows about one backend.

    Attributes:
        name: the `--backend` name and the manifest's `engine.backend`.
        engine: the Engine subclass, "module:Class".
        builder: the module with `preflight(options)` and `build(onnx_path, manifest, options, out_dir,
            calibration=None) -> BuildResult` (in `deploykit.build.backends`).
        probe: `() -> None` when the backend can run here, else the reason (with what to install).
        summary: one line said when it is usable (`auto`'s reason, doctor's row).
        device: "CPU" or "GPU"; `auto` on a CPU times every usable CPU backend and keeps the fastest.
        priority: `auto` takes the usable backend of the highest priority.
        suffixes: artifact suffixes this backend loads when the manifest names no backend.
        bench: its `deploykit bench --backends` entries.
        title: doctor's label; default the name.
        doctor: `(facts) -> rows` replacing the default single row (facts: doctor's `gpus`, `providers`).
    """

    name: str
    engine: str
    builder: str
    probe: Callable[[], Optional[str]]
    summary: str
    device: str = "CPU"
    priority: int = 0
    suffixes: tuple[str, ...] = ()
    bench: tuple[BenchVariant, ...] = ()
    title: str = ""
    doctor: Optional[DoctorRows] = None

    def available(self) -> Optional[str]:
        """None when the backend can run here, else why not (a probe that raises is a reason too)."""
        try:
            return self.probe()
        except Exception as exc:  # noqa: BLE001  (a broken install is reported, never raised)
            return f"{self.name} probe failed: {type(exc).__name__}: {exc}"

    def engine_class(self) -> type:
        module, _, cls = self.engine.partition(":")
        return getattr(importlib.import_module(module), cls)

    def engine_options(self) -> tuple[str, ...]:
        """The keyword options its Engine takes (`Engine.load(path, **options)`), from its signature."""
        params = list(inspect.signature(self.engine_class().__init__).parameters.values())[3:]  # self, path, manifest
        return tuple(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))

    def doctor_rows(self, facts: Mapping[str, Any]) -> list[dict]:
        if self.doctor is not None:
            return self.doctor(facts)
        why = self.available()
        return [{"backend": self.title or self.name, "usable": why is None, "why": why or self.summary}]


_REGISTRY: Registry[Backend] = Registry("backend")


def register(record: Backend) -> Backend:
    """Add a backend record (a second one of the same name is an error)."""
    return _REGISTRY.register(record.name, record)


def _load() -> None:
    """Import every module of `deploykit.runtime.backends` (package scan: a new file registers itself)."""
    package = importlib.import_module(f"{__package__}.backends")
    discover(package.__name__, package.__path__)


def get(name: str) -> Backend:
    """The record named `name`; BadInputError with the closest names otherwise."""
    _load()
    return _REGISTRY.get(name)


def names() -> list[str]:
    _load()
    return _REGISTRY.names()


def by_priority() -> list[Backend]:
    """Every record, highest `auto` priority first (ties by name)."""
    _load()
    return sorted(_REGISTRY.values(), key=lambda b: (-b.priority, b.name))


def for_artifact(path: Path, manifest: Mapping[str, Any]) -> Backend:
    """The backend that loads `path`: the one its manifest names, else the one claiming its suffix."""
    engine = manifest.get("engine") if isinstance(manifest.get("engine"), dict) else {}
    name = engine.get("backend")
    if not name:
        claims = [b for b in by_priority() if path.suffix in b.suffixes]
        if not claims:
            raise BadInputError(f"{path}: no backend loads {path.suffix!r} files and its manifest names none; "
                                f"known backends: {', '.join(names())}")
        return claims[0]
    if name not in names():
        raise BadInputError(f"{path}: its manifest names backend {name!r}, which is not registered here; known "
                            f"backends: {', '.join(names())}")
    return get(name)

