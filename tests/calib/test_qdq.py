"""The two Q/DQ layouts written from one set of ranges: what TensorRT needs, what ONNX Runtime runs fast."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from tiny_graphs import tiny_convnet, tiny_feeds
from deploykit.calib import qdq
from deploykit.calib.ranges import RangeCollector

@pytest.fixture
def tiny_model(tmp_path):
    return tiny_convnet(tmp_path / "tiny.onnx")



@pytest.fixture
def ranges(tiny_model):
    return RangeCollector(tiny_model).collect(tiny_feeds(8)).ranges("max")


def _inits(m):
    return {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}


def test_s8s8_is_what_tensorrt_accepts(tiny_model, ranges, tmp_path):
    out = qdq.quantize(tiny_model, ranges, "s8s8", tmp_path / "s8.onnx")
    m = onnx.load(str(out))
    inits = _inits(m)
    qs = [n for n in m.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qs
    for n in qs:
        zp = inits[n.input[2]] if len(n.input) > 2 else None
        assert zp is not None and zp.dtype == np.int8 and not zp.any(), f"{n.name}: zero point must be int8 0"
        scale = inits[n.input[1]]
        src = n.input[0]
        if src in ("w1", "w2"):  # FP32 weight -> Q -> DQ, one scale per output channel on axis 0
            axis = next(a.i for a in n.attribute if a.name == "axis")
            assert axis == 0 and scale.shape == (inits[src].shape[0],)
        elif n.op_type == "QuantizeLinear":
            assert scale.shape == (), f"activation {src} must be per tensor"
    dq_inputs = [inits.get(n.input[0]) for n in m.graph.node if n.op_type == "DequantizeLinear"]
    assert not any(a is not None and a.dtype == np.int32 for a in dq_inputs), "TensorRT takes no INT32 DQ (bias)"
    assert "b1" in inits and inits["b1"].dtype == np.float32
    assert {n.domain for n in m.graph.node} <= {""}, "standard ONNX ops only (no com.microsoft Q/DQ)"
    assert next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) == 17  # TensorRT 8.5 reads <= 17
    assert m.graph.output[0].name == "y" and all(n.op_type == "Conv" for n in m.graph.node if "y" in n.output)


def test_u8s8_has_uint8_activations_and_int8_weights(tiny_model, ranges, tmp_path):
    out = qdq.quantize(tiny_model, ranges, "u8s8", tmp_path / "u8.onnx")
    m = onnx.load(str(out))
    inits = _inits(m)
    acts = [inits[n.input[2]].dtype for n in m.graph.node if n.op_type == "QuantizeLinear"]
    assert acts and all(d == np.uint8 for d in acts)
    weights = [a for a in inits.values() if a.dtype == np.int8 and a.ndim == 4]
    assert len(weights) == 2  # both conv weights stored int8 (symmetric, per channel)


@pytest.mark.parametrize("layout", ["s8s8", "u8s8"])
def test_both_layouts_run_close_to_fp32(tiny_model, ranges, tmp_path, layout):
    out = qdq.quantize(tiny_model, ranges, layout, tmp_path / f"{layout}.onnx")
    ref = ort.InferenceSession(str(tiny_model))
    got = ort.InferenceSession(str(out))
    for f in tiny_feeds(3, seed=7):  # held out
        a, b = ref.run(None, f)[0].ravel(), got.run(None, f)[0].ravel()
        assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.995


def test_excluded_node_stays_float(tiny_model, ranges, tmp_path):
    out = qdq.quantize(tiny_model, ranges, "s8s8", tmp_path / "ex.onnx", exclude_nodes=["conv2"])
    m = onnx.load(str(out))
    conv2 = next(n for n in m.graph.node if n.name == "conv2")
    producers = {o: n.op_type for n in m.graph.node for o in n.output}
    assert producers.get(conv2.input[1]) is None, "conv2's weight must stay a float initializer"
