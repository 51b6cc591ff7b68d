"""One `Engine` interface over the backends (Polygraphy's runner pattern).

An engine is an artifact file plus its manifest. `Engine.load` picks the backend from the
manifest (or the file suffix), validates every feed against the manifest's input specs, and
imports the backend library lazily so a missing one fails with the extra to install.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .. import manifest as mf
from ..errors import BadInputError
from ..manifest import TensorSpec

_BACKENDS: dict[str, Callable[..., "Engine"]] = {}
_SUFFIX_BACKEND = {".onnx": "onnxruntime", ".plan": "tensorrt", ".engine": "tensorrt"}


def register_backend(name: str):
    """Class decorator: make an Engine subclass loadable as backend `name`."""

    def deco(cls):
        if name in _BACKENDS:
            raise ValueError(f"backend {name!r} is registered twice")
        _BACKENDS[name] = cls
        cls.backend = name
        return cls

    return deco


def backends() -> list[str]:
    """Names of the registered backends (whether or not their library is installed)."""
    _import_backends()
    return sorted(_BACKENDS)


def _import_backends() -> None:
    from . import onnxruntime_backend  # noqa: F401  (registers; imports onnxruntime lazily)
    from . import tensorrt_backend  # noqa: F401  (registers; imports tensorrt and cuda-python lazily)
    from . import openvino_backend  # noqa: F401  (registers; imports openvino lazily)


class Engine:
    """Base class: `activate() / infer(feeds) / deactivate()` and a context manager.

    Attributes:
        path: the artifact file.
        manifest: the parsed manifest beside it.
        inputs: input TensorSpecs from the manifest.
        outputs: output TensorSpecs from the manifest.
    """

    backend = "base"

    def __init__(self, path: str | os.PathLike, manifest: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.manifest = dict(manifest)
        self.inputs: list[TensorSpec] = mf.inputs_of(manifest)
        self.outputs: list[TensorSpec] = mf.outputs_of(manifest)
        self.active = False

    @staticmethod
    def load(path: str | os.PathLike, manifest_path: Optional[str | os.PathLike] = None, **options) -> "Engine":
        """Open an engine artifact with the backend its manifest names.

        Args:
            path: `.onnx` (ONNX Runtime) or `.plan` (TensorRT) file.
            manifest_path: default: `<stem>.manifest.json` beside `path`.
            **options: backend options (e.g. `threads` for ONNX Runtime).
        """
        p = Path(path)
        if not p.is_file():
            raise BadInputError(f"engine file {p} does not exist; build one with `deploykit export` "
                                f"or `deploykit build-engine`")
        man = mf.read(manifest_path or mf.manifest_path_for(p))
        name = man.get("engine", {}).get("backend") or _SUFFIX_BACKEND.get(p.suffix)
        _import_backends()
        if name not in _BACKENDS:
            raise BadInputError(f"{p}: no backend for {name or p.suffix!r}; known backends: {sorted(_BACKENDS)}")
        return _BACKENDS[name](p, man, **options)

    # -- lifecycle -------------------------------------------------------------------------------
    def activate(self) -> "Engine":
        if not self.active:
            self._activate()
            self.active = True
        return self

    def deactivate(self) -> None:
        if self.active:
            self._deactivate()
            self.active = False

    def __enter__(self) -> "Engine":
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    # -- inference -------------------------------------------------------------------------------
    def infer(self, feeds: Mapping[str, np.ndarray], check_finite: bool = True) -> dict[str, np.ndarray]:
        """Run one forward pass.

        Args:
            feeds: `{input name: array}` matching the manifest's input specs exactly.
            check_finite: reject NaN/Inf inputs (default True).

        Returns:
            `{output name: array}` in manifest order.

        Raises:
            BadInputError: a missing/extra name, or a wrong shape, dtype or non-finite value.
        """
        self.validate(feeds, check_finite)
        self.activate()
        return self._infer({s.name: np.ascontiguousarray(feeds[s.name]) for s in self.inputs})

    def validate(self, feeds: Mapping[str, np.ndarray], check_finite: bool = True) -> None:
        """Check feeds against the input specs; raise with what was expected."""
        want = {s.name for s in self.inputs}
        got = set(feeds)
        if want != got:
            raise BadInputError(f"{self.path.name}: inputs {sorted(got)} given, expected exactly "
                                f"{sorted(want)}; missing {sorted(want - got)}, unknown {sorted(got - want)}")
        for s in self.inputs:
            a = feeds[s.name]
            if not isinstance(a, np.ndarray):
                raise BadInputError(f"{self.path.name}: input {s.name!r} is a {type(a).__name__}; pass a numpy array")
            if not self._shape_ok(tuple(a.shape), s.shape):
                raise BadInputError(f"{self.path.name}: input {s.name!r} has shape {list(a.shape)}, expected "
                                    f"{self._expected(s)} ({s.meaning}); {self._shape_fix()}")
            if a.dtype != np.dtype(s.dtype):
                raise BadInputError(f"{self.path.name}: input {s.name!r} has dtype {a.dtype}, expected {s.dtype}; "
                                    f"convert with .astype(np.{s.dtype})")
            if check_finite and a.dtype.kind == "f" and not np.isfinite(a).all():
                raise BadInputError(f"{self.path.name}: input {s.name!r} holds NaN or Inf values; "
                                    f"clean the input (the preprocessing should never produce them)")
        if self.batch_range is not None and len({int(feeds[s.name].shape[0]) for s in self.inputs}) > 1:
            raise BadInputError(f"{self.path.name}: inputs have different batch sizes "
                                f"{[list(feeds[s.name].shape[:1]) for s in self.inputs]}; give every input the same")

    @property
    def batch_range(self) -> Optional[tuple[int, int]]:
        """(min, max) of a dynamic batch axis (manifest `dynamic_batch`), or None for a static engine."""
        prof = self.manifest.get("dynamic_batch")
        return (int(prof["min"]), int(prof["max"])) if isinstance(prof, Mapping) else None

    def _shape_ok(self, got: tuple, want: tuple) -> bool:
        rng = self.batch_range
        if rng is None or len(got) != len(want) or not got:
            return got == want
        return rng[0] <= got[0] <= rng[1] and got[1:] == want[1:]

    def _expected(self, s: TensorSpec) -> str:
        rng = self.batch_range
        if rng is None:
            return str(list(s.shape))
        return "[" + ", ".join([f"{rng[0]}..{rng[1]}", *map(str, s.shape[1:])]) + "]"

    def _shape_fix(self) -> str:
        if self.batch_range is None:
            return ("the engine has static shapes: run many items with runtime.batching.infer_many, or re-export "
                    "with other --batch/--frames (or --dynamic-batch MAX)")
        return (f"the batch may be {self.batch_range[0]}..{self.batch_range[1]}, other dims are static; split larger "
                f"batches with runtime.batching.infer_many")

    # -- backend hooks ---------------------------------------------------------------------------
    def _activate(self) -> None:
        raise NotImplementedError

    def _deactivate(self) -> None:
        raise NotImplementedError

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError
