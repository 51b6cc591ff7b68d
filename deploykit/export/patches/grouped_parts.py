"""grouped-parts: k per-part copies of the same small conv net merged into one grouped-conv net.

What it removes: GaitPart's temporal feature aggregator keeps 16 clones of each Conv1d block
(`clones(conv, parts_num)`), one per horizontal part, and runs part i through clone i: the exporter
writes 16 parallel chains Squeeze -> Conv -> LeakyReLU -> Conv -> Unsqueeze (x2 blocks: 64 Conv
nodes of a few hundred MACs each), read from one Split and joined by one Concat. TensorRT builds
each Conv as a layer of its own (64 tiny kernels, launches and tactic searches; every version in
`trt_onnx_ops.psv` parses the graph, so this is a cost, not a parse error), and the part-wise
chains keep the builder from fusing anything across parts. One grouped convolution with
group = parts computes the same dot products in one layer. Models: gaitpart (and gaitpart
variants).

The parts move into the channel axis (part i takes channels [i*C, (i+1)*C)), the weights of part
i become group i, so every output element is the same sum of the same products.

Before (x [P, N, C, S], part axis 0):

    x --Split(axis 0, 1 each)--+--Squeeze--Conv(W_0)--LeakyRelu--Conv(V_0)--Unsqueeze--+
                               +--Squeeze--Conv(W_1)--LeakyRelu--Conv(V_1)--Unsqueeze--+--Concat(axis 0)--> y
                               +-- ...                                                 +

After:

    x --Transpose [N, P, C, S]--Reshape [N, P*C, S]--Conv(concat W_i, group P)--LeakyRelu
      --Conv(concat V_i, group P)--Reshape [N, P, C', S]--Transpose [P, N, C', S]--> y
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from ._graph import add_node, constant_value, detach, int_list, match_each, norm_axis, only_consumer, producer
from ._graph import reshape, same_constant, static_shape, transpose
from .registry import Match, register_patch

# Per-element ops that can run on the merged tensor unchanged (their constant inputs must agree).
_ELEMENTWISE = ("LeakyRelu", "Relu", "Sigmoid", "Tanh", "Elu", "Selu", "HardSigmoid", "HardSwish", "Clip")
# Ops whose constant inputs are per-part parameters, concatenated along the output channels.
_PER_CHANNEL = ("Conv", "BatchNormalization")


def _axes_are(graph: gs.Graph, node: gs.Node, axis: int, rank: int) -> bool:
    axes = list(node.attrs["axes"]) if "axes" in node.attrs else (
        int_list(graph, node.inputs[1]) if len(node.inputs) > 1 else None)
    return axes is not None and len(axes) == 1 and norm_axis(axes[0], rank) == axis


def _source(graph: gs.Graph, t: gs.Tensor, axis: int) -> tuple[gs.Tensor, int] | None:
    """(x, i) when `t` is part i of x along `axis` with that axis removed (Split+Squeeze or Gather)."""
    node = producer(t)
    if node is None:
        return None
    if node.op == "Gather":
        x, shape = node.inputs[0], static_shape(node.inputs[0])
        idx = constant_value(graph, node.inputs[1]) if shape else None
        if idx is None or idx.ndim != 0 or norm_axis(int(node.attrs.get("axis", 0)), len(shape)) != axis:
            return None
        return x, int(idx) % shape[axis]
    if node.op != "Squeeze" or not _axes_are(graph, node, axis, len(node.inputs[0].shape or ())):
        return None
    split = producer(node.inputs[0])
    if split is None or split.op != "Split":
        return None
    x = split.inputs[0]
    shape = static_shape(x)
    if shape is None or norm_axis(int(split.attrs.get("axis", 0)), len(shape)) != axis:
        return None
    if len(split.outputs) != shape[axis]:  # one output per part, so every part has size 1
        return None
    return x, next(i for i, o in enumerate(split.outputs) if o is node.inputs[0])


def _chain(graph: gs.Graph, u: gs.Tensor, axis: int, rank: int):
    """Walk back from a Concat input: Unsqueeze <- per-part nodes <- part source. None if no match."""
    unsq = producer(u)
    if unsq is None or unsq.op != "Unsqueeze" or only_consumer(u, graph) is None:
        return None
    if not _axes_are(graph, unsq, axis, rank):
        return None
    nodes, t = [], unsq.inputs[0]
    while (src := _source(graph, t, axis)) is None:
        node = producer(t)
        if node is None or node.op not in _ELEMENTWISE + _PER_CHANNEL or only_consumer(t, graph) is None:
            return None
        nodes.append(node)
        t = node.inputs[0]
    return (src, nodes[::-1], unsq) if nodes else None


def _same_step(graph: gs.Graph, a: gs.Node, b: gs.Node) -> bool:
    if a.op != b.op or a.attrs != b.attrs or len(a.inputs) != len(b.inputs):
        return False
    if a.op not in _PER_CHANNEL:
        return all(same_constant(graph, x, y) for x, y in zip(a.inputs[1:], b.inputs[1:]))
    for x, y in zip(a.inputs[1:], b.inputs[1:]):  # per-part parameters: constants of one shape
        vx, vy = constant_value(graph, x), constant_value(graph, y)
        if vx is None or vy is None or vx.shape != vy.shape:
            return False
    return True


def _match_concat(graph: gs.Graph, concat: gs.Node) -> Match | None:
    y_shape = static_shape(concat.outputs[0])
    if y_shape is None or len(concat.inputs) < 2:
        return None
    rank = len(y_shape)
    axis = norm_axis(int(concat.attrs["axis"]), rank)
    chains = [_chain(graph, u, axis, rank) for u in concat.inputs]
    if any(c is None for c in chains):
        return None
    (x, _), first, _ = chains[0]
    k = len(chains)
    shape = static_shape(x)
    if shape is None or shape[axis] != k or rank < 3:
        return None
    for i, ((xi, part), nodes, _) in enumerate(chains):
        if xi is not x or part != i or len(nodes) != len(first):
            return None
        if not all(_same_step(graph, a, b) for a, b in zip(first, nodes)):
            return None
    if not any(n.op == "Conv" for n in first):
        return None  # nothing per-part to merge
    tail = static_shape(first[-1].outputs[0])
    if tail is None:
        return None
    steps = [[c[1][j] for c in chains] for j in range(len(first))]
    return Match((concat, *[n for c in chains for n in c[1]]),
                 {"x": x, "axis": axis, "k": k, "steps": steps, "unsqueezes": [c[2] for c in chains],
                  "x_shape": shape, "tail": tail})


@register_patch("grouped-parts", order=50)
def match(graph: gs.Graph) -> list[Match]:
    """Every Concat of k per-part chains (same ops, per-part weights) over the k parts of one tensor."""
    return match_each(graph, "Concat", _match_concat)


def _merged_step(graph: gs.Graph, name: str, x: gs.Tensor, nodes: list[gs.Node], k: int) -> gs.Variable:
    first = nodes[0]
    attrs = dict(first.attrs)
    if first.op in _PER_CHANNEL:
        # Per-part parameters stacked along the output channels: part i owns rows [i*C', (i+1)*C').
        ins = [np.concatenate([constant_value(graph, n.inputs[j]) for n in nodes], axis=0)
               for j in range(1, len(first.inputs))]
        if first.op == "Conv":
            attrs["group"] = int(attrs.get("group", 1)) * k
    else:
        ins = list(first.inputs[1:])
    return add_node(graph, first.op, name, [x, *ins], attrs, dtype=x.dtype)


def rewrite(graph: gs.Graph, m: Match) -> None:
    concat = m.nodes[0]
    x, a, k, xs, tail = m.info["x"], m.info["axis"], m.info["k"], m.info["x_shape"], m.info["tail"]
    base = f"{concat.name or concat.op}/grouped_parts"
    rest = [j for j in range(len(xs)) if j != a]  # branch layout: [N, C, L...] = x without the part axis
    perm = [rest[0], a, rest[1], *rest[2:]]
    # x -> [N, k, C, L...] -> [N, k*C, L...]: part i owns channels [i*C, (i+1)*C)
    xt = transpose(graph, f"{base}/parts_next_to_channels", x, perm)
    t = reshape(graph, f"{base}/parts_into_channels", xt, [xs[rest[0]], k * xs[rest[1]], *[xs[j] for j in rest[2:]]])
    for j, nodes in enumerate(m.info["steps"]):
        t = _merged_step(graph, f"{base}/{j}_{nodes[0].op}", t, nodes, k)
    # [N, k*C', L'...] -> [N, k, C', L'...] -> back to the Concat's layout (part axis at a)
    t = reshape(graph, f"{base}/channels_into_parts", t, [tail[0], k, *tail[1:]])
    out = concat.outputs[0]
    detach(concat)
    for node in m.info["unsqueezes"]:
        detach(node)
    for nodes in m.info["steps"]:
        for node in nodes:
            detach(node)
    inverse = [int(i) for i in np.argsort(perm)]
    add_node(graph, "Transpose", f"{base}/parts_back", [t], {"perm": inverse}, out=out)
