"""One `Engine` interface over the backends (Polygraphy's runner pattern).

An engine is an artifact file plus its manifest. `Engine.load` picks the backend from the
manifest (or the file suffix), validates every feed against the manifest's input specs, and
imports the backend library lazily so a missing one fails with the extra to install.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from .. import manifest as mf
from ..errors import BadInputError, DeploykitError
from ..manifest import TensorSpec
from . import backend as _backend


class EngineClosedError(DeploykitError):
    """`infer` on an engine after `deactivate()`."""


def backends() -> list[str]:
    """Names of the registered backends (whether or not their library is installed)."""
    return _backend.names()


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
        self.manifest_path = mf.manifest_path_for(self.path)
        self.active = False
        self.closed = False
        self._lock = threading.Lock()

    @staticmethod
    def load(path: str | os.PathLike, manifest_path: Optional[str | os.PathLike] = None, verify: bool = True,
             **options) -> "Engine":
        """Open an engine artifact with the backend its manifest names, after checking the two belong together.

        Args:
            path: `.onnx` (ONNX Runtime) or `.plan` (TensorRT) file.
            manifest_path: default: `mf.manifest_path_for(path)` beside it.
            verify: check the file's sha256, and its input/output names, shapes and dtypes where the
                backend can read them without running, against the manifest (default True). False
                skips both: for a file you changed on purpose, at your own risk.
            **options: backend options (e.g. `threads` for ONNX Runtime; `backend.get(name).engine_options()`
                lists what each takes).

        Raises:
            BadInputError: missing or malformed files, or an artifact its manifest does not describe.
        """
        p = Path(path)
        if not p.is_file():
            raise BadInputError(f"engine file {p} does not exist; build one with `deploykit export` "
                                f"or `deploykit build-engine`")
        mpath = Path(manifest_path) if manifest_path else _manifest_beside(p)
        man = mf.read(mpath)
        record = _backend.for_artifact(p, man)
        unknown = sorted(set(options) - set(record.engine_options()))
        if unknown:
            raise BadInputError(f"{p.name}: the {record.name} engine takes no option {', '.join(unknown)}; it takes "
                                f"{', '.join(record.engine_options()) or 'none'}")
        if verify:
            _verify_sha(p, mpath, man)
        eng = record.engine_class()(p, man, **options)
        eng.backend, eng.manifest_path = record.name, mpath
        if verify:
            eng.verify_io()
        return eng

    def verify_io(self) -> None:
        """Compare the artifact's own input/output specs (when the backend can read them) with the manifest's."""
        got = self._io_specs()
        if got is None:
            return
        for kind, want, have in (("inputs", self.inputs, got[0]), ("outputs", self.outputs, got[1])):
            w = [(s.name, list(s.shape), s.dtype) for s in want]
            h = [(n, list(sh), dt) for n, sh, dt in have]
            if len(w) != len(h) or not all(_spec_fits(a, b) for a, b in zip(w, h)):
                raise BadInputError(f"{self.path} does not match its manifest {self.manifest_path.name}: its {kind} "
                                    f"are {h}, the manifest says {w}; the two come from different exports: re-export "
                                    f"or rebuild to write a matching pair (or Engine.load(..., verify=False))")

    # -- lifecycle -------------------------------------------------------------------------------
    def activate(self) -> "Engine":
        """Open the backend session (once, whatever the number of threads calling); reopens after deactivate."""
        with self._lock:
            if not self.active:
                self._activate()
                self.active = True
                self.closed = False
        return self

    def deactivate(self) -> None:
        """Close the session; `infer` then raises EngineClosedError until `activate()` is called again."""
        with self._lock:
            if self.active:
                self._deactivate()
                self.active = False
            self.closed = True

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
        if self.closed:
            raise EngineClosedError(f"{self.path.name}: the engine is closed (deactivate() was called); call "
                                    f"activate() again, or load it anew, before infer")
        if not self.active:
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
    def _io_specs(self) -> Optional[tuple[list, list]]:
        """`([(name, shape, dtype)] inputs, outputs)` read from the artifact without running it; None: unknown."""
        return None

    def _activate(self) -> None:
        raise NotImplementedError

    def _deactivate(self) -> None:
        raise NotImplementedError

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError


def _manifest_beside(p: Path) -> Path:
    """The manifest of `p`; a plan written before manifests had their own names falls back to the old name."""
    mpath = mf.manifest_path_for(p)
    legacy = mf.legacy_manifest_path_for(p)
    if not mpath.is_file() and legacy != mpath and legacy.is_file():
        return legacy  # accepted only if its recorded sha256 is this file's (checked by _verify_sha)
    return mpath


def _verify_sha(p: Path, mpath: Path, man: Mapping[str, Any]) -> None:
    """Refuse an artifact whose sha256 is not the manifest's, or whose set is half-committed."""
    from .. import artifact_set

    for stage, names in artifact_set.pending_commits(p.parent):
        moved = [n for n in names if not (stage / n).exists()]  # none moved yet: the folder is still the old set
        if moved and (mpath.name in names or p.name in names):
            raise BadInputError(f"{p} is part of an interrupted write (a complete new set waits in {stage.name}); "
                                f"run the export/build-engine into {p.parent} again, which finishes or replaces it")
    engine = man.get("engine") if isinstance(man.get("engine"), dict) else {}
    want = engine.get("plan_sha256") if p.suffix != ".onnx" else man.get("onnx_sha256")
    members = (man.get("artifact_set") or {}).get("members") if isinstance(man.get("artifact_set"), dict) else None
    if isinstance(members, dict) and p.name in members:
        want = members[p.name] if want is None else want
    if not isinstance(want, str):
        raise BadInputError(f"manifest {mpath} records no sha256 of {p.name}, so it cannot be checked against it; "
                            f"rebuild the artifact with deploykit, or Engine.load(..., verify=False) to skip the check")
    have = mf.sha256_file(p)
    if have != want:
        raise BadInputError(f"{p} does not match its manifest {mpath.name}: sha256 {have[:12]}..., the manifest "
                            f"records {want[:12]}... (another export, an interrupted write, or a changed file); "
                            f"re-export or rebuild to write a matching pair (or Engine.load(..., verify=False))")


def _spec_fits(want: tuple, have: tuple) -> bool:
    """Same name, dtype and rank; every static dim equal (a symbolic dim in the graph fits any size)."""
    (wn, ws, wd), (hn, hs, hd) = want, have
    return (wn == hn and wd == hd and len(ws) == len(hs)
            and all(not isinstance(h, int) or h <= 0 or h == w for w, h in zip(ws, hs)))
