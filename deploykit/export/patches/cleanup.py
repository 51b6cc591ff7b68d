"""cleanup: constant folding, Identity removal and dead-node removal (then shape inference).

What it removes: work TensorRT would otherwise do, or refuse, at build time. Subgraphs computable
before run time (the Reciprocal of GeM's learned p, Shape -> Gather -> Div chains on static shapes,
Transpose of a weight) become initializers, so the parser sees constants where it needs them: the
Reduce* ops need `axes` as an initializer in TensorRT 8.5 through 11.1, Slice/Squeeze/Unsqueeze need
constant axes in 8.x and 10.1 (`trt_onnx_ops.psv` restrictions), and shape arithmetic left in the graph
becomes INT64 shape tensors that TensorRT 8.x narrows to INT32 and that pin layers to the GPU on a DLA
build. Identity nodes and nodes whose outputs nobody reads are dropped. This is what Polygraphy's
`surgeon sanitize --fold-constants` does; it runs last so that it also folds what the other passes
leave (the driver then re-runs ONNX shape inference on the result). Models: all.

Before:

    p (initializer) --Reciprocal--Mul(1.0)--+
    x ---------------------------------------Pow--> y       x --Identity--Relu--Concat(one input)--> z

After:

    x --Pow(0.1538 as initializer)--> y                      x --Relu--> z
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from ._graph import detach, producer, static_shape, swap
from .registry import Match, register_patch

FOLD_SIZE_LIMIT = 16 << 20  # bytes: larger folded tensors (Expand/Tile of constants) stay computed


def _is_const(t: gs.Tensor) -> bool:
    if t.is_empty() or isinstance(t, gs.Constant):
        return True
    node = producer(t)
    return node is not None and node.op == "Constant"


def _foldable(node: gs.Node) -> bool:
    if node.op == "Constant" or not node.outputs:
        return False
    if node.op == "Shape":
        return static_shape(node.inputs[0]) is not None
    return bool(node.inputs) and all(_is_const(t) for t in node.inputs)


def _is_identity(node: gs.Node) -> bool:
    return node.op == "Identity" or (node.op == "Concat" and len(node.inputs) == 1)


def _dead(node: gs.Node, graph: gs.Graph) -> bool:
    outs = set(id(t) for t in graph.outputs)
    return all(not t.outputs and id(t) not in outs for t in node.outputs)


@register_patch("cleanup", order=90)
def match(graph: gs.Graph) -> list[Match]:
    """One match for the whole graph when it has foldable, Identity or dead nodes; else none."""
    fold = [n for n in graph.nodes if _foldable(n)]
    identity = [n for n in graph.nodes if _is_identity(n)]
    dead = [n for n in graph.nodes if _dead(n, graph)]
    nodes = fold + identity + dead
    if not nodes:
        return []
    return [Match(tuple(nodes), {"fold": len(fold), "identity": len(identity), "dead": len(dead)})]


def _remove_identity(graph: gs.Graph, node: gs.Node) -> None:
    src, out = node.inputs[0], node.outputs[0]
    if not any(o is out for o in graph.outputs):
        for reader in list(out.outputs):
            swap(reader.inputs, out, src)
        detach(node)
        return
    writer = producer(src)
    # A graph output written through an Identity: let the writer write the output tensor itself,
    # unless src is also read elsewhere or is a graph input/output.
    if writer is None or src.outputs != [node] or any(o is src for o in graph.outputs):
        return
    detach(node)
    swap(writer.outputs, src, out)


def rewrite(graph: gs.Graph, m: Match) -> None:
    for node in [n for n in graph.nodes if _is_identity(n)]:
        _remove_identity(graph, node)
    graph.fold_constants(fold_shapes=True, error_ok=True, size_threshold=FOLD_SIZE_LIMIT)
