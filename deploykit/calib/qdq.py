"""Q/DQ ONNX models from one set of ranges, in the two layouts the targets want.

| layout | activations | weights | bias | for |
|---|---|---|---|---|
| S8S8 | int8, symmetric (zero point 0), per tensor | int8 symmetric, per channel, FP32 weight -> Q -> DQ | float | TensorRT (explicit quantization, every version from 8.5) |
| U8S8 | uint8, asymmetric, per tensor | int8 symmetric, per channel | int32 (DQ) | ONNX Runtime's fast x86 path (QLinearConv with VNNI) |

TensorRT needs zero zero-points and takes no INT32 DequantizeLinear (the parser's DQ types are
INT8/FP8/INT4/FP4), so the S8S8 model keeps biases in float and stores FP32 weights behind a Q->DQ
pair (the QAT-export form every TensorRT version parses). ONNX Runtime's x86 kernels are fastest with
unsigned activations; the issue measured S8S8 at 0.89x FP32 and U8S8 at 3.2x on a ResNet-50.

The writer is `onnxruntime.quantization.quantize_static`, fed our ranges through its JSON range
cache (`calibration_cache_path`). For S8S8 it is told which nodes to quantize (weighted ops,
residual Adds) and that no op output is quantized; `placement.py`'s passes then leave the residual
Add's main input, constants that are not weights, float-kept nodes and graph outputs in float.
"""

from __future__ import annotations

import contextlib
import enum
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .. import atomic
from ..errors import DeploykitError, require
from . import placement
from .placement import WEIGHTED_OP_TYPES
from .ranges import Ranges

# S8S8 quantizes the weighted ops and residual Adds only (placement.py has the table and the
# why); TRT_OP_TYPES is that set, for callers that list op types. ONNX Runtime (U8S8): the weighted
# ops, residual/elementwise ops and pools, plus the ops its QDQ fusions chain through, so its QLinear
# kernels run back to back. BatchNormalization is in neither: folded into the Conv before
# quantization, and where one is left (after a Transpose or a Linear) it has no integer kernel.
TRT_OP_TYPES = WEIGHTED_OP_TYPES + ("Add",)
ORT_OP_TYPES = WEIGHTED_OP_TYPES + ("Add", "Mul", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Relu",
                                    "LeakyRelu", "Sigmoid", "Reshape", "Transpose", "Squeeze", "Unsqueeze",
                                    "Flatten", "Resize", "Slice", "Split", "Gather", "Pad")


class QdqLayout(str, enum.Enum):
    """Which Q/DQ layout to write (see the module table)."""

    S8S8 = "s8s8"
    U8S8 = "u8s8"

    @property
    def description(self) -> str:
        return {"s8s8": "S8S8 Q/DQ: int8 symmetric per-tensor activations (zero point 0), int8 symmetric "
                        "per-channel weights, float bias (TensorRT explicit quantization)",
                "u8s8": "U8S8 Q/DQ: uint8 asymmetric per-tensor activations, int8 symmetric per-channel "
                        "weights, int32 bias (ONNX Runtime x86)"}[self.value]


class QuantizeError(DeploykitError):
    """onnxruntime.quantization could not write the Q/DQ model."""


def _tensors_data(ranges: Ranges, layout: QdqLayout, model_tensors: set[str]):
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData

    data = {}
    for name, r in ranges.tensors.items():
        if name not in model_tensors:
            continue
        lo, hi = (-r.amax, r.amax) if layout is QdqLayout.S8S8 else (min(r.lo, 0.0), max(r.hi, 0.0))
        if hi - lo <= 0.0:
            hi = lo + 1e-8
        data[name] = TensorData(lowest=np.float32(lo), highest=np.float32(hi))
    return TensorsData(CalibrationMethod.MinMax, data)


def _per_tensor_batched_matmul_weights(model) -> dict:
    """Per-tensor overrides for MatMul weights of rank > 2 (OpenGait's SeparateFCs `[p, c, out]`):
    ONNX Runtime's QLinearMatMul takes a per-column weight zero point only for 2-D weights."""
    inits = {i.name: len(i.dims) for i in model.graph.initializer}
    return {n.input[1]: [{"symmetric": True}] for n in model.graph.node
            if n.op_type == "MatMul" and inits.get(n.input[1], 0) > 2}


