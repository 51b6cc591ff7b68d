"""DLA eligibility: which nodes a Jetson DLA core cannot run, so TensorRT falls back to the GPU.

Rules from NVIDIA's "DLA Supported Layers and Restrictions" (TensorRT docs, Jetson/DriveOS table):
DLA runs FP16/INT8 only; no dynamic dims; non-batch dims <= 8192; batch (the product of all dims
before C, H, W) <= 4096; Convolution/FullyConnected 2D only, kernel 1..32, stride 1..8, channels
1..8192; Deconvolution 2D, not grouped or dilated, zero padding; Activation ReLU, Sigmoid, TanH,
clipped ReLU, Leaky ReLU; ElementWise Sum, Sub, Product, Max, Min, Div, Pow; Concatenation on the
channel axis only; Pooling max and average (IPoolingLayer docs); Parametric ReLU with constant
slopes; Comparison INT8 only. DLA is absent from TensorRT 11.0-11.3 ("TensorRT 10.7 was the last
release that supported DLA"; back in 11.4.1 on AGX Orin with JetPack 7.2.2+).

Layers the table does not list (MatrixMultiply, Shape, Gather, Cast, ...) and restrictions the table
only summarises (Shuffle, Slice, Resize, Reduce, SoftMax) are treated conservatively: the rule
below says GPU where we are not sure. `IBuilderConfig.can_run_on_DLA(layer)` on the device is the
authority; this is the estimate you get before any device is involved.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator, Optional

from .graph import GraphView
from .report import Finding

MAX_DIM, MAX_BATCH = 8192, 4096
_ACTIVATIONS = ("Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip")
_ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "Max", "Min", "Pow")
_NO_LAYER = ("Constant", "Identity")  # become weights or disappear


def _chw(view: GraphView, name: str) -> Optional[list[int]]:
    return view.static_shape(name)


def _dims_ok(view: GraphView, node) -> Optional[str]:
    for t in [*node.input[:1], *node.output[:1]]:
        s = _chw(view, t)
        if s is None:
            return f"{t} has no static shape"
        if len(s) < 3:
            return f"{t} is rank {len(s)}; DLA layers work on [batch..., C, H, W]"
        if max(s[-3:]) > MAX_DIM or math.prod(s[:-3]) > MAX_BATCH:
            return f"{t} {s} exceeds DLA limits (C/H/W <= {MAX_DIM}, batch <= {MAX_BATCH})"
    return None


def _conv(view: GraphView, node) -> Optional[str]:
    # 1-D convolutions and pooling are imported as 2-D ones (the parser unsqueezes rank-3 inputs).
    w = view.static_shape(node.input[1]) if len(node.input) > 1 else None
    if w is None or len(w) not in (3, 4):
        return "only 2D convolution runs on DLA"
    kernel = view.attr(node, "kernel_shape", w[2:])
    strides = view.attr(node, "strides", [1] * len(kernel))
    if any(not 1 <= k <= 32 for k in kernel) or any(not 1 <= s <= 8 for s in strides):
        return f"kernel {list(kernel)} / stride {list(strides)} outside DLA's 1..32 / 1..8"
    if w[0] > MAX_DIM or w[1] * view.attr(node, "group", 1) > MAX_DIM:
        return f"channels {w[1]}->{w[0]} outside 1..{MAX_DIM}"
    if node.op_type == "ConvTranspose" and (view.attr(node, "group", 1) != 1 or any(view.attr(node, "pads", [0]))
                                            or any(d != 1 for d in view.attr(node, "dilations", [1]))):
        return "deconvolution on DLA must be ungrouped, undilated and unpadded"
    return None


def _pool(view: GraphView, node) -> Optional[str]:
    return None if view.rank(node.input[0]) in (3, 4) else "only 2D pooling runs on DLA"


def _concat(view: GraphView, node) -> Optional[str]:
    rank = view.rank(node.output[0]) or 0
    axis = view.attr(node, "axis", 0)
    if rank < 3 or axis % rank != rank - 3:
        return f"concatenation on axis {axis} of a rank-{rank} tensor; DLA concatenates channels only"
    return None if len(node.input) >= 2 else "a one-input concatenation"


def _elementwise(view: GraphView, node) -> Optional[str]:
    ranks = {view.rank(i) for i in node.input if i}
    return None if len(ranks) == 1 else "operands of different ranks (broadcasting) are not in the DLA table"


def _prelu(view: GraphView, node) -> Optional[str]:
    return None if view.is_initializer(node.input[1]) else "slopes are not a build-time constant"


def _always(view: GraphView, node) -> Optional[str]:
    return None


RULES: dict[str, Callable] = {
    "Conv": _conv, "ConvTranspose": _conv, "MaxPool": _pool, "AveragePool": _pool,
    "GlobalAveragePool": _pool, "GlobalMaxPool": _pool, "Concat": _concat, "PRelu": _prelu,
    "BatchNormalization": _always, "LRN": _always, **{op: _always for op in _ACTIVATIONS},
    **{op: _elementwise for op in _ELEMENTWISE},
}


def check_dla(view: GraphView, column: str) -> tuple[list[Finding], dict, list[str]]:
    """Per-node DLA eligibility. Returns (findings, summary, names of the layers left to the GPU)."""
    findings: list[Finding] = []
    if column == "11.1":
        findings.append(Finding("error", "dla-unavailable", "TensorRT 11.0-11.3 has no DLA support (10.7 was the "
                                                            "last release with DLA before 11.4.1).",
                                hint="build DLA engines with TensorRT 10.x (JetPack 6.1/6.2: 10.3) or 8.5 (JetPack 5)"))
    layers = [n for n in view.nodes if n.op_type not in _NO_LAYER]
    gpu = list(_fallbacks(view, layers))
    groups: dict[tuple, list] = {}
    for node, why in gpu:
        groups.setdefault((node.op_type, why), []).append(node.name)
    for (op, why), names in groups.items():
        more = f" ({len(names)} layers, e.g. this one)" if len(names) > 1 else ""
        findings.append(Finding("warning", "dla-fallback", f"runs on the GPU, not the DLA: {why}{more}.", op,
                                names[0], hint="build with GPU fallback (trtexec --allowGPUFallback); each "
                                               "DLA<->GPU switch costs a copy"))
    on_gpu = {id(n) for n, _ in gpu}
    switches = sum(1 for n in layers for i in n.input if i in view.producer
                   and view.producer[i].op_type not in _NO_LAYER
                   and (id(view.producer[i]) in on_gpu) != (id(n) in on_gpu))
    summary = {"dla_eligible": f"{len(layers) - len(gpu)} of {len(layers)} layers", "dla_gpu_switches": switches}
    return findings, summary, [n.name for n, _ in gpu]


def _fallbacks(view: GraphView, layers) -> Iterator[tuple]:
    for node in layers:
        rule = RULES.get(node.op_type)
        if rule is None:
            yield node, f"{node.op_type} is not in the DLA layer table"
            continue
        why = _dims_ok(view, node) or rule(view, node)
        if why:
            yield node, why
