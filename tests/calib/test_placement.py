"""Q/DQ placement: what TensorRT's rules put where, checked on hand-made graphs (residual block, BatchNorm, constants)."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from deploykit.calib import placement, qdq
from deploykit.calib.ranges import RangeCollector


def _residual_block(path):
    """x -> Conv a -> Relu -> Conv b -> Add(b, x) -> Relu -> BatchNorm -> Mul(const) -> y.

    The Add is residual (b straight from a Conv, x the skip); BatchNorm (not after a Conv, so not
    folded) and the Mul constant are not weights.
    """
    rng = np.random.default_rng(0)
    c = 4
    inits = [numpy_helper.from_array((rng.standard_normal((c, c, 3, 3)) * 0.3).astype(np.float32), n) for n in "ab"]
    inits += [numpy_helper.from_array(v.astype(np.float32), n) for n, v in
              (("g", rng.uniform(0.5, 1.5, c)), ("beta", rng.standard_normal(c) * 0.1),
               ("mu", rng.standard_normal(c) * 0.1), ("var", rng.uniform(0.5, 1.5, c)),
               ("k", rng.uniform(0.5, 2.0, (1, c, 1, 1))))]
    nodes = [helper.make_node("Conv", ["x", "a"], ["h"], name="conv_a", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"], name="relu_a"),
             helper.make_node("Conv", ["r", "b"], ["m"], name="conv_b", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["m", "x"], ["s"], name="res_add"),
             helper.make_node("Relu", ["s"], ["t"], name="relu_out"),
             helper.make_node("BatchNormalization", ["t", "g", "beta", "mu", "var"], ["n"], name="bn"),
             helper.make_node("Mul", ["n", "k"], ["y"], name="scale")]
    g = helper.make_graph(nodes, "res", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 8, 8])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), str(path))
    return path


def _feeds(n, seed):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((1, 4, 8, 8)).astype(np.float32)} for _ in range(n)]


@pytest.fixture
def block(tmp_path):
    path = _residual_block(tmp_path / "res.onnx")
    return path, RangeCollector(path).collect(_feeds(6, 0)).ranges("max")


def _dq_readers(m):
    """{float tensor fake-quantized: [(reader op, input index)]} through Q -> DQ or a stored-int DQ."""
    prod = {o: n for n in m.graph.node for o in n.output}
    out = {}
    for n in m.graph.node:
        for j, t in enumerate(n.input):
            dq = prod.get(t)
            if n.op_type not in ("QuantizeLinear", "DequantizeLinear") and dq is not None \
                    and dq.op_type == "DequantizeLinear":
                q = prod.get(dq.input[0])
                src = q.input[0] if q is not None and q.op_type == "QuantizeLinear" else dq.input[0]
                out.setdefault(src, []).append((n.name, j))
    return out


def test_s8s8_follows_tensorrt_rules(block, tmp_path):
    path, rg = block
    assert placement.residual_skips(onnx.load(str(path))) == {"res_add": 1}
    out = onnx.load(str(qdq.quantize(path, rg, "s8s8", tmp_path / "s8.onnx")))
    readers = _dq_readers(out)
    # inputs of both convs (activation + weight), the residual's skip x; nothing else
    assert readers == {"x": [("conv_a", 0), ("res_add", 1)], "a": [("conv_a", 1)], "r": [("conv_b", 0)],
                       "b": [("conv_b", 1)]}, readers
    assert placement.violations(out, skips={"res_add": 1}) == []
    ref, got = ort.InferenceSession(str(path)), ort.InferenceSession(out.SerializeToString())
    for f in _feeds(3, 9):  # held out; 8-bit noise on a 2-conv block: cosine well above 0.99
        a, b = ref.run(None, f)[0].ravel(), got.run(None, f)[0].ravel()
        assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.995


def test_u8s8_keeps_batchnorm_and_constants_float(block, tmp_path):
    path, rg = block
    out = onnx.load(str(qdq.quantize(path, rg, "u8s8", tmp_path / "u8.onnx")))
    readers = _dq_readers(out)
    assert not {"g", "beta", "mu", "var", "k", "k_quantized"} & set(readers), readers
    bn = next(n for n in out.graph.node if n.name == "bn")
    assert list(bn.input[1:]) == ["g", "beta", "mu", "var"]
    assert ("conv_a", 1) in readers.get("a_quantized", readers.get("a", []))  # weights stay int8


@pytest.mark.parametrize("layout", ["s8s8", "u8s8"])
def test_float_kept_node_reads_float_inputs(block, tmp_path, layout):
    path, rg = block
    out = onnx.load(str(qdq.quantize(path, rg, layout, tmp_path / "f.onnx", exclude_nodes=["res_add", "conv_a"])))
    readers = _dq_readers(out)
    assert not any(name in ("res_add", "conv_a") for rs in readers.values() for name, _ in rs), readers


def test_violations_name_a_quantized_conv_output(block, tmp_path):
    """Today's ORT default placement (outputs of Conv quantized) is what the audit must catch."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data

    path, rg = block
    cache = tmp_path / "r.json"
    save_tensors_data(qdq._tensors_data(rg, qdq.QdqLayout.S8S8, set(rg.tensors)), cache)
    bad = tmp_path / "bad.onnx"
    quantize_static(str(path), str(bad), None, quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["Conv", "Add", "BatchNormalization", "Mul"],
                    extra_options={"ActivationSymmetric": True, "AddQDQPairToWeight": True},
                    calibration_cache_path=str(cache))
    found = placement.violations(onnx.load(str(bad)), skips={"res_add": 1})
    assert any("output of Conv conv_b" in f for f in found), found
    assert any(f.startswith(("g:", "k:")) for f in found), found


def test_a_quantized_max_gets_the_same_qdq_on_its_input_and_the_result_is_exact(tmp_path):
    """x -> Relu -> ReduceMax(axis 1) -> Q -> DQ -> Conv: the pass mirrors the Q/DQ onto the ReduceMax
    input (OpenVINO 2026.4 mis-computes it otherwise); max commutes with the quantizer, so ONNX Runtime's
    output must be bit-identical (tolerance 0), and `violations` must accept the mirrored pair."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array((rng.standard_normal((4, 3, 1, 1)) * 0.5).astype(np.float32), "w")
    s = numpy_helper.from_array(np.array(0.02, np.float32), "s")
    z = numpy_helper.from_array(np.array(0, np.int8), "z")
    ax = numpy_helper.from_array(np.array([1], np.int64), "ax")
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("ReduceMax", ["r", "ax"], ["m"], name="setmax", keepdims=0),
             helper.make_node("QuantizeLinear", ["m", "s", "z"], ["mq"], name="q"),
             helper.make_node("DequantizeLinear", ["mq", "s", "z"], ["md"], name="dq"),
             helper.make_node("Conv", ["md", "w"], ["y"], name="conv")]
    g = helper.make_graph(nodes, "maxq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 3, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])], [w, s, z, ax])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    x = {"x": rng.standard_normal((1, 5, 3, 4, 4)).astype(np.float32)}
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)[0]
    assert placement.mirror_max_inputs(model) == 1
    assert [n.op_type for n in model.graph.node][:4] == ["Relu", "QuantizeLinear", "DequantizeLinear", "ReduceMax"]
    assert placement.mirror_max_inputs(model) == 0  # idempotent: the input already comes through a DQ
    after = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)[0]
    np.testing.assert_array_equal(after, before)
    assert placement.violations(model, skips={}) == []
