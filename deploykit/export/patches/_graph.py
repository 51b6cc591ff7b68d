"""Small onnx-graphsurgeon helpers shared by the patch modules (no pattern logic here)."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional, Sequence, TypeVar

import numpy as np
import onnx_graphsurgeon as gs
from onnx_graphsurgeon.logger import G_LOGGER


M = TypeVar("M")


def match_each(graph: gs.Graph, op: str, matcher: Callable[[gs.Graph, gs.Node], Optional[M]]) -> list[M]:
    """`matcher(graph, node)` on every node of type `op` (a snapshot: rewrites may follow), the non-None
    results in graph order."""
    found = (matcher(graph, n) for n in list(graph.nodes) if n.op == op)
    return [m for m in found if m is not None]


@contextlib.contextmanager
def quiet_gs() -> Iterator[None]:
    """Silence onnx-graphsurgeon's warnings (folding reports every node it cannot fold)."""
    old = G_LOGGER.severity
    G_LOGGER.severity = G_LOGGER.ERROR
    try:
        yield
    finally:
        G_LOGGER.severity = old


def opset(graph: gs.Graph) -> int:
    """The default-domain opset of the graph."""
    return int(graph.opset)


def producer(t: gs.Tensor) -> Optional[gs.Node]:
    """The node that writes `t`, or None for graph inputs and constants."""
    return t.inputs[0] if len(t.inputs) == 1 else None


def only_consumer(t: gs.Tensor, graph: gs.Graph) -> Optional[gs.Node]:
    """The single node reading `t`, or None if `t` has another reader or is a graph output."""
    if len(t.outputs) != 1 or any(o is t for o in graph.outputs):
        return None
    return t.outputs[0]


def static_shape(t: gs.Tensor) -> Optional[tuple[int, ...]]:
    """`t`'s shape when every dim is a known positive int, else None."""
    shape = t.shape
    if shape is None or any(not isinstance(d, (int, np.integer)) or d <= 0 for d in shape):
        return None
    return tuple(int(d) for d in shape)


def constant_value(graph: gs.Graph, t: gs.Tensor) -> Optional[np.ndarray]:
    """The value of `t` if it is computable before run time, else None.

    Constants are read directly; anything else is evaluated by folding, on a copy of the graph,
    the subgraph that computes `t` (Shape of a statically shaped tensor counts as constant). The
    graph itself is not modified.
    """
    if t is None or t.is_empty():
        return None
    if isinstance(t, gs.Constant):
        return np.asarray(t.values)
    node = producer(t)
    if node is None:
        return None
    if node.op == "Constant" and "value" in node.attrs:
        v = node.attrs["value"]
        return np.asarray(v.values if isinstance(v, gs.Constant) else v)
    copy = graph.copy()
    target = copy.tensors()[t.name]
    copy.outputs = [target]
    with quiet_gs():
        copy.cleanup(remove_unused_graph_inputs=True)
        copy.fold_constants(fold_shapes=True, error_ok=True)
    target = copy.tensors().get(t.name)
    return np.asarray(target.values) if isinstance(target, gs.Constant) else None


def int_list(graph: gs.Graph, t: gs.Tensor) -> Optional[list[int]]:
    """`constant_value` as a list of ints (a scalar becomes a one-element list), or None."""
    v = constant_value(graph, t)
    if v is None or v.dtype.kind not in "iu":
        return None
    return [int(x) for x in np.atleast_1d(v).ravel()]


def same_constant(graph: gs.Graph, a: gs.Tensor, b: gs.Tensor) -> bool:
    """True when `a` and `b` are the same tensor, or constants with equal dtype, shape and values."""
    if a is b:
        return True
    if a is None or b is None or a.is_empty() or b.is_empty():
        return (a is None or a.is_empty()) and (b is None or b.is_empty())
    va, vb = constant_value(graph, a), constant_value(graph, b)
    return (va is not None and vb is not None and va.dtype == vb.dtype and va.shape == vb.shape
            and bool(np.array_equal(va, vb)))


