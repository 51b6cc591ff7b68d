"""Per-layer INT8 sensitivity, and the mixed-precision choice made from it.

The sweep quantizes one layer at a time and measures how far the model's outputs move from FP32.
Instead of writing one model per layer, it writes one *gated* fake-quant graph: every candidate
node k (an op type the Q/DQ writer quantizes) gets its calibrated activation inputs and outputs
replaced by `x + g_k * (DQ(Q(x)) - x)` and its weight by `w + g_k * (wq - w)` (wq: per-channel
symmetric int8 fake-quant of w), where g = the extra graph input `deploykit_gates` [K]. All gates
0 is the FP32 model; gate k alone = only layer k in INT8. One ONNX Runtime session then serves
the whole sweep.

    g_k ──────────────┐
    x ──> Q ─> DQ ─> Sub(·, x) ─> Mul ─> Add(x, ·) ─> node k
    └─────────────────────────────────────┘

The error is a noise-to-signal ratio, NSR = sum_i |got_i - ref_i|^2 / sum_i |ref_i - mean(ref)|^2
over the sweep samples (worst output): the quantization noise measured against the part of the
output that changes with the input. (A plain output cosine is a poor yardstick: outputs that share
a large input-independent component, as seeded random weights and BatchNorm shifts give, keep a
cosine near 1 while the input-dependent part drowns.)

The choice (`choose_float_layers`): layers whose NSR alone exceeds `layer_tol` stay float; if the
Q/DQ model still misses `target` (its NSR on the sweep data), the next most sensitive layers are
kept float too, 1, 2, 4, ... at a time, until it passes or `float_cap` entries (a quarter of the
candidates; up to 5 on small models) are float. Everything measured is returned for the manifest.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from ..errors import DeploykitError, require
from . import placement
from .qdq import ORT_OP_TYPES, TRT_OP_TYPES, WEIGHTED_OP_TYPES, QdqLayout
from .ranges import Ranges

GATES = "deploykit_gates"
# The all-INT8 model's output NSR (power) above which the build keeps layers float without being
# asked: the INT8 parity gate itself, signal NSR (amplitude) <= verify.gates.INT8_NSR = 0.2, i.e.
# power 0.04 (centred cosine >= 0.98), so the sweep runs exactly when the plain model would miss the
# gate on the sweep samples (tests/calib/test_mixed.py checks the two agree). It was 0.1 (amplitude
# 0.32), which let models between the two through unswept and then failed them in `parity`.
AUTO_TRIGGER_NSR = 0.04
# Unasked, the one-layer-at-a-time sweep runs only on models with at most this many candidate layers
# (its cost is one run of the sweep samples per candidate); larger ones get the coarse-to-fine sweep
# of mixed.py.
AUTO_MAX_CANDIDATES = 80


@dataclasses.dataclass
class LayerError:
    """One layer's measured effect: the outputs' NSR vs FP32 when only it is INT8."""

    node: str
    op_type: str
    error: float
    members: tuple[str, ...] = ()  # a unit of the coarse sweep (coarse.py): these nodes, gated together

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.members or (self.node,)


@dataclasses.dataclass
class SensitivityReport:
    """The sweep and the choice, as recorded in the manifest."""

    layers: list[LayerError]
    float_nodes: list[str]
    full_int8_nsr: float
    final_nsr: float
    target: float
    layer_tol: float
    samples: int
    layout: str
    steps: list[dict]
    max_float_fraction: float = 0.25

    def to_json(self, top: int = 20) -> dict:
        ranked = sorted(self.layers, key=lambda e: -e.error)
        return {"method": "one layer at a time (gated fake-quant); error = output NSR vs FP32 "
                          "(|got - ref|^2 / |ref - mean ref|^2)",
                "layout": self.layout, "samples": self.samples, "target_nsr": self.target,
                "layer_tol": self.layer_tol, "candidates": len(self.layers),
                "full_int8_nsr": self.full_int8_nsr, "final_nsr": self.final_nsr,
                "met_target": bool(self.final_nsr <= self.target), "max_float_fraction": self.max_float_fraction,
                "max_float_entries": float_cap(len(self.layers), self.max_float_fraction),
                "float_nodes": self.float_nodes, "steps": self.steps,
                "most_sensitive": [dataclasses.asdict(e) for e in ranked[:top]]}


def _fake_quant_weight(w: np.ndarray, axis: Optional[int]) -> np.ndarray:
    """Symmetric int8 quantize-dequantize of a weight, per channel along `axis` (None: per tensor)."""
    red = tuple(range(w.ndim)) if axis is None else tuple(i for i in range(w.ndim) if i != axis % w.ndim)
    amax = np.abs(w).max(axis=red, keepdims=True) if red else np.abs(w)
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    return (np.clip(np.round(w / scale), -127, 127) * scale).astype(np.float32)


def _weight_axis(node, rank: int) -> Optional[int]:
    """The writer's weight axis (qdq.py): per output channel; batched MatMul weights per tensor."""
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if node.op_type == "ConvTranspose":
        return 1
    if node.op_type == "MatMul":
        return rank - 1 if rank == 2 else None
    return 0


