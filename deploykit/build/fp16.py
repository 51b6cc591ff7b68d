"""FP16 as a graph: an FP16 ONNX model with range-critical tensors and ops kept FP32 behind Casts,
and an FP16 *emulation* to measure it honestly on a CPU.

TensorRT 11 has no FP16 builder flag: precision lives in the ONNX graph (strong typing), so the
FP16 model is the artifact. Which nodes stay FP32:

1. ops known to need it (`KNOWN_FP32_OPS`: Pow as in GeM's x**p, Exp/Log, sum-type reductions) and
   the nodes consuming their outputs (GeM's pooled x**6.5 overflows FP16 above x = 5.51);
2. the producer and every consumer of each tensor in `keep_fp32_tensors`, the list the FP16 range
   audit flags (the export lint's audit where available, else `calib.ranges.keep_fp32_from_ranges`
   on calibration data). The list is an input: any audit can supply it.

The conversion itself is ONNX Runtime's `transformers.float16.convert_float_to_float16` with an empty
op block list (every other op FP16) and the node block list above; graph inputs and outputs stay
FP32 (`keep_io_types`).

Emulation (`emulate_fp16`): ONNX Runtime's CPU provider has no FP16 kernels for most ops and
silently computes them in FP32, so running the FP16 model there measures nothing. Instead the FP16
model is rewritten to an FP32 graph in which every tensor the FP16 model stores as FP16 is rounded
through `Cast(to=FLOAT16) -> Cast(to=FLOAT)` right after the op producing it, and FP16 weights are
used at their FP16 values. Values round and overflow to inf exactly as FP16 storage does; each op's
internal arithmetic stays FP32 (like TensorRT's FP32 accumulation in convolutions and matmuls, but
kinder than a reduction accumulating in FP16).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import atomic
from ..constants import FP16_MAX
from ..errors import require

KNOWN_FP32_OPS = ("Pow", "Exp", "Log", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp",
                  "ReduceProd", "CumSum")


AUDIT_MARGIN = 4.0  # also keep tensors within 4x of 65504 on the audit data: other inputs run higher


def audit_keep_list(model_path: str | os.PathLike, samples: Sequence[dict]) -> tuple[list[str], str]:
    """Tensors to keep FP32, from the export lint's FP16 range audit (`export.lint.fp16.audit_fp16`):
    its overflow/underflow findings, plus activations whose max|x| comes within AUDIT_MARGIN of 65504.

    Returns:
        (tensor names, one line saying how they were found)
    """
    onnx = require("onnx", "export")
    try:
        from .lint.fp16 import audit_fp16
    except ImportError:  # the lint is not part of this install: the calibration collector does the same
        from ..calib import ranges as R

        rng = R.RangeCollector(model_path).collect(samples).ranges("max")
        return R.keep_fp32_from_ranges(rng, FP16_MAX, AUDIT_MARGIN), (
            f"calib.ranges max|x| x {AUDIT_MARGIN:g} > 65504 on {rng.samples} samples")
    audit = audit_fp16(onnx.load(str(model_path)), samples)
    near = [r.name for r in audit.ranges if r.producer not in ("input", "initializer")
            and r.max_abs * AUDIT_MARGIN > FP16_MAX]
    keep = list(dict.fromkeys([*audit.flagged_tensors(), *near]))
    return keep, (f"export lint FP16 range audit on {audit.samples} sample batch(es): overflow/underflow findings "
                  f"+ max|x| x {AUDIT_MARGIN:g} > 65504")


@dataclasses.dataclass
class Fp16Plan:
    """Which nodes an FP16 conversion keeps FP32, and why."""

    fp32_nodes: list[str]
    reasons: dict[str, str]

    def to_json(self) -> dict:
        return {"fp32_nodes": self.fp32_nodes, "reasons": self.reasons,
                "known_fp32_ops": list(KNOWN_FP32_OPS)}


def plan_fp32_nodes(model, keep_fp32_tensors: Sequence[str] = (), known_ops: Sequence[str] = KNOWN_FP32_OPS) -> Fp16Plan:
    """The node block list for `model` (see module docstring)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    reasons: dict[str, str] = {}
    for n in model.graph.node:
        if n.op_type in known_ops:
            reasons.setdefault(n.name, f"{n.op_type} is range-critical in FP16")
            for o in n.output:
                for c in consumers.get(o, []):
                    reasons.setdefault(c.name, f"consumes the output of {n.op_type} {n.name!r}")
    for t in keep_fp32_tensors:
        if t in producers:
            reasons.setdefault(producers[t].name, f"produces {t!r}, flagged by the FP16 range audit")
        for c in consumers.get(t, []):
            reasons.setdefault(c.name, f"consumes {t!r}, flagged by the FP16 range audit")
    unnamed = [n for n in model.graph.node if not n.name]
    if unnamed:
        raise ValueError(f"{len(unnamed)} node(s) have no name; name every node before an FP16 conversion")
    return Fp16Plan(sorted(reasons), reasons)


