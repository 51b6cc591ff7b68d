"""focal-fold: Split -> the same Conv on each part -> Concat, folded into one batched Conv.

What it removes: GaitPart's FocalConv2d and GaitGL's GLConv local branch apply one convolution
to each of k equal strips along a spatial axis (padding per strip). The exporter writes k Conv
nodes sharing one weight, between a Split and a Concat. TensorRT builds every Conv as its own
layer: k small kernels with their own launches and tactic choices, plus the Split/Concat copies,
where one convolution over k times the batch does the same work (the engine-size and launch cost,
not a parser error; every TensorRT version in `trt_onnx_ops.psv` parses the unfolded graph). ONNX
Runtime pays the same per-node overhead on CPU. Models: gaitgl, gaitgl-oumvlp (GLConv), gaitpart
(FocalConv2d), and any model built from those blocks.

The strips move into the batch axis, so each strip still gets its own padding: exactly the same
arithmetic per output element.

Before (k strips along axis a of x [N, C, ..., D_a, ...], one weight W):

    x --Split(axis a, k x D_a/k)--+--> Conv(W) --+
                                  +--> Conv(W) --+--Concat(axis a)--> y
                                  +--> ...    ---+

After:

    x --Reshape [N, C, .., k, D_a/k, ..]--Transpose (k after N)--Reshape [N*k, C, .., D_a/k, ..]
      --Conv(W)--Reshape [N, k, C', ..]--Transpose (k before axis a)--Reshape [N, C', .., k*D'_a, ..]--> y

When the Concat has other inputs too (GLConv with fm_sign concatenates the global branch first),
only the run of strip outputs is replaced and the Concat stays.
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from ._graph import add_node, detach, int_list, match_each, norm_axis, only_consumer, reshape, same_constant
from ._graph import static_shape, transpose
from .registry import Match, register_patch

_CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


def _split_sizes(graph: gs.Graph, split: gs.Node, dim: int) -> list[int] | None:
    if len(split.inputs) > 1 and not split.inputs[1].is_empty():
        return int_list(graph, split.inputs[1])
    if "split" in split.attrs:  # opset < 13
        return [int(s) for s in split.attrs["split"]]
    k = len(split.outputs)  # equal parts (num_outputs, or the output count before opset 18)
    return [dim // k] * k if dim % k == 0 else None


def _same_conv(graph: gs.Graph, a: gs.Node, b: gs.Node) -> bool:
    if any(a.attrs.get(k) != b.attrs.get(k) for k in _CONV_ATTRS) or len(a.inputs) != len(b.inputs):
        return False
    return all(same_constant(graph, x, y) for x, y in zip(a.inputs[1:], b.inputs[1:]))


def _match_split(graph: gs.Graph, split: gs.Node) -> Match | None:
    x = split.inputs[0]
    shape = static_shape(x)
    if shape is None or len(shape) < 3 or len(split.outputs) < 2:
        return None
    axis = norm_axis(int(split.attrs.get("axis", 0)), len(shape))
    sizes = _split_sizes(graph, split, shape[axis])
    if axis < 2 or sizes is None or len(set(sizes)) != 1 or sum(sizes) != shape[axis]:
        return None
    convs = [only_consumer(o, graph) for o in split.outputs]
    if any(c is None or c.op != "Conv" or c.inputs[0] is not o for c, o in zip(convs, split.outputs)):
        return None
    if not all(_same_conv(graph, convs[0], c) for c in convs[1:]):
        return None
    if any(c.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET") for c in convs):
        return None
    concats = [only_consumer(c.outputs[0], graph) for c in convs]
    concat = concats[0]
    if concat is None or concat.op != "Concat" or any(c is not concat for c in concats):
        return None
    y_shape = static_shape(convs[0].outputs[0])
    if y_shape is None or norm_axis(int(concat.attrs["axis"]), len(y_shape)) != axis:
        return None
    outs = [c.outputs[0] for c in convs]
    ins = list(concat.inputs)
    start = next((i for i, t in enumerate(ins) if t is outs[0]), None)
    if start is None or ins[start:start + len(outs)] != outs:
        return None
    return Match((split, *convs, concat), {"axis": axis, "k": len(convs), "x_shape": shape, "y_shape": y_shape,
                                           "start": start})


@register_patch("focal-fold", order=40)
def match(graph: gs.Graph) -> list[Match]:
    """Every Split whose equal parts each feed the same Conv, concatenated back in order."""
    return match_each(graph, "Split", _match_split)


def rewrite(graph: gs.Graph, m: Match) -> None:
    split, *convs, concat = m.nodes
    a, k, start = m.info["axis"], m.info["k"], m.info["start"]
    xs, ys = list(m.info["x_shape"]), list(m.info["y_shape"])  # x [N, C, ..] ; one strip's y [N, C', ..]
    r = len(xs)
    base = f"{split.name or split.op}/focal_fold"
    x = split.inputs[0]
    # x [N, C, .., D_a, ..] -> [N, C, .., k, D_a/k, ..] -> [N, k, C, .., D_a/k, ..] -> [N*k, C, .., D_a/k, ..]
    x6 = reshape(graph, f"{base}/strips", x, xs[:a] + [k, xs[a] // k] + xs[a + 1:])
    perm_in = [0, a] + list(range(1, a)) + list(range(a + 1, r + 1))
    xt = transpose(graph, f"{base}/strips_to_batch", x6, perm_in)
    xb = reshape(graph, f"{base}/batch", xt, [xs[0] * k] + xs[1:a] + [xs[a] // k] + xs[a + 1:])
    conv = convs[0]
    yb = add_node(graph, "Conv", f"{base}/conv", [xb, *conv.inputs[1:]], dict(conv.attrs), dtype=x.dtype)
    # yb [N*k, C', .., D'_a, ..] -> [N, k, C', .., D'_a, ..] -> [N, C', .., k, D'_a, ..] -> [N, C', .., k*D'_a, ..]
    y6 = reshape(graph, f"{base}/unbatch", yb, [ys[0], k] + ys[1:])
    perm_out = [0] + list(range(2, a + 1)) + [1] + list(range(a + 1, r + 1))
    yt = transpose(graph, f"{base}/batch_to_strips", y6, perm_out)
    merged = ys[:a] + [k * ys[a]] + ys[a + 1:]
    whole = len(concat.inputs) == k
    y = reshape(graph, f"{base}/merge", yt, merged, out=concat.outputs[0] if whole else None)
    if whole:
        detach(concat)
    else:
        for _ in range(k):
            del concat.inputs[start]
        concat.inputs.insert(start, y)
    for c in convs:
        detach(c)