def candidates(model, ranges: Ranges, op_types: Sequence[str] = TRT_OP_TYPES) -> list:
    """Nodes the sweep tries: the quantized op types with a calibrated input or output (for the
    S8S8 op set: the weighted ops and the residual Adds, as the writer quantizes them)."""
    skips = placement.residual_skips(model) if tuple(op_types) == TRT_OP_TYPES else None
    return [n for n in model.graph.node if n.op_type in op_types and n.name
            and (skips is None or n.op_type in WEIGHTED_OP_TYPES or n.name in skips)
            and any(t in ranges.tensors for t in [*n.input, *n.output])]


def _qdq_params(r, layout: QdqLayout) -> tuple[float, np.ndarray]:
    if layout is QdqLayout.S8S8:
        return r.amax / 127.0, np.array(0, np.int8)
    lo, hi = min(r.lo, 0.0), max(r.hi, 0.0)
    scale = max(hi - lo, 1e-8) / 255.0
    return scale, np.array(np.clip(np.round(-lo / scale), 0, 255), np.uint8)


def gated_model(model_path: str | os.PathLike, ranges: Ranges, layout: QdqLayout | str = QdqLayout.S8S8,
                op_types: Optional[Sequence[str]] = None):
    """The gated fake-quant graph (see module docstring) and its candidate (name, op type) list.

    As the Q/DQ writer places it: S8S8 fake-quantizes a weighted node's calibrated activation
    inputs and a residual Add's skip input, never an output; U8S8 node k's calibrated inputs and
    outputs (graph outputs excepted). A float weight (input 1 of Conv/ConvTranspose/Gemm/MatMul) is
    replaced by its per-channel int8 fake-quant.
    """
    onnx = require("onnx", "export")
    from onnx import TensorProto, helper, numpy_helper

    layout = QdqLayout(layout)
    s8 = layout is QdqLayout.S8S8
    model = onnx.load(str(model_path))
    placement.name_nodes(model)
    inits = {i.name: i for i in model.graph.initializer}
    cands = candidates(model, ranges, op_types or (TRT_OP_TYPES if s8 else ORT_OP_TYPES))
    skips = placement.residual_skips(model) if s8 else {}
    g = model.graph
    graph_outputs = {o.name for o in g.output}
    g.input.append(helper.make_tensor_value_info(GATES, TensorProto.FLOAT, [len(cands)]))
    new_inits, before, after = [], {}, {}

    def fake_quant(src: str, dst: str, tag: str, rng, gate: str) -> list:
        scale, zp = _qdq_params(rng, layout)
        new_inits.extend([numpy_helper.from_array(np.array(scale, np.float32), f"{tag}_s"),
                          numpy_helper.from_array(zp, f"{tag}_z")])
        return [helper.make_node("QuantizeLinear", [src, f"{tag}_s", f"{tag}_z"], [f"{tag}_q"]),
                helper.make_node("DequantizeLinear", [f"{tag}_q", f"{tag}_s", f"{tag}_z"], [f"{tag}_dq"]),
                helper.make_node("Sub", [f"{tag}_dq", src], [f"{tag}_d"]),
                helper.make_node("Mul", [f"{tag}_d", gate], [f"{tag}_gd"]),
                helper.make_node("Add", [src, f"{tag}_gd"], [dst])]

    for k, node in enumerate(cands):
        pre, gate = f"dk_sens{k}", f"dk_sens{k}_g"
        new_inits.append(numpy_helper.from_array(np.array(k, np.int64), f"{pre}_idx"))
        nodes = [helper.make_node("Gather", [GATES, f"{pre}_idx"], [gate], axis=0)]
        for j, name in enumerate(list(node.input)):
            if node.name in skips and j != skips[node.name]:
                continue  # S8S8: the residual's main input stays float
            if name in ranges.tensors:
                nodes += fake_quant(name, f"{pre}_in{j}", f"{pre}_in{j}", ranges.tensors[name], gate)
                node.input[j] = f"{pre}_in{j}"
            elif (name in inits and j == 1 and node.op_type in WEIGHTED_OP_TYPES
                  and inits[name].data_type == TensorProto.FLOAT):
                w = numpy_helper.to_array(inits[name])
                delta = _fake_quant_weight(w, _weight_axis(node, w.ndim)) - w
                new_inits.append(numpy_helper.from_array(delta.astype(np.float32), f"{pre}_wd"))
                nodes += [helper.make_node("Mul", [f"{pre}_wd", gate], [f"{pre}_gwd"]),
                          helper.make_node("Add", [name, f"{pre}_gwd"], [f"{pre}_w"])]
                node.input[j] = f"{pre}_w"
        before[node.name] = nodes
        post = []
        for j, name in enumerate(list(node.output)):
            if not s8 and name in ranges.tensors and name not in graph_outputs:  # outputs: U8S8 only
                node.output[j] = f"{pre}_raw{j}"
                post += fake_quant(f"{pre}_raw{j}", name, f"{pre}_out{j}", ranges.tensors[name], gate)
        after[node.name] = post
    g.initializer.extend(new_inits)
    ordered = []
    for n in g.node:
        ordered += before.get(n.name, [])
        ordered.append(n)
        ordered += after.get(n.name, [])
    del g.node[:]
    g.node.extend(ordered)
    return model, [(n.name, n.op_type) for n in cands]