def to_fp16(model, fp32_nodes: Sequence[str] = ()):
    """FP16 copy of an FP32 ModelProto: `fp32_nodes` stay FP32 behind Casts, graph I/O stays FP32."""
    require("onnx", "export")
    from onnxruntime.transformers.float16 import convert_float_to_float16

    m16 = convert_float_to_float16(model, keep_io_types=True, op_block_list=[],
                                   node_block_list=list(fp32_nodes), max_finite_val=FP16_MAX)
    # the converter inserts one Cast per blocked consumer of a tensor, all with the same name and
    # output: keep one (an ONNX graph must not produce a tensor twice)
    seen, nodes = set(), []
    for n in m16.graph.node:
        key = (n.op_type, tuple(n.input), tuple(n.output), n.SerializeToString())
        if key in seen:
            continue
        seen.add(key)
        nodes.append(n)
    from onnx import TensorProto

    fp32_inputs = {i.name for i in m16.graph.input if i.type.tensor_type.elem_type == TensorProto.FLOAT}
    nodes = _join_fp32_islands(nodes, set(fp32_nodes), fp32_inputs, {o.name for o in m16.graph.output})
    del m16.graph.node[:]
    m16.graph.node.extend(_toposort(nodes, {i.name for i in m16.graph.input} | {i.name for i in m16.graph.initializer}))
    live = {o for n in m16.graph.node for o in n.output}
    keep_vi = [v for v in m16.graph.value_info if v.name in live]  # the dropped casts' tensors are gone
    del m16.graph.value_info[:]
    m16.graph.value_info.extend(keep_vi)
    return m16


def _join_fp32_islands(nodes: list, fp32_nodes: set, fp32_inputs: set, graph_outputs: set) -> list:
    """Remove the FP16 round trip the converter puts in front of FP32 consumers and graph outputs.

    The converter wraps every blocked node alone: src(FP32) -> Cast(to=FP16) -> t -> Cast(to=FP32) ->
    consumer, where src is a blocked node's output or an FP32 graph input. So an FP32 value larger
    than 65504 (GeM's x**p feeding its pool, an FP32 island's result that is a graph output) still
    overflows, and graph inputs reach kept nodes rounded to FP16. Consumers of such a Cast(to=FP32)
    read src directly; a graph output made that way becomes Identity(src) (it keeps its name); casts
    left without consumers are dropped.

    Args:
        fp32_nodes: names of the blocked nodes (their float outputs are FP32).
        fp32_inputs: graph inputs of type FLOAT.
        graph_outputs: graph output names.
    """
    from onnx import TensorProto

    def cast_to(n):
        return next((a.i for a in n.attribute if a.name == "to"), None) if n.op_type == "Cast" else None

    producer = {o: n for n in nodes for o in n.output}

    def fp32_source(n) -> str | None:
        """src when n is the Cast(to=FP32) half of a round trip from an FP32 tensor, else None."""
        up = producer.get(n.input[0]) if cast_to(n) == TensorProto.FLOAT else None
        if up is None or cast_to(up) != TensorProto.FLOAT16:
            return None
        src = up.input[0]
        src_node = producer.get(src)
        exact = src in fp32_inputs if src_node is None else src_node.name in fp32_nodes
        return src if exact else None

    rename: dict[str, str] = {}
    for n in nodes:
        src = fp32_source(n)
        if src is None:
            continue
        if n.output[0] in graph_outputs:  # keep the output's name: a pass-through of the FP32 value
            n.op_type, n.input[0] = "Identity", src
            del n.attribute[:]
        else:
            rename[n.output[0]] = src
    for n in nodes:
        for j, i in enumerate(n.input):
            if i in rename:
                n.input[j] = rename[i]
    while True:  # drop casts nobody reads any more
        used = {i for n in nodes for i in n.input} | graph_outputs
        dead = [n for n in nodes if n.op_type == "Cast" and not any(o in used for o in n.output)]
        if not dead:
            return nodes
        dead_ids = {id(n) for n in dead}
        nodes = [n for n in nodes if id(n) not in dead_ids]


def _toposort(nodes: list, available: set) -> list:
    """Nodes in an order where every input is produced before use (the converter appends its Casts last)."""
    have, out, pending = set(available) | {""}, [], list(nodes)
    while pending:
        ready = [n for n in pending if all(i in have for i in n.input)]
        if not ready:  # a cycle or a missing tensor: keep the rest as they were, ONNX checks will say
            return out + pending
        for n in ready:
            have.update(n.output)
        out += ready
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
    return out


