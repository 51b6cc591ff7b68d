"""Where Q/DQ goes, and the graph passes that enforce it after `onnxruntime.quantization` wrote the model.

S8S8 (TensorRT explicit quantization; TensorRT developer guide, "Q/DQ layer-placement
recommendations"; NVIDIA ModelOpt's ONNX int8 placement agrees):

| where | Q/DQ |
|---|---|
| inputs of weighted ops (Conv, ConvTranspose, Gemm, MatMul) | activations per tensor, weights per channel |
| outputs of weighted ops | none (TensorRT fuses bias, BatchNorm, activation into the op's float epilogue) |
| residual Add | the skip input only: the other input comes straight from a weighted op, which TensorRT fuses with the Add |
| BatchNorm parameters, constants of Add/Mul/Pow/..., graph outputs | none |
| input of a MaxPool/ReduceMax whose output is quantized | the same Q/DQ again (`mirror_max_inputs`) |

ONNX Runtime's own placement (U8S8) quantizes op outputs so its QLinear kernels chain; the same
passes still remove fake-quantized constants that are not weights (BatchNorm scale, Mul/Add
constants) and give float-kept nodes their float inputs back.
"""

from __future__ import annotations

from typing import Iterable, Sequence

WEIGHTED_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# Slots that hold a weight: (op, input index). Bias (Conv/ConvTranspose/Gemm input 2) is int32 in U8S8.
_WEIGHT_SLOTS = {("Conv", 1), ("ConvTranspose", 1), ("Gemm", 1), ("MatMul", 0), ("MatMul", 1), ("Gemm", 0)}
_BIAS_SLOTS = {("Conv", 2), ("ConvTranspose", 2), ("Gemm", 2)}
_QDQ = ("QuantizeLinear", "DequantizeLinear")
# max commutes with a monotone quantizer: q(max(x)) == max(q(x)), so a Q/DQ may sit on either side
MAX_LIKE_OP_TYPES = ("MaxPool", "ReduceMax")


def _producers(graph) -> dict:
    return {o: n for n in graph.node for o in n.output}


def _consumers(graph) -> dict[str, list]:
    out: dict[str, list] = {}
    for n in graph.node:
        for j, i in enumerate(n.input):
            out.setdefault(i, []).append((n, j))
    return out


def _constants(graph) -> set[str]:
    consts = {i.name for i in graph.initializer}
    consts |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    return consts


def _backbone(name: str, producers: dict, consts: set[str]):
    """The weighted op whose output `name` is, looking through a bias Add (a constant operand) that
    TensorRT folds into it; None if `name` does not come straight from a weighted op."""
    node = producers.get(name)
    if node is not None and node.op_type == "Add" and any(i in consts for i in node.input):
        node = producers.get(next(i for i in node.input if i not in consts))
    return node if node is not None and node.op_type in WEIGHTED_OP_TYPES else None


def residual_skips(model) -> dict[str, int]:
    """Residual Adds and the index of their skip input.

    A residual Add has two non-constant inputs, at least one straight from a weighted op (the
    "main" path, fused with the Add by TensorRT); the other is the skip. When both come from
    weighted ops (a shortcut conv), the one computed first in graph order is the skip.
    """
    g = model.graph
    producers, consts = _producers(g), _constants(g)
    order = {id(n): k for k, n in enumerate(g.node)}
    out = {}
    for n in g.node:
        if n.op_type != "Add" or len(n.input) != 2 or any(i in consts for i in n.input):
            continue
        a, b = (_backbone(i, producers, consts) for i in n.input)
        if a is None and b is None:
            continue
        if a is not None and b is not None:
            out[n.name] = 0 if order[id(a)] < order[id(b)] else 1
        else:
            out[n.name] = 1 if a is not None else 0
    return out


def name_nodes(model) -> None:
    """Give unnamed nodes a stable name (ORT selects nodes to quantize by name)."""
    for k, n in enumerate(model.graph.node):
        if not n.name:
            n.name = f"dk_{n.op_type}_{k}"