def quantize(model_path: str | os.PathLike, ranges: Ranges, layout: QdqLayout | str,
             out_path: str | os.PathLike, *, exclude_nodes: Sequence[str] = (),
             op_types: Optional[Sequence[str]] = None) -> Path:
    """Write a Q/DQ model of `model_path` with `ranges` in `layout`, atomically.

    Args:
        model_path: the FP32 model the ranges were collected on (same tensor names).
        ranges: the calibration ranges.
        layout: "s8s8" (TensorRT) or "u8s8" (ONNX Runtime).
        out_path: where to write.
        exclude_nodes: node names kept in float (mixed precision).
        op_types: op types to quantize; default TRT_OP_TYPES (S8S8) or ORT_OP_TYPES (U8S8).
    """
    onnx = require("onnx", "export")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data

    layout = QdqLayout(layout)
    model = onnx.load(str(model_path))
    placement.name_nodes(model)
    names = {t for n in model.graph.node for t in [*n.input, *n.output]} | {i.name for i in model.graph.input}
    s8 = layout is QdqLayout.S8S8
    skips = placement.residual_skips(model) if s8 else None
    extra = {"ActivationSymmetric": s8, "WeightSymmetric": True, "QuantizeBias": not s8,
             "AddQDQPairToWeight": s8, "DedicatedQDQPair": False, "UseQDQContribOps": False,
             # MatMul weights [.., K, N]: one scale per output column N (ORT's default axis 1 is K for 3-D)
             "QDQOpTypePerChannelSupportToAxis": {"Conv": 0, "ConvTranspose": 1, "MatMul": -1},
             "TensorQuantOverrides": _per_tensor_batched_matmul_weights(model)}
    nodes = None
    if s8:  # TensorRT: weighted-op inputs and residual skips only; no op output is quantized
        extra["OpTypesToExcludeOutputQuantization"] = sorted({n.op_type for n in model.graph.node})
        nodes = placement.weighted_and_residual(model, exclude_nodes)
    with tempfile.TemporaryDirectory(prefix="deploykit-qdq-") as tmp:
        named = Path(tmp) / "model.named.onnx"
        onnx.save(model, str(named))
        cache = Path(tmp) / "ranges.json"
        save_tensors_data(_tensors_data(ranges, layout, names), cache)
        tmp_out = Path(tmp) / "model.qdq.onnx"
        log = logging.getLogger()
        level = log.level
        log.setLevel(logging.ERROR)  # quantize_static warns about pre-processing we did ourselves
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                quantize_static(str(named), str(tmp_out), calibration_data_reader=None,
                                quant_format=QuantFormat.QDQ,
                                op_types_to_quantize=list(op_types or (TRT_OP_TYPES if s8 else ORT_OP_TYPES)),
                                per_channel=True, reduce_range=False,
                                activation_type=QuantType.QInt8 if s8 else QuantType.QUInt8,
                                weight_type=QuantType.QInt8, nodes_to_quantize=nodes,
                                nodes_to_exclude=list(exclude_nodes),
                                calibrate_method=CalibrationMethod.MinMax, extra_options=extra,
                                calibration_cache_path=str(cache))
        except Exception as exc:
            raise QuantizeError(f"{Path(model_path).name}: onnxruntime.quantization failed to write the {layout.value} "
                                f"model: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; check that "
                                f"the ranges belong to this model") from exc
        finally:
            log.setLevel(level)
        out = onnx.load(str(tmp_out))
        placement.restore_float_inputs(out, model, keep_float=exclude_nodes, skips=skips, s8s8=s8)
        if s8:
            placement.mirror_max_inputs(out)
        atomic.write_bytes(out_path, _unquantize_outputs(out).SerializeToString())
    return Path(out_path)


def _unquantize_outputs(model):
    """Drop the Q -> DQ pair on each graph output: nothing consumes an output in INT8, so quantizing it
    only adds error (TensorRT's Q/DQ placement quantizes op inputs, not network outputs)."""
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    uses: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    drop = []
    for out in g.output:
        dq = producer.get(out.name)
        q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        if q is None or q.op_type != "QuantizeLinear" or uses.get(q.output[0], 0) != 1:
            continue
        x = q.input[0]
        src = producer.get(x)
        if src is None or uses.get(x, 0) != 1 or x in {o.name for o in g.output}:
            continue
        src.output[list(src.output).index(x)] = out.name
        drop += [q, dq]
    placement.drop_nodes(model, drop)
    placement.drop_unused_initializers(model)
    return model


def optimize_for_quantization(model_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """ONNX Runtime's quantization pre-processing: basic graph optimisation (constant folding,
    Conv+BatchNorm fusion, redundant nodes) and ONNX shape inference. Standard ONNX ops only, so
    the result is also what TensorRT and the calibration cache see.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="deploykit-opt-") as tmp:
        tmp_out = Path(tmp) / "model.opt.onnx"
        log = logging.getLogger()
        level = log.level
        log.setLevel(logging.ERROR)
        try:
            quant_pre_process(str(model_path), str(tmp_out), skip_symbolic_shape=True)
        except Exception as exc:
            raise QuantizeError(f"{Path(model_path).name}: ONNX Runtime's pre-processing failed: "
                                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
        finally:
            log.setLevel(level)
        onnx = require("onnx", "export")
        model = onnx.load(str(tmp_out))
        used = {n.domain for n in model.graph.node} | {"", "ai.onnx"}
        keep = [o for o in model.opset_import if o.domain in used]  # ORT lists its contrib domains; TensorRT needs none
        del model.opset_import[:]
        model.opset_import.extend(keep)
        atomic.write_bytes(out_path, model.SerializeToString())
    return Path(out_path)


def count_qdq(model_path: str | os.PathLike) -> dict[str, int]:
    """How many QuantizeLinear / DequantizeLinear nodes a model holds, and how many nodes in all."""
    onnx = require("onnx", "export")
    m = onnx.load(str(model_path), load_external_data=False)
    ops = [n.op_type for n in m.graph.node]
    return {"QuantizeLinear": ops.count("QuantizeLinear"), "DequantizeLinear": ops.count("DequantizeLinear"),
            "nodes": len(ops)}