@dataclasses.dataclass
class Fp16FromOnnx:
    """Lazy stage: FP32 ONNX -> FP16 ONNX with the planned FP32 islands, written atomically.

    Attributes:
        onnx_path: the FP32 model (static shapes, named nodes).
        keep_fp32_tensors: tensors the FP16 range audit flags; their producers and consumers stay FP32.
        known_ops: op types always kept FP32; default KNOWN_FP32_OPS.
    """

    onnx_path: str | os.PathLike
    keep_fp32_tensors: Sequence[str] = ()
    known_ops: Sequence[str] = KNOWN_FP32_OPS

    def __call__(self, out_path: str | os.PathLike) -> tuple[Path, Fp16Plan]:
        onnx = require("onnx", "export")
        model = onnx.load(str(self.onnx_path))
        plan = plan_fp32_nodes(model, self.keep_fp32_tensors, self.known_ops)
        m16 = to_fp16(model, plan.fp32_nodes)
        atomic.write_bytes(out_path, m16.SerializeToString())
        return Path(out_path), plan


def emulate_fp16(model16):
    """FP32 graph that stores every FP16 tensor of `model16` at FP16 precision (see module docstring).

    Args:
        model16: an FP16 (mixed) ModelProto whose graph inputs/outputs are FP32 or FP16.

    Returns:
        a ModelProto with FP32 I/O that ONNX Runtime's CPU provider runs with FP16 rounding and overflow.
    """
    onnx = require("onnx", "export")
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model16)
    del m.graph.value_info[:]  # the converter's value_info can disagree with its Casts; infer afresh
    m = onnx.shape_inference.infer_shapes(m)
    g = m.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.value_info, *g.input, *g.output]}
    F16, F32 = TensorProto.FLOAT16, TensorProto.FLOAT
    for init in g.initializer:
        if init.data_type == F16:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32), init.name))
            types[init.name] = F32
    nodes = []
    for n in g.node:
        for a in n.attribute:
            if n.op_type == "Cast" and a.name == "to" and a.i == F16:
                a.i = F32
            if a.name == "value" and a.t.data_type == F16:  # Constant / ConstantOfShape
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float32), a.t.name))
        nodes.append(n)
        for j, out in enumerate(list(n.output)):
            if out and types.get(out) == F16:
                raw = f"{out}__fp32"
                n.output[j] = raw
                nodes += [helper.make_node("Cast", [raw], [f"{out}__fp16"], to=F16, name=f"{n.name}__emu16_{j}"),
                          helper.make_node("Cast", [f"{out}__fp16"], [out], to=F32, name=f"{n.name}__emu32_{j}")]
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    for v in [*g.input, *g.output]:
        if v.type.tensor_type.elem_type == F16:
            v.type.tensor_type.elem_type = F32
    return m


def naive_fp16(model):
    """Every op FP16, nothing kept FP32 (the conversion that overflows), graph I/O FP32."""
    return to_fp16(model, ())


@dataclasses.dataclass
class EmulationResult:
    """Outputs of an emulated FP16 run and whether they stayed in range."""

    outputs: dict[str, np.ndarray]
    finite: bool
    overflowed: list[str]


class Fp16Emulator:
    """One ONNX Runtime session over `emulate_fp16(model16)`; `run(feeds)` reports non-finite tensors.

    Args:
        model16: the FP16 (mixed) model.
        watch_tensors: also expose every rounded FP16 tensor, to list the ones holding inf/NaN.
    """

    def __init__(self, model16, watch_tensors: bool = True) -> None:
        onnx = require("onnx", "export")
        import onnxruntime as ort

        emu = emulate_fp16(model16)
        self.outputs = [o.name for o in emu.graph.output]
        watched: list[str] = []
        if watch_tensors:
            for n in emu.graph.node:
                if "__emu32_" in n.name:
                    watched.append(n.output[0])
                    emu.graph.output.append(onnx.helper.make_tensor_value_info(n.output[0], onnx.TensorProto.FLOAT, None))
        self.names = self.outputs + [w for w in watched if w not in self.outputs]
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        self.session = ort.InferenceSession(emu.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    def run(self, feeds: dict[str, np.ndarray]) -> EmulationResult:
        vals = dict(zip(self.names, self.session.run(self.names, feeds)))
        bad = [n for n in self.names if not np.isfinite(vals[n]).all()]
        return EmulationResult({o: vals[o] for o in self.outputs}, all(np.isfinite(vals[o]).all() for o in self.outputs), bad)


def run_emulated(model16, feeds: dict[str, np.ndarray], watch_tensors: bool = True) -> EmulationResult:
    """`Fp16Emulator(model16).run(feeds)`: one emulated FP16 run in ONNX Runtime (CPU)."""
    return Fp16Emulator(model16, watch_tensors).run(feeds)
