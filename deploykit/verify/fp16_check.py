"""Does an FP16 graph stay in range? Naive conversion vs deploykit's, under FP16 emulation.

Seeded random weights keep every activation small, so no valid input overflows FP16 (a trained
GaitGL does: its GeM input passes 5.51). To exercise the mechanism, inputs are scaled by a gain:
the smallest power of two at which the naive conversion (every op FP16) overflows somewhere under
emulation. At that gain:

- the export lint's FP16 range audit runs on *audit* samples (seeded, never the evaluation ones)
  and flags tensors that overflow or underflow FP16, plus those within 4x of 65504
  (`build.fp16.audit_keep_list`);
- deploykit's FP16 graph keeps the flagged tensors' producers/consumers and the known
  range-critical ops FP32 (build/fp16.py);
- both FP16 graphs are emulated on *evaluation* samples and compared with the FP32 model.

The numbers are only as honest as the emulation: storage rounding and overflow are exact, the
arithmetic inside each op is FP32 (build/fp16.py explains).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence

import numpy as np

from . import compare
from .gates import FP16

# the FP16 plain-cosine gate of the table (this check stresses range, not the input-dependent signal)
FP16_COSINE = next(t.limit for t in FP16.output if t.figure == "cosine")

AUDIT_SEED, EVAL_SEED = 0, 1000


@dataclasses.dataclass
class Fp16Check:
    """Naive vs deploykit FP16 at the stress gain.

    Attributes:
        gain: the input gain at which the naive conversion first overflows; None when it never does
            while the input fits FP16 (then both are compared at `max_gain`).
        max_gain: the largest gain tried (inputs x gain x 4 stay below 65504).
    """

    gain: Optional[float]
    max_gain: float
    naive_finite: bool
    naive_overflowed: list[str]
    naive_cosine: Optional[float]
    ours_finite: bool
    ours_overflowed: list[str]
    ours_cosine: float
    fp32_nodes: int
    keep_fp32_tensors: int
    nodes: int
    audit: str

    @property
    def passed(self) -> bool:
        return self.ours_finite and not self.ours_overflowed and self.ours_cosine >= FP16_COSINE

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["naive_overflowed"] = self.naive_overflowed[:5] + ([f"... {len(self.naive_overflowed) - 5} more"]
                                                             if len(self.naive_overflowed) > 5 else [])
        d["passed"] = self.passed
        return d


def _cosine(ref: list, got: list) -> float:
    """Worst output's mean per-sample cosine (0 where the candidate is not finite)."""
    worst = 1.0
    for k in range(len(ref[0])):
        vals = [compare.cosine_value(r[k][i], g[k][i]) if np.isfinite(g[k][i]).all() else 0.0
                for r, g in zip(ref, got) for i in range(r[k].shape[0])]
        worst = min(worst, float(np.mean(vals)))
    return worst


def fp16_stress(opt_onnx: str | os.PathLike, manifest: dict, *, samples: int = 2, max_log2_gain: int = 16,
                keep_fp32_tensors: Optional[Sequence[str]] = None) -> Fp16Check:
    """Run the check described in the module docstring on an FP32 model (ONNX Runtime-optimised export)."""
    import onnx
    import onnxruntime as ort

    from ..calib import sources
    from ..build.fp16 import Fp16Emulator, audit_keep_list, naive_fp16, plan_fp32_nodes, to_fp16

    model = onnx.load(str(opt_onnx))
    ev = list(sources.batches(sources.SyntheticSource(manifest, seed=EVAL_SEED, warn=False), samples, progress=False))
    au = list(sources.batches(sources.SyntheticSource(manifest, seed=AUDIT_SEED, warn=False), samples, progress=False))
    scale = lambda fs, g: [{k: (v * g).astype(v.dtype) for k, v in f.items()} for f in fs]  # noqa: E731
    naive = Fp16Emulator(naive_fp16(model))
    in_max = max(float(np.abs(v).max()) for f in ev + au for v in f.values()) or 1.0
    top = min(max_log2_gain, int(np.floor(np.log2(65504.0 / (4.0 * in_max)))))  # the input itself must fit FP16
    gain = None
    for k in range(top + 1):
        g = float(2 ** k)
        if any(naive.run(f).overflowed for f in scale(ev, g)):
            gain = g
            break
    g = gain if gain is not None else float(2 ** top)
    ref_sess = ort.InferenceSession(str(opt_onnx), providers=["CPUExecutionProvider"])
    ev_g = scale(ev, g)
    ref = [ref_sess.run(None, f) for f in ev_g]
    if keep_fp32_tensors is None:
        keep, audit = audit_keep_list(opt_onnx, scale(au, g))
        audit += f", inputs x gain {g:g}"
    else:
        keep, audit = list(keep_fp32_tensors), "given"
    plan = plan_fp32_nodes(model, keep)
    ours = Fp16Emulator(to_fp16(model, plan.fp32_nodes))
    n_runs = [naive.run(f) for f in ev_g]
    o_runs = [ours.run(f) for f in ev_g]
    names = [o.name for o in model.graph.output]
    naive_ok = all(r.finite for r in n_runs)
    return Fp16Check(
        gain=gain, max_gain=float(2 ** top), naive_finite=naive_ok, naive_overflowed=sorted({t for r in n_runs for t in r.overflowed}),
        naive_cosine=_cosine(ref, [[r.outputs[n] for n in names] for r in n_runs]) if naive_ok else None,
        ours_finite=all(r.finite for r in o_runs), ours_overflowed=sorted({t for r in o_runs for t in r.overflowed}),
        ours_cosine=_cosine(ref, [[r.outputs[n] for n in names] for r in o_runs]),
        fp32_nodes=len(plan.fp32_nodes), keep_fp32_tensors=len(keep), nodes=len(model.graph.node), audit=audit)
