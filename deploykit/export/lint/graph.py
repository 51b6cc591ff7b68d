"""A read-only view of a shape-inferred ONNX graph, with the lookups the lint rules need."""

from __future__ import annotations

from typing import Optional

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

# ONNX element types by the names the parser table uses.
DTYPE_NAMES = {
    TensorProto.FLOAT: "FP32", TensorProto.FLOAT16: "FP16", TensorProto.BFLOAT16: "BF16",
    TensorProto.DOUBLE: "DOUBLE", TensorProto.INT32: "INT32", TensorProto.INT64: "INT64",
    TensorProto.INT8: "INT8", TensorProto.UINT8: "UINT8", TensorProto.BOOL: "BOOL", TensorProto.STRING: "STRING",
    TensorProto.INT16: "INT16", TensorProto.UINT16: "UINT16", TensorProto.UINT32: "UINT32",
    TensorProto.UINT64: "UINT64", TensorProto.COMPLEX64: "COMPLEX64", TensorProto.COMPLEX128: "COMPLEX128",
}
for _name, _label in (("FLOAT8E4M3FN", "FP8"), ("FLOAT8E5M2", "FP8"), ("INT4", "INT4"), ("UINT4", "UINT4"),
                      ("FLOAT4E2M1", "FP4")):
    if hasattr(TensorProto, _name):
        DTYPE_NAMES[getattr(TensorProto, _name)] = _label


def infer(model: onnx.ModelProto) -> onnx.ModelProto:
    """Shape-inferred copy (with data propagation, so Shape arithmetic on static shapes resolves)."""
    return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)


class GraphView:
    """Producers, consumers, constants, dtypes and shapes of every tensor of a model's main graph.

    Attributes:
        model: the shape-inferred model.
        opset: the default-domain opset.
        nodes: the graph's nodes in file order.
    """

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        g = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.nodes = list(g.node)
        self.inits = {t.name: t for t in g.initializer}
        self.inputs = [v.name for v in g.input if v.name not in self.inits]
        self.outputs = [v.name for v in g.output]
        self.producer = {o: n for n in self.nodes for o in n.output if o}
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for i in n.input:
                if i:
                    self.consumers.setdefault(i, []).append(n)
        self.types: dict[str, tuple[int, Optional[list]]] = {}
        for v in [*g.input, *g.value_info, *g.output]:
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim] \
                if t.HasField("shape") else None
            self.types[v.name] = (t.elem_type, dims)
        for name, t in self.inits.items():
            self.types[name] = (t.data_type, list(t.dims))
        for n in self.nodes:
            if n.op_type == "Constant":
                for a in n.attribute:
                    if a.name == "value":
                        self.types[n.output[0]] = (a.t.data_type, list(a.t.dims))

    def dtype(self, name: str) -> Optional[str]:
        t = self.types.get(name)
        return DTYPE_NAMES.get(t[0], f"type {t[0]}") if t and t[0] else None

    def shape(self, name: str) -> Optional[list]:
        t = self.types.get(name)
        return t[1] if t else None

    def static_shape(self, name: str) -> Optional[list[int]]:
        s = self.shape(name)
        return s if s is not None and all(isinstance(d, int) and d > 0 for d in s) else None

    def rank(self, name: str) -> Optional[int]:
        s = self.shape(name)
        return None if s is None else len(s)

    def is_initializer(self, name: str) -> bool:
        """An initializer or the output of a Constant node: what the parser imports as weights."""
        return name in self.inits or (name in self.producer and self.producer[name].op_type == "Constant")

    def value(self, name: str) -> Optional[np.ndarray]:
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
        return None

    def is_build_time_constant(self, name: str, _depth: int = 0) -> bool:
        """Computable before run time: from initializers and Shapes of statically shaped tensors."""
        if not name or self.is_initializer(name):
            return True
        node = self.producer.get(name)
        if node is None or _depth > 64:
            return False
        if node.op_type == "Shape":
            return self.static_shape(node.input[0]) is not None
        return all(self.is_build_time_constant(i, _depth + 1) for i in node.input)

    def attr(self, node, name: str, default=None):
        for a in node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    def used(self, name: str) -> bool:
        return bool(name) and (name in self.consumers or name in self.outputs)
