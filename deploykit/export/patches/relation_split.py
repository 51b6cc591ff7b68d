"""relation-split: a 1x1 Conv over Concat(G^T, G) split into MatMul(G, W1^T)^T + Conv(G, W2), no big Transpose.

What it removes: RGA's relation-aware attention (rga) builds a square relation matrix G [N, a, a]
(a = H*W positions for the spatial branch, a = C channels for the channel branch), stacks its
transpose and itself along the channels, `cat(G^T, G)` viewed as [N, 2a, *s] (prod(s) = a), and
embeds that with a 1x1 Conv to o << a channels. The exporter writes a Transpose of G (a x a:
2048 x 2048 floats in rga_att1 and rga_att4), a Concat twice that size and the Conv on it. On the CPU
OpenVINO runs that Transpose with its reference kernel and reorders the concatenation again for the
Conv (profile of the S8S8 rga engine: about a third of the time in those nodes); TensorRT and ONNX
Runtime copy the same 32 MB. Splitting the Conv's weight W = [W1 | W2] along its input channels:

    Conv(cat(G^T, G), W) [o, j] = sum_i W1[o, i] G[j, i] + sum_i W2[o, i] G[i, j] + b[o]
                                = (G @ W1^T)^T [o, j]  +  Conv(G, W2, b) [o, j]

so the transpose moves to the small product [N, a, o] (o = a / 8 in rga).

Before:
    G [N, a, a] --Transpose(0, 2, 1)--R1--+
    G ----------------------------------R2--+--Concat(axis 1)--Conv 1x1 (W [o, 2a], b)--> y [N, o, *s]
After:
    G --MatMul(W1^T [a, o])--Transpose(0, 2, 1)--Reshape [N, o, *s]--+--Add--> y
    G --R2--Conv 1x1 (W2 [o, a], b)-----------------------------------+

R1/R2 are the Reshape/Unsqueeze that view [N, a, a] as [N, a, *s]. The same multiply-adds in another
order: FP32 values agree to rounding, not bit for bit. Models: rga.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from ._graph import add_node, constant_value, detach, match_each, only_consumer, producer, reshape, static_shape
from ._graph import transpose
from .registry import Match, register_patch

_VIEWS = ("Reshape", "Unsqueeze")


def _view_of(t: gs.Tensor, graph: gs.Graph) -> gs.Tensor | None:
    """The [N, a, a] tensor that Reshape/Unsqueeze `t` = [N, a, *s] views, else None."""
    node = producer(t)
    if node is None or node.op not in _VIEWS:
        return None
    src = node.inputs[0]
    xs, ys = static_shape(src), static_shape(t)
    if xs is None or ys is None or len(xs) != 3 or xs[1] != xs[2] or len(ys) < 3:
        return None
    if tuple(ys[:2]) != tuple(xs[:2]) or int(np.prod(ys[2:])) != xs[2]:
        return None
    return src


def _is_1x1(graph: gs.Graph, conv: gs.Node) -> bool:
    w = constant_value(graph, conv.inputs[1]) if len(conv.inputs) > 1 else None
    if w is None or w.ndim < 3 or any(k != 1 for k in w.shape[2:]) or int(conv.attrs.get("group", 1)) != 1:
        return False
    flat = lambda key: [int(v) for v in conv.attrs.get(key, [])]  # noqa: E731
    return all(v == 1 for v in flat("strides")) and all(v == 0 for v in flat("pads")) and \
        conv.attrs.get("auto_pad", "NOTSET") in ("NOTSET", b"NOTSET")


def _match_conv(graph: gs.Graph, conv: gs.Node) -> Match | None:
    if not _is_1x1(graph, conv):
        return None
    cat = producer(conv.inputs[0])
    if cat is None or cat.op != "Concat" or len(cat.inputs) != 2 or int(cat.attrs.get("axis", 0)) != 1:
        return None
    if only_consumer(cat.outputs[0], graph) is not conv:
        return None
    gt, g = (_view_of(t, graph) for t in cat.inputs)
    if gt is None or g is None or static_shape(cat.inputs[0]) != static_shape(cat.inputs[1]):
        return None
    tr = producer(gt)
    if tr is None or tr.op != "Transpose" or tr.inputs[0] is not g or list(tr.attrs.get("perm", [])) != [0, 2, 1]:
        return None
    if only_consumer(gt, graph) is not producer(cat.inputs[0]):
        return None
    return Match((conv, cat, tr), {"g": g, "y_shape": static_shape(conv.outputs[0])})


@register_patch("relation-split", order=45)
def match(graph: gs.Graph) -> list[Match]:
    """Every 1x1 Conv on Concat(view(Transpose(G)), view(G)) of a square [N, a, a] tensor G."""
    return match_each(graph, "Conv", _match_conv)


def rewrite(graph: gs.Graph, m: Match) -> None:
    conv, cat, _ = m.nodes
    g, ys = m.info["g"], list(m.info["y_shape"])
    n, a = static_shape(g)[:2]
    w = constant_value(graph, conv.inputs[1])
    o = w.shape[0]
    w1, w2 = w[:, :a], w[:, a:]  # the Concat puts the transposed view first
    base = f"{conv.name or conv.op}/relation_split"
    # (G @ W1^T) [N, a, o] -> [N, o, a] -> [N, o, *s]
    gw = add_node(graph, "MatMul", f"{base}/transposed_half", [g, np.ascontiguousarray(w1.reshape(o, a).T)],
                  dtype=g.dtype, shape=[n, a, o])
    half1 = reshape(graph, f"{base}/transposed_half_view", transpose(graph, f"{base}/transposed_half_t", gw, [0, 2, 1],
                                                                     shape=[n, o, a]), ys)
    half2 = add_node(graph, "Conv", f"{base}/direct_half", [cat.inputs[1], np.ascontiguousarray(w2), *conv.inputs[2:]],
                     dict(conv.attrs), dtype=g.dtype, shape=ys)
    out = conv.outputs[0]
    detach(conv)
    detach(cat)
    add_node(graph, "Add", f"{base}/sum", [half1, half2], out=out)

