"""pixelshuffle: DepthToSpace (from nn.PixelShuffle) rewritten as Reshape-Transpose-Reshape.

What it removes: the TorchScript exporter writes `nn.PixelShuffle(r)` as `DepthToSpace(blocksize=r,
mode="CRD")` (opset >= 11). The ONNX-TensorRT parser accepts DepthToSpace for TensorRT 8.5, 8.6, 10.1
and 11.1 (`trt_onnx_ops.psv`), but only on 4-D NCHW input, and it builds the op from shuffle layers
itself (parser source, onnx-tensorrt@10.1-GA). Older parsers had bugs in this op family (TensorRT
7.0 asserted in its sibling SpaceToDepth, onnx/onnx-tensorrt#360), other compilers fed
TensorRT-style graphs may not take it, and ONNX Runtime's quantizer leaves a float
DequantizeLinear -> DepthToSpace -> QuantizeLinear island because it has no integer kernel for it.
Plain Reshape/Transpose are understood by every backend and every Q/DQ placement rule.
Off by default: for the TensorRT versions deploykit targets it builds what the parser builds
anyway. Apply it with `--patch pixelshuffle` for a target that rejects DepthToSpace.
Models: fastpose, fastpose-res50 (PixelShuffle in the DUC blocks).

The rewrite is a pure data movement with static shapes, so values are bit-identical.

Before:

    x [N, C*r*r, H, W] --DepthToSpace(blocksize r, mode CRD)--> y [N, C, H*r, W*r]

After (CRD; DCR reshapes to [N, r, r, C, H, W] and transposes with perm [0, 3, 4, 1, 5, 2]):

    x --Reshape [N, C, r, r, H, W]--Transpose [0, 1, 4, 2, 5, 3]--Reshape [N, C, H*r, W*r]--> y
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from ._graph import detach, reshape, static_shape, transpose
from .registry import Match, register_patch


def _mode(node: gs.Node) -> str:
    mode = node.attrs.get("mode", "DCR")
    return mode.decode() if isinstance(mode, bytes) else str(mode)


@register_patch("pixelshuffle", order=20, default=False)
def match(graph: gs.Graph) -> list[Match]:
    """Every DepthToSpace on a statically shaped 4-D input, in CRD or DCR mode."""
    found = []
    for node in graph.nodes:
        if node.op != "DepthToSpace":
            continue
        shape = static_shape(node.inputs[0])
        r = int(node.attrs.get("blocksize", 0))
        if shape is None or len(shape) != 4 or r < 1 or shape[1] % (r * r) or _mode(node) not in ("CRD", "DCR"):
            continue
        found.append(Match((node,), {"shape": shape, "r": r, "mode": _mode(node)}))
    return found


def rewrite(graph: gs.Graph, m: Match) -> None:
    (node,) = m.nodes
    (n, c, h, w), r = m.info["shape"], m.info["r"]
    c_out = c // (r * r)
    base = f"{node.name or node.op}/pixelshuffle"
    if m.info["mode"] == "CRD":
        six, perm = [n, c_out, r, r, h, w], [0, 1, 4, 2, 5, 3]
    else:
        six, perm = [n, r, r, c_out, h, w], [0, 3, 4, 1, 5, 2]
    x6 = reshape(graph, f"{base}/split_depth", node.inputs[0], six)
    t = transpose(graph, f"{base}/interleave", x6, perm, shape=[n, c_out, h, r, w, r])
    out = node.outputs[0]
    detach(node)
    reshape(graph, f"{base}/merge", t, [n, c_out, h * r, w * r], out=out)