def norm_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def unique_node_name(graph: gs.Graph, name: str) -> str:
    """`name`, or `name_2`, `name_3`, ... when a node of the graph already has it (ORT needs unique names)."""
    used = {n.name for n in graph.nodes}
    if name not in used:
        return name
    i = 2
    while f"{name}_{i}" in used:
        i += 1
    return f"{name}_{i}"


def add_node(graph: gs.Graph, op: str, name: str, inputs: Sequence, attrs: Optional[dict] = None,
             out: Optional[gs.Variable] = None, dtype=None, shape=None) -> gs.Variable:
    """Append a node and return its (single) output tensor.

    Args:
        graph: the graph to add to.
        op: ONNX op type.
        name: node name; its output tensor gets a unique name derived from it.
        inputs: tensors, or numpy arrays (made into constants named after the node).
        attrs: node attributes.
        out: an existing tensor to write (keeps graph-output names stable); default a new one.
        dtype: dtype of a new output tensor (shape inference fills in what is left None).
        shape: shape of a new output tensor.
    """
    name = unique_node_name(graph, name)
    ins = []
    for i, x in enumerate(inputs):
        if isinstance(x, np.ndarray):
            x = gs.Constant(f"{name}/const{i}", np.ascontiguousarray(x))
        ins.append(x)
    if out is None:
        out = gs.Variable(graph._generate_name(f"{name}_output", set(graph.tensors())), dtype=dtype, shape=shape)
    graph.nodes.append(gs.Node(op=op, name=name, attrs=dict(attrs or {}), inputs=ins, outputs=[out]))
    return out


def reshape(graph: gs.Graph, name: str, x: gs.Tensor, shape: Sequence[int], out=None) -> gs.Variable:
    return add_node(graph, "Reshape", name, [x, np.asarray(shape, dtype=np.int64)], out=out, dtype=x.dtype,
                    shape=list(shape))


def transpose(graph: gs.Graph, name: str, x: gs.Tensor, perm: Sequence[int], shape=None) -> gs.Variable:
    return add_node(graph, "Transpose", name, [x], {"perm": [int(p) for p in perm]}, dtype=x.dtype, shape=shape)


def reduce(graph: gs.Graph, op: str, name: str, x: gs.Tensor, axes: Sequence[int], keepdims: bool) -> gs.Variable:
    """A Reduce* node, with `axes` as attribute (opset < 18) or input (opset >= 18)."""
    axes = [int(a) for a in axes]
    if opset(graph) >= 18:
        return add_node(graph, op, name, [x, np.asarray(axes, dtype=np.int64)], {"keepdims": int(keepdims)},
                        dtype=x.dtype)
    return add_node(graph, op, name, [x], {"axes": axes, "keepdims": int(keepdims)}, dtype=x.dtype)


def squeeze_axes(graph: gs.Graph, name: str, x: gs.Tensor, axes: Sequence[int], op: str = "Squeeze",
                 out=None) -> gs.Variable:
    """Squeeze or Unsqueeze `axes`, as input (opset >= 13) or attribute (older opsets)."""
    axes = [int(a) for a in axes]
    if opset(graph) >= 13:
        return add_node(graph, op, name, [x, np.asarray(axes, dtype=np.int64)], out=out, dtype=x.dtype)
    return add_node(graph, op, name, [x], {"axes": axes}, out=out, dtype=x.dtype)


def swap(tensors: list, old: gs.Tensor, new: gs.Tensor) -> None:
    """Replace `old` by `new` in a node's inputs or outputs (gs lists reject slice assignment)."""
    for i, t in enumerate(list(tensors)):
        if t is old:
            tensors[i] = new


def detach(node: gs.Node) -> None:
    """Disconnect a node; `graph.cleanup()` then drops it."""
    node.inputs.clear()
    node.outputs.clear()
