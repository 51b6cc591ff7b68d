"""`deploykit compare`: an engine against another engine, or against outputs saved elsewhere (no torch).

The files are plain NumPy `.npz` archives, so outputs saved on a workstation can be checked on a
Jetson:

| file | keys | arrays |
|---|---|---|
| inputs (`--load-inputs`) | the engine's input names | `[n, *input shape]` (n samples), or exactly the input shape (n = 1) |
| outputs (`--save-outputs`, or B given as `.npz`) | the engine's output names | `[n, *output shape]` |

Per output the check is Polygraphy's: every element within `atol + rtol * |b|` (B is the
reference), plus cosine and, over n >= 2 samples, the centred cosine (cosine of `a - mean(b)` with
`b - mean(b)`, the input-dependent part that a plain cosine of random-weight outputs hides).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from .. import atomic
from ..errors import BadInputError
from ..manifest import TensorSpec
from .compare import cosine_value


def sample_inputs(specs: Sequence[TensorSpec], n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """n seeded samples per input, `[n, *shape]`: uniform [0, 1) floats, zeros for integer inputs."""
    rng = np.random.default_rng(seed)
    return {s.name: (rng.random((n, *s.shape), dtype=np.float64).astype(s.dtype) if np.dtype(s.dtype).kind == "f"
                     else np.zeros((n, *s.shape), s.dtype)) for s in specs}


def load_inputs(path: str | os.PathLike, specs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """Read an inputs `.npz` (see the module table) and check it against the engine's input specs."""
    arrays = _read_npz(path, "inputs")
    want = {s.name for s in specs}
    if set(arrays) != want:
        raise BadInputError(f"{path}: holds arrays {sorted(arrays)}, the engine's inputs are {sorted(want)}; "
                            f"save one array per input name")
    out, counts = {}, set()
    for s in specs:
        a = arrays[s.name]
        if tuple(a.shape) == tuple(s.shape):
            a = a[None]
        if tuple(a.shape[1:]) != tuple(s.shape):
            raise BadInputError(f"{path}: {s.name!r} has shape {list(a.shape)}, expected {list(s.shape)} or "
                                f"[n, {', '.join(map(str, s.shape))}]")
        if a.dtype != np.dtype(s.dtype):
            raise BadInputError(f"{path}: {s.name!r} is {a.dtype}, the engine takes {s.dtype}; save it as {s.dtype}")
        out[s.name] = a
        counts.add(a.shape[0])
    if len(counts) != 1:
        raise BadInputError(f"{path}: the inputs hold different sample counts {sorted(counts)}; give each the same n")
    return out


def _read_npz(path, what: str) -> dict[str, np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{what} file {p} does not exist")
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{p}: not a NumPy .npz archive of plain arrays ({exc}); write it with numpy.savez") \
            from None


def run_samples(engine, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs `[n, *shape]` of `engine` over the n samples of `inputs`."""
    n = next(iter(inputs.values())).shape[0]
    outs: dict[str, list] = {}
    for i in range(n):
        for k, v in engine.infer({name: a[i] for name, a in inputs.items()}).items():
            outs.setdefault(k, []).append(v)
    return {k: np.stack(v) for k, v in outs.items()}


@dataclasses.dataclass(frozen=True)
class OutputComparison:
    """One output of A against B (the reference)."""

    name: str
    max_abs: float
    max_rel: float
    cosine: float
    centred_cosine: Optional[float]
    within: float  # share of elements within atol + rtol * |b|
    passed: bool

    def line(self, atol: float, rtol: float) -> str:
        cc = "-" if self.centred_cosine is None else f"{self.centred_cosine:.6f}"
        return (f"  {'ok  ' if self.passed else 'FAIL'} {self.name}: max_abs {self.max_abs:.3g}  max_rel "
                f"{self.max_rel:.3g}  cosine {self.cosine:.6f}  centred {cc}  within atol {atol:g} + rtol {rtol:g}: "
                f"{100 * self.within:.4g}%")


def compare_outputs(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], atol: Mapping[str, float],
                    rtol: Mapping[str, float]) -> list[OutputComparison]:
    """Compare every output of B (the reference) with A's; per-output tolerances by name ("" = default)."""
    missing = sorted(set(b) - set(a))
    if missing:
        raise BadInputError(f"outputs {missing} of the reference are missing from the candidate; compare engines "
                            f"of the same model")
    res = []
    for name, ref in b.items():
        out = a[name]
        if out.shape != ref.shape:
            raise BadInputError(f"output {name!r}: shapes {list(out.shape)} vs {list(ref.shape)}; compare engines "
                                f"with the same input shapes and sample count")
        at, rt = atol.get(name, atol[""]), rtol.get(name, rtol[""])
        d = np.abs(out.astype(np.float64) - ref.astype(np.float64))
        ok = d <= at + rt * np.abs(ref.astype(np.float64))
        mean = ref.mean(axis=0, keepdims=True) if ref.shape[0] >= 2 else None
        cc = None if mean is None else cosine_value(out - mean, ref - mean)
        scale = float(np.abs(ref).max()) or 1.0
        res.append(OutputComparison(name, float(d.max()) if d.size else 0.0, float(d.max() / scale) if d.size else 0.0,
                                    cosine_value(out, ref), cc, float(ok.mean()) if ok.size else 1.0, bool(ok.all())))
    return res


def parse_tolerances(values: Sequence[str], default: float, flag: str) -> dict[str, float]:
    """`--atol 1e-3 --atol embeddings:1e-2` -> {"": 1e-3, "embeddings": 1e-2} (Polygraphy's spelling)."""
    out = {"": default}
    for v in values:
        name, _, num = v.rpartition(":")
        try:
            out[name] = float(num)
        except ValueError:
            raise BadInputError(f"{flag} {v!r} is not a number or OUTPUT:number; e.g. {flag} 1e-3 or "
                                f"{flag} embeddings:1e-2") from None
    return out


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write arrays as an `.npz` atomically (never half-written)."""
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic.write_bytes(path, buf.getvalue())
    return Path(path)