def output_nsr(ref: Sequence[Sequence[np.ndarray]], got: Sequence[Sequence[np.ndarray]]) -> float:
    """The worst output's NSR over all samples (batches concatenated): noise power / signal variance."""
    worst = 0.0
    for k in range(len(ref[0])):
        r = np.concatenate([b[k] for b in ref]).astype(np.float64)
        g = np.concatenate([b[k] for b in got]).astype(np.float64)
        noise = float(((g - r) ** 2).sum())
        signal = float(((r - r.mean(axis=0, keepdims=True)) ** 2).sum()) if r.shape[0] > 1 else 0.0
        signal = signal or float((r ** 2).sum()) or 1.0
        worst = max(worst, noise / signal if np.isfinite(noise) else np.inf)
    return worst


def sweep(model_path: str | os.PathLike, ranges: Ranges, feeds: Sequence[Mapping[str, np.ndarray]],
          layout: QdqLayout | str = QdqLayout.S8S8, threads: Optional[int] = None,
          progress: Optional[Callable[[int, int], None]] = None,
          units: Optional[Callable[[list[str]], list[list[int]]]] = None) -> list[LayerError]:
    """Error of every candidate layer quantized alone (see module docstring).

    `units(candidate names) -> [[candidate index, ...], ...]` sweeps groups of layers instead, each
    group's gates on together (coarse.py); the result then has one entry per group, its `members`
    the group's nodes.
    """
    import onnxruntime as ort

    model, cands = gated_model(model_path, ranges, layout)
    groups = units([c[0] for c in cands]) if units else [[k] for k in range(len(cands))]
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    if threads:
        opts.intra_op_num_threads = int(threads)
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    zeros = np.zeros(len(cands), np.float32)
    ref = [sess.run(None, {**f, GATES: zeros}) for f in feeds]
    out = []
    for k, idx in enumerate(groups):
        gates = zeros.copy()
        gates[idx] = 1.0
        got = [sess.run(None, {**f, GATES: gates}) for f in feeds]
        name, op = cands[idx[0]]
        members = tuple(cands[i][0] for i in idx) if units else ()
        out.append(LayerError(name, op if len(idx) == 1 else f"{len(idx)} layers", output_nsr(ref, got), members))
        if progress:
            progress(k + 1, len(groups))
    return out


# A small model may keep at least this many layers (never more than half) float, whatever the fraction:
# a quarter of gaitset's 11 candidates is 2, which left its S8S8 model at NSR 0.21 on the sweep samples
# (held-out centred cosine 0.954); 5 float reach 0.044 (0.988, ModelOpt 0.990), benchmarks/int8_vs_modelopt.md.
SMALL_MODEL_FLOAT = 5


