"""static-split: Split/Slice sizes computed at run time, and sequence splits, made static constants.

What it removes:
- `SplitToSequence` + `SequenceAt`: TensorRT has no sequence type; every Sequence* op is "N" for
  TensorRT 8.5, 8.6, 10.1 and 11.1 in the ONNX-TensorRT operator table (`trt_onnx_ops.psv`), so the
  parser rejects the graph. The TorchScript exporter writes them for `torch.split` whose sizes are
  not constants or whose result list is not unpacked.
- `Split` whose `split` sizes, and `Slice` whose starts/ends/axes/steps, come from Shape arithmetic
  (`x.chunk(k)` and `x.size(d) // k` traced with the exporter's folding off, or any graph exported
  with dynamic axes and then fixed). TensorRT 8.5/8.6 require Slice `axes` to be an initializer and
  10.1 still does; Split sizes must at least be build-time shape tensors. Shape tensors run on the GPU
  only (a DLA engine splits around them) and, on TensorRT 8.x, their INT64 values are narrowed to INT32.
With the static input shapes of a deploykit export every such value is known, so it is computed once
here and written as an INT64 initializer. Models: none of the zoo's own exports needs it today (their
splits use Python ints, `int(h // 2 ** halving)`); it serves graphs exported elsewhere
(`deploykit patch`) and model code that splits by traced sizes (`x.chunk(k, dim)`).

Before:

    x --Shape--Gather--Div--Mul--+
    x ---------------------------Slice(starts, ends=<computed>)--> y

    x --SplitToSequence(axis 2)--+--SequenceAt(0)--> a
                                 +--SequenceAt(1)--> b

After:

    x --Slice(starts=[0], ends=[4], axes=[2], steps=[1] as initializers)--> y

    x --Split(axis 2, split=[4, 4] as initializer)--+--> a
                                                    +--> b
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from ._graph import add_node, constant_value, detach, int_list, norm_axis, opset, producer, squeeze_axes, static_shape
from ._graph import unique_node_name
from .registry import Match, register_patch

# Inputs that must be constants: Split's `split`; Slice's starts, ends, axes, steps.
_CONST_INPUTS = {"Split": (1,), "Slice": (1, 2, 3, 4)}


def _computed(t: gs.Tensor) -> bool:
    node = producer(t)
    return node is not None and node.op != "Constant"


def _match_sized(graph: gs.Graph, node: gs.Node) -> Match | None:
    idx = [i for i in _CONST_INPUTS[node.op] if i < len(node.inputs) and not node.inputs[i].is_empty()
           and _computed(node.inputs[i])]
    if not idx:
        return None
    values = {i: constant_value(graph, node.inputs[i]) for i in idx}
    if any(v is None for v in values.values()):
        return None  # really dynamic (data-dependent): leave it, the lint reports it
    return Match((node,), {"values": values})


def _sequence_sizes(graph: gs.Graph, node: gs.Node) -> list[int] | None:
    shape = static_shape(node.inputs[0])
    if shape is None:
        return None
    dim = shape[norm_axis(int(node.attrs.get("axis", 0)), len(shape))]
    if len(node.inputs) < 2 or node.inputs[1].is_empty():
        return [1] * dim
    split = int_list(graph, node.inputs[1])
    if split is None:
        return None
    if np.ndim(constant_value(graph, node.inputs[1])) == 0:  # a chunk size: the last chunk takes the rest
        size = split[0]
        return [size] * (dim // size) + ([dim % size] if dim % size else [])
    return split


def _match_sequence(graph: gs.Graph, node: gs.Node) -> Match | None:
    seq = node.outputs[0]
    readers = list(seq.outputs)
    if not readers or any(r.op != "SequenceAt" for r in readers) or any(o is seq for o in graph.outputs):
        return None
    sizes = _sequence_sizes(graph, node)
    if sizes is None:
        return None
    picks = []
    for r in readers:
        i = int_list(graph, r.inputs[1])
        if i is None or len(i) != 1 or not -len(sizes) <= i[0] < len(sizes):
            return None
        picks.append(i[0] % len(sizes))
    return Match((node, *readers), {"sizes": sizes, "picks": picks})


@register_patch("static-split", order=10)
def match(graph: gs.Graph) -> list[Match]:
    """Split/Slice with computed (but static) size inputs, and SplitToSequence read by SequenceAt."""
    found = []
    for node in list(graph.nodes):
        if node.op in _CONST_INPUTS:
            found.append(_match_sized(graph, node))
        elif node.op == "SplitToSequence":
            found.append(_match_sequence(graph, node))
    return [m for m in found if m is not None]


def rewrite(graph: gs.Graph, m: Match) -> None:
    node = m.nodes[0]
    if node.op != "SplitToSequence":
        for i, v in m.info["values"].items():
            name = graph._generate_name(f"{node.name or node.op}/static_input{i}", set(graph.tensors()))
            node.inputs[i] = gs.Constant(name, np.asarray(v, dtype=np.int64))
        return
    readers, sizes, picks = m.nodes[1:], m.info["sizes"], m.info["picks"]
    x = node.inputs[0]
    axis = int(node.attrs.get("axis", 0))
    squeeze = (len(node.inputs) < 2 or node.inputs[1].is_empty()) and int(node.attrs.get("keepdims", 1)) == 0
    used = set(graph.tensors())
    parts = [gs.Variable(graph._generate_name(f"{node.name or node.op}/static_split_output", used), dtype=x.dtype)
             for _ in sizes]
    sizes_t = np.asarray(sizes, dtype=np.int64)
    name = unique_node_name(graph, f"{node.name or node.op}/static_split")
    if opset(graph) >= 13:
        split = gs.Node("Split", name, {"axis": axis}, [x, gs.Constant(f"{name}/sizes", sizes_t)], parts)
    else:
        split = gs.Node("Split", name, {"axis": axis, "split": sizes}, [x], parts)
    graph.nodes.append(split)
    for reader, i in zip(readers, picks):
        out = reader.outputs[0]
        detach(reader)
        if squeeze:
            squeeze_axes(graph, f"{reader.name or reader.op}/static_squeeze", parts[i], [axis], out=out)
        else:
            add_node(graph, "Identity", f"{reader.name or reader.op}/static_pick", [parts[i]], out=out)
    detach(node)