def _float_source(name: str, producers: dict, inits: set[str], source_inits: dict):
    """The float tensor a DQ output stands for: x of `Q(x) -> DQ`, or the source model's initializer
    for a DQ of a stored int initializer; None if not recoverable."""
    dq = producers.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return None
    q = producers.get(dq.input[0])
    if q is not None and q.op_type == "QuantizeLinear":
        return q.input[0]
    if dq.input[0] in inits:
        for cand in (dq.input[0].removesuffix("_quantized"), name.removesuffix("_DequantizeLinear_Output")):
            if cand in source_inits:
                return cand
    return None


def restore_float_inputs(model, source_model, *, keep_float: Iterable[str] = (),
                         skips: dict[str, int] | None = None, s8s8: bool = True) -> int:
    """Rewire node inputs that should be float back to the float tensor; returns how many.

    - constants in a non-weight slot (BatchNorm scale/bias, an Add/Mul/Pow constant) read the float value;
    - nodes in `keep_float` read float inputs (ORT shares one DQ among all readers of a tensor);
    - S8S8 (`skips` given): only weighted ops and residual skips read a DQ; every other reader of a
      shared tensor (a Reshape beside a Conv, the residual Add's main input) reads it in float.
    """
    g = model.graph
    producers = _producers(g)
    inits = {i.name for i in g.initializer}
    source_inits = {i.name: i for i in source_model.graph.initializer}
    keep_float = set(keep_float)
    changed = 0
    for n in g.node:
        if n.op_type in _QDQ:
            continue
        for j, t in enumerate(n.input):
            src = _float_source(t, producers, inits, source_inits)
            if src is None:
                continue
            is_const = src in source_inits or src in inits
            slot = (n.op_type, j)
            weight_slot = slot in _WEIGHT_SLOTS or (not s8s8 and slot in _BIAS_SLOTS)
            s8_reader = n.op_type in WEIGHTED_OP_TYPES or (n.name in (skips or {}) and j == skips[n.name])
            if (is_const and not weight_slot) or n.name in keep_float or (skips is not None and not s8_reader):
                if src in source_inits and src in producers:  # ORT reused the name for a DQ output
                    src = f"{src}_dk_float"
                if src.removesuffix("_dk_float") in source_inits and src not in inits:
                    t = type(source_inits[src.removesuffix("_dk_float")])()
                    t.CopyFrom(source_inits[src.removesuffix("_dk_float")])
                    t.name = src
                    g.initializer.append(t)
                    inits.add(src)
                n.input[j] = src
                changed += 1
    prune(model)
    return changed


def prune(model) -> None:
    """Drop Q/DQ nodes nobody reads (and initializers nobody uses), repeatedly."""
    g = model.graph
    outputs = {o.name for o in g.output}
    while True:
        used = {i for n in g.node for i in n.input} | outputs
        dead = [n for n in g.node if n.op_type in _QDQ and not any(o in used for o in n.output)]
        if not dead:
            break
        drop_nodes(model, dead)
    drop_unused_initializers(model)


def drop_nodes(model, nodes) -> None:
    """Remove `nodes` (node protos of `model.graph`) from the graph, keeping the order of the rest."""
    ids = {id(n) for n in nodes}
    keep = [n for n in model.graph.node if id(n) not in ids]
    del model.graph.node[:]
    model.graph.node.extend(keep)


def drop_unused_initializers(model) -> None:
    """Remove the initializers no node reads."""
    g = model.graph
    used = {i for n in g.node for i in n.input}
    inits = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(inits)