def float_cap(n: int, max_float_fraction: float) -> int:
    """How many of `n` sweep entries may stay float: the fraction, or min(SMALL_MODEL_FLOAT, n // 2) if more."""
    return max(1, int(n * max_float_fraction), min(SMALL_MODEL_FLOAT, n // 2))


def choose_float_layers(layers: Sequence[LayerError], evaluate: Callable[[list[str]], float], *,
                        target: float = 0.01, layer_tol: float = 2e-3, max_float_fraction: float = 0.25,
                        samples: int = 0, layout: str = "s8s8", full: Optional[float] = None) -> SensitivityReport:
    """Pick the layers to keep in float (see module docstring).

    Args:
        layers: the sweep's per-layer errors (NSR).
        evaluate: builds the Q/DQ model with the given float nodes and returns its output NSR vs FP32.
        target: the NSR the mixed model must reach; default 0.01 (about a centred cosine of 0.995).
        layer_tol: a layer whose NSR alone exceeds this stays float; default 2e-3.
        max_float_fraction: at most this share of the candidates is kept float (`float_cap`: small
            models may keep up to SMALL_MODEL_FLOAT); default 0.25.
        full: the all-INT8 NSR if already measured (evaluate([])).
    """
    ranked = sorted(layers, key=lambda e: -e.error)
    cap = float_cap(len(ranked), max_float_fraction)  # in sweep entries (layers, or coarse units)
    full = evaluate([]) if full is None else full
    steps = [{"float_nodes": 0, "nsr": full}]
    chosen = [e for e in ranked if e.error > layer_tol][:cap]

    def nodes(entries) -> list[str]:
        return [n for e in entries for n in e.nodes]

    err = full
    if chosen:
        err = evaluate(nodes(chosen))
        steps.append({"float_nodes": len(nodes(chosen)), "nsr": err})
    step = 1
    while err > target and len(chosen) < cap:
        more = [e for e in ranked if e not in chosen][:min(step, cap - len(chosen))]
        if not more:
            break
        chosen += more
        err = evaluate(nodes(chosen))
        steps.append({"float_nodes": len(nodes(chosen)), "nsr": err})
        step *= 2
    return SensitivityReport(list(layers), nodes(chosen), full, err, target, layer_tol, samples, layout, steps,
                             max_float_fraction)


class SensitivityMiss(DeploykitError):
    """The mixed-precision choice did not reach its own target."""


def reference_outputs(opt: str | os.PathLike, feeds: Sequence[Mapping[str, np.ndarray]],
                      threads: Optional[int] = None) -> list:
    """The FP32 model's outputs on `feeds`: the reference every NSR here is measured against."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(opt), _session_options(threads), providers=["CPUExecutionProvider"])
    return [sess.run(None, f) for f in feeds]


def _session_options(threads: Optional[int]):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
    return opts


def evaluator(opt: str | os.PathLike, rng: Ranges, feeds: Sequence[Mapping[str, np.ndarray]],
              forced: Sequence[str] = (), threads: Optional[int] = None,
              layout: QdqLayout = QdqLayout.S8S8, ref: Optional[list] = None) -> Callable[..., float]:
    """`evaluate(float_nodes, keep=None) -> NSR` of the `layout` model with those nodes (and `forced`)
    float, on `feeds`. `ref`: the FP32 outputs if already computed (`reference_outputs`), so a caller
    that evaluates several layouts runs the FP32 model once. `keep`: a path where the evaluated model
    is left, so the caller that picks it need not quantize it again."""
    import tempfile
    from pathlib import Path

    import onnxruntime as ort

    from . import qdq

    opts = _session_options(threads)
    ref = reference_outputs(opt, feeds, threads) if ref is None else ref

    def evaluate(float_nodes: list[str], keep: Optional[os.PathLike] = None) -> float:
        with tempfile.TemporaryDirectory(prefix="deploykit-sens-") as tmp:
            p = Path(keep) if keep is not None else Path(tmp) / "m.onnx"
            qdq.quantize(opt, rng, layout, p, exclude_nodes=[*forced, *float_nodes])
            s = ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
            return output_nsr(ref, [s.run(None, f) for f in feeds])
    return evaluate
