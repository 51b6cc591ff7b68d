"""FP16 range audit: run the FP32 graph in ONNX Runtime and read the range of every tensor.

Every intermediate float tensor is made a graph output so one run shows its values; each is
compared with what FP16 can hold: |x| <= 65504 (above: inf), and underflow: below FP16's smallest
normal 6.1e-5 values become subnormal, with a fixed step of 2^-24 = 6e-8, so they keep fewer
significant bits the smaller they are and flush to zero below 3e-8. Underflow is flagged where it
matters: values stored with fewer than 8 significant bits (|x| < 2^-17 = 7.6e-6) that are not
negligible next to the tensor's own largest value (|x| >= max|x| * 2^-11, what FP16 resolves
beside that maximum), on more than 1% of the tensor's non-zero values. In practice that is a
tensor living below about 0.016 in magnitude, such as GeM's x^6.5 of small activations. Weights
(initializers) and graph inputs are audited too.

Why run in FP32: ONNX Runtime's CPU provider has no FP16 kernels for most ops and silently computes
them in FP32, so running an FP16 model there simulates nothing. The ranges of the FP32 graph are
what an FP16 engine must store.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ...constants import FP16_LOSSY, FP16_MAX, FP16_RESOLUTION, FP16_ZERO
from ...errors import require
from .graph import GraphView, infer
from .report import Finding

UNDERFLOW_SHARE = 0.01
MIN_UNDERFLOW_VALUES = 16  # a lone constant (GeM's eps = 1e-6) is a threshold, not a quantity


@dataclasses.dataclass
class TensorRange:
    """Range of one tensor over all samples."""

    name: str
    producer: str  # "Op name", "initializer" or "input"
    op: str
    max_abs: float = 0.0
    nonfinite: int = 0
    nonzero: int = 0
    underflow: int = 0

    def update(self, a: np.ndarray) -> None:
        a = np.abs(np.asarray(a, dtype=np.float64)).ravel()
        finite = np.isfinite(a)
        self.nonfinite += int((~finite).sum())
        a = a[finite]
        if not a.size:
            return
        self.max_abs = max(self.max_abs, float(a.max()))
        nz = a[a > 0]
        self.nonzero += int(nz.size)
        if nz.size:
            self.underflow += int(((nz < FP16_LOSSY) & (nz >= float(nz.max()) * FP16_RESOLUTION)).sum())

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Fp16Audit:
    """The audit result: findings (topological order) and every tensor's range.

    Attributes:
        findings: fp32-nonfinite / fp16-overflow (errors) and fp16-underflow (warnings).
        ranges: per float tensor, in graph order.
        samples: how many inputs were run.
    """

    findings: list[Finding]
    ranges: list[TensorRange]
    samples: int

    @property
    def max_abs(self) -> float:
        return max((r.max_abs for r in self.ranges if r.producer not in ("input", "initializer")), default=0.0)

    def flagged_tensors(self) -> list[str]:
        """Tensors an FP16 build should keep in FP32 (overflow or underflow)."""
        return [f.tensor for f in self.findings if f.code in ("fp16-overflow", "fp16-underflow")]

    def summary(self) -> dict:
        acts = [r for r in self.ranges if r.producer not in ("input", "initializer")]
        worst = max(acts, key=lambda r: r.max_abs, default=None)
        return {"fp16_samples": self.samples, "fp16_tensors_audited": len(self.ranges),
                "fp16_max_abs_activation": f"{worst.max_abs:.4g} at {worst.producer} ({worst.name})" if worst else "-"}


def _node_float_outputs(view: GraphView) -> list[str]:
    """Every float tensor a node writes (in node order), Constants aside."""
    return [o for node in view.nodes for o in node.output
            if o and view.dtype(o) in ("FP32", "FP16", "DOUBLE") and node.op_type != "Constant"]


def audit_fp16(model: onnx.ModelProto, samples: Iterable[Mapping[str, np.ndarray]]) -> Fp16Audit:
    """Run `model` on `samples` in ONNX Runtime (CPU, FP32, no graph optimization) and audit ranges.

    Args:
        model: the ONNX model (shape inference is run on a copy).
        samples: feeds, one dict per forward pass.
    """
    require("onnxruntime", "export")
    from ...probe import ActivationProbe

    model = infer(model)
    view = GraphView(model)
    names = _node_float_outputs(view)
    # untyped outputs for every node tensor (the value_info may be incomplete): ONNX Runtime fills them in
    probe = ActivationProbe(model, names, elem_types={n: view.types[n][0] for n in names}, prefer_untyped=True)
    ranges: dict[str, TensorRange] = {}
    for name in view.inputs:
        if view.dtype(name) in ("FP32", "FP16"):
            ranges[name] = TensorRange(name, "input", "")
    for name, t in view.inits.items():
        if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16):
            ranges[name] = TensorRange(name, "initializer", "")
            ranges[name].update(numpy_helper.to_array(t))
    for name in names:
        node = view.producer[name]
        ranges[name] = TensorRange(name, f"{node.op_type} {node.name}".strip(), node.op_type)
    count = 0
    for feeds in samples:
        count += 1
        for name in view.inputs:
            if name in ranges:
                ranges[name].update(feeds[name])
        for name, value in probe.run(feeds).items():
            ranges[name].update(value)
    return Fp16Audit(list(_findings(ranges.values())), list(ranges.values()), count)


def _findings(ranges: Iterable[TensorRange]) -> Iterable[Finding]:
    for r in ranges:
        node = r.producer if r.producer not in ("input", "initializer") else ""
        if r.nonfinite:
            yield Finding("error", "fp32-nonfinite", f"{r.nonfinite} NaN/Inf value(s) already in FP32.", r.op,
                          node, r.name, hint="fix the model or its input before any FP16 work")
        if r.max_abs > FP16_MAX:
            yield Finding("error", "fp16-overflow", f"max |x| = {r.max_abs:.4g} > 65504: inf in FP16"
                                                    f"{' (weights)' if r.producer == 'initializer' else ''}.",
                          r.op, node, r.name, hint=_overflow_hint(r))
        share = r.underflow / r.nonzero if r.nonzero else 0.0
        if share > UNDERFLOW_SHARE and r.nonzero >= MIN_UNDERFLOW_VALUES:
            what = ("every value rounds to zero in FP16" if r.max_abs < FP16_ZERO else
                    f"{100 * share:.1f}% of non-zero values keep fewer than 8 significant bits in FP16")
            yield Finding("warning", "fp16-underflow", f"{what} (max |x| = {r.max_abs:.3g}; FP16's smallest normal "
                                                       f"is 6.1e-5).", r.op, node, r.name,
                          hint="keep this tensor in FP32 or rescale it (gem-fp16 does, for GeM)")


def _overflow_hint(r: TensorRange) -> str:
    if r.op == "Pow":
        return "GeM pooling? apply the gem-fp16 patch (deploykit patch IN OUT --patch gem-fp16)"
    return "keep this layer in FP32 (the FP16 conversion's keep-FP32 list)"