def violations(model, *, skips: dict[str, int] | None = None) -> list[str]:
    """Where an S8S8 model breaks the placement table above (empty = it follows it).

    `skips`: the residual Adds of the FP32 model (residual_skips). Without it only the rules that need
    no FP32 model are checked: weighted-op outputs, constants, graph outputs.
    """
    g = model.graph
    producers, consumers = _producers(g), _consumers(g)
    inits = _constants(g)
    outputs = {o.name for o in g.output}
    found = []
    for q in (n for n in g.node if n.op_type == "QuantizeLinear"):
        x = q.input[0]
        src = producers.get(x)
        readers = [(r, j) for dq, _ in consumers.get(q.output[0], []) if dq.op_type == "DequantizeLinear"
                   for r, j in consumers.get(dq.output[0], [])]
        if any(dq.output[0] in outputs for dq, _ in consumers.get(q.output[0], [])):
            found.append(f"{x}: a graph output is fake-quantized")
        if x in inits:
            bad = [f"{r.op_type}[{j}]" for r, j in readers if (r.op_type, j) not in _WEIGHT_SLOTS]
            if bad:
                found.append(f"{x}: a constant that is not a weight is fake-quantized (read by {', '.join(bad)})")
            continue
        bad = [r for r, j in readers if r.op_type not in WEIGHTED_OP_TYPES
               and not (skips is not None and r.name in skips and j == skips[r.name])
               and not _quantized_max(r, consumers)]
        if src is not None and src.op_type in WEIGHTED_OP_TYPES and bad:
            found.append(f"{x}: output of {src.op_type} {src.name} is quantized for {bad[0].op_type} {bad[0].name}")
        elif bad and skips is not None:
            found.append(f"{x}: quantized for {bad[0].op_type} {bad[0].name}, not a weighted op's input "
                         f"or a residual skip")
    for dq in (n for n in g.node if n.op_type == "DequantizeLinear"):
        p = producers.get(dq.input[0])
        if dq.input[0] in inits and (p is None or p.op_type != "QuantizeLinear"):
            bad = [f"{r.op_type}[{j}]" for r, j in consumers.get(dq.output[0], []) if (r.op_type, j) not in _WEIGHT_SLOTS]
            if bad:
                found.append(f"{dq.input[0]}: a stored int constant that is not a weight (read by {', '.join(bad)})")
    return found


def _quantized_max(node, consumers) -> bool:
    """A max-like op whose only reader is a QuantizeLinear (the mirrored input Q/DQ is then allowed)."""
    readers = consumers.get(node.output[0], [])
    return node.op_type in MAX_LIKE_OP_TYPES and len(readers) == 1 and readers[0][0].op_type == "QuantizeLinear"


def mirror_max_inputs(model) -> int:
    """Give each MaxPool/ReduceMax whose output goes only to a Q the same Q -> DQ on its input; returns
    how many. ONNX Runtime's result is unchanged exactly (max commutes with the monotone quantizer),
    TensorRT commutes Q/DQ across max pooling itself. Why: OpenVINO 2026.4's CPU plugin computes a
    quantized ReduceMax output fed from float wrongly: on gaitset's set pooling (max over frames of a
    LeakyReLU -> MaxPool output that also feeds the next set block) OpenVINO f32 vs ONNX Runtime on the
    same S8S8 graph was cosine 0.948, 0.99999 with the mirrored Q/DQ (or with the ReduceMax output made
    a graph output, which stops OpenVINO's low-precision passes from moving it).
    """
    from onnx import helper

    g = model.graph
    producers, consumers = _producers(g), _consumers(g)
    added = 0
    for n in list(g.node):
        src = producers.get(n.input[0]) if n.input else None
        if not _quantized_max(n, consumers) or (src is not None and src.op_type == "DequantizeLinear"):
            continue
        q = consumers[n.output[0]][0][0]
        x = n.input[0]
        qn = helper.make_node("QuantizeLinear", [x, *q.input[1:]], [f"{x}_maxin_q"], name=f"{n.name}_input_q",
                              **{a.name: helper.get_attribute_value(a) for a in q.attribute})
        dq_attrs = {a.name: helper.get_attribute_value(a) for a in q.attribute if a.name == "axis"}
        dn = helper.make_node("DequantizeLinear", [qn.output[0], *q.input[1:]], [f"{x}_maxin_dq"],
                              name=f"{n.name}_input_dq", **dq_attrs)
        n.input[0] = dn.output[0]
        at = list(g.node).index(n)
        g.node.insert(at, dn)
        g.node.insert(at, qn)
        added += 1
    return added


def weighted_and_residual(model, exclude: Sequence[str] = ()) -> list[str]:
    """The node names S8S8 hands to ORT to quantize: weighted ops and residual Adds, less `exclude`."""
    skips = residual_skips(model)
    ex = set(exclude)
    return [n.name for n in model.graph.node
            if (n.op_type in WEIGHTED_OP_TYPES or n.name in skips) and n.name not in ex]
