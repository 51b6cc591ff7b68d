"""gem-fp16: GeM pooling rescaled by each bin's max, so no intermediate leaves the FP16 range.

What it removes: GeM pooling, `mean(clamp(x, eps) ** p) ** (1 / p)` with a learned p around 6.5
(GeMHPP in GaitGL, GaitGL-OUMVLP and GaitEdge), raises every activation to the 6.5th power before
averaging. In FP16 (max 65504) x ** 6.5 is inf for every x above 65504 ** (1 / 6.5) = 5.51, and
the mean and the root of an inf stay inf: one large activation turns its whole embedding part into
inf/NaN. TensorRT's Pow is a plain elementwise kPOW with no FP16 safeguard, in every version; an
FP16 engine (BuilderFlag.FP16 on 8.x/10.x, an FP16 ONNX graph under TensorRT 11's strong typing)
computes it in FP16 unless the layer is pinned to FP32, and TensorRT 11 has no precision flags left
to pin with. Small activations fail the other way: 0.2 ** 6.5 = 2.9e-5 is already below FP16's
smallest normal (6.1e-5).

The rewrite divides each bin by its max m before the power, and multiplies m back after the
root. For any positive m, m * mean((x / m) ** p) ** (1 / p) = mean(x ** p) ** (1 / p) exactly, and
now every intermediate lies in (0, 1] (x / m, its power, their mean, the root) or is at most m,
so an FP16 engine computes GeM wherever x itself fits FP16. Range, for a bin holding 10.0:
before, Pow output 3.2e6 (inf in FP16); after, at most 1.0. It needs a positive lower clamp (the
`eps` of GeM) so that m > 0. Models: gaitgl, gaitgl-oumvlp, gaitedge.

Before (pooled over the bin axes; AveragePool with a window covering them, ReduceMean or
GlobalAveragePool):

    x --Clip(min=eps)--Pow(p)--AveragePool(bin)--Pow(1/p)--> y

After:

    x --Clip(min=eps)--+--ReduceMax(bin, keepdims)--------------+------------------+
                       +--Div(m)--Pow(p)--AveragePool(bin)--Pow(1/p)--Mul(m)--> y
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from ._graph import add_node, constant_value, detach, int_list, match_each, only_consumer, producer, reduce
from ._graph import static_shape
from .registry import Match, register_patch

_POOLS = ("AveragePool", "ReduceMean", "GlobalAveragePool")


def _scalar(graph: gs.Graph, t: gs.Tensor) -> float | None:
    v = constant_value(graph, t)
    return float(v.ravel()[0]) if v is not None and v.size == 1 and v.dtype.kind == "f" else None


def _lower_bound(graph: gs.Graph, node: gs.Node | None) -> float | None:
    """The constant lower clamp that `node` applies (Clip min, or Max with a constant), else None."""
    if node is None:
        return None
    if node.op == "Clip":
        if "min" in node.attrs:  # opset < 11
            return float(node.attrs["min"])
        return _scalar(graph, node.inputs[1]) if len(node.inputs) > 1 and not node.inputs[1].is_empty() else None
    if node.op == "Max" and len(node.inputs) == 2:
        consts = [v for v in (_scalar(graph, t) for t in node.inputs) if v is not None]
        return consts[0] if len(consts) == 1 else None
    return None


def _pooled_axes(graph: gs.Graph, pool: gs.Node, shape: tuple[int, ...]) -> tuple[list[int], bool] | None:
    """(axes the pool averages over completely, keepdims), or None for any other pooling."""
    rank = len(shape)
    if pool.op == "GlobalAveragePool":
        return list(range(2, rank)), True
    if pool.op == "ReduceMean":
        if "axes" in pool.attrs:
            axes = list(pool.attrs["axes"])
        elif len(pool.inputs) > 1 and not pool.inputs[1].is_empty():
            axes = int_list(graph, pool.inputs[1])
        else:
            axes = list(range(rank))
        if axes is None:
            return None
        return sorted(a % rank for a in axes), bool(pool.attrs.get("keepdims", 1))
    kernel = list(pool.attrs.get("kernel_shape", []))
    strides = list(pool.attrs.get("strides", [1] * len(kernel)))
    pads = list(pool.attrs.get("pads", [0] * 2 * len(kernel)))
    if len(kernel) != rank - 2 or any(pads) or pool.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
        return None
    axes = []
    for i, (k, s) in enumerate(zip(kernel, strides)):
        if k == shape[2 + i]:
            axes.append(2 + i)
        elif not (k == 1 and s == 1):
            return None  # a sliding window: the per-bin max would not broadcast back
    return (axes, True) if axes else None


def _match_pow(graph: gs.Graph, pow1: gs.Node) -> Match | None:
    clamp = producer(pow1.inputs[0])
    eps = _lower_bound(graph, clamp)
    p = _scalar(graph, pow1.inputs[1])
    shape = static_shape(pow1.inputs[0])
    if eps is None or eps <= 0 or p is None or p <= 1.0 or shape is None:
        return None
    pool = only_consumer(pow1.outputs[0], graph)
    if pool is None or pool.op not in _POOLS or pool.inputs[0] is not pow1.outputs[0]:
        return None
    pooled = _pooled_axes(graph, pool, shape)
    pow2 = only_consumer(pool.outputs[0], graph)
    if pooled is None or pow2 is None or pow2.op != "Pow" or pow2.inputs[0] is not pool.outputs[0]:
        return None
    q = _scalar(graph, pow2.inputs[1])
    if q is None or abs(q * p - 1.0) > 1e-5:
        return None
    axes, keepdims = pooled
    return Match((pow1, pool, pow2), {"axes": axes, "keepdims": keepdims, "p": p, "eps": eps})


@register_patch("gem-fp16", order=30)
def match(graph: gs.Graph) -> list[Match]:
    """Every Pow(p > 1) of a positively clamped tensor -> complete average over bins -> Pow(1/p)."""
    return match_each(graph, "Pow", _match_pow)


def rewrite(graph: gs.Graph, m: Match) -> None:
    pow1, pool, pow2 = m.nodes
    axes, keepdims = m.info["axes"], m.info["keepdims"]
    base = f"{pow1.name or pow1.op}/gem_fp16"
    x = pow1.inputs[0]
    peak = reduce(graph, "ReduceMax", f"{base}/bin_max", x, axes, keepdims=True)  # m, broadcastable over x
    unit = add_node(graph, "Div", f"{base}/scale_to_unit", [x, peak], dtype=x.dtype)  # (0, 1]
    powered = add_node(graph, "Pow", f"{base}/pow", [unit, pow1.inputs[1]], dtype=x.dtype)  # (0, 1]
    pooled = add_node(graph, pool.op, f"{base}/mean", [powered, *pool.inputs[1:]], dict(pool.attrs), dtype=x.dtype)
    root = add_node(graph, "Pow", f"{base}/root", [pooled, pow2.inputs[1]], dtype=x.dtype)  # (0, 1]
    scale = peak if keepdims else reduce(graph, "ReduceMax", f"{base}/bin_max_flat", x, axes, keepdims=False)
    out = pow2.outputs[0]
    for node in (pow1, pool, pow2):
        detach(node)
    add_node(graph, "Mul", f"{base}/scale_back", [root, scale], out=out)
