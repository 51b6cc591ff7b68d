"""FP16 as a graph: FP32 islands where FP16 overflows, and an emulation that rounds like FP16 storage."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from deploykit.build.fp16 import (emulate_fp16, naive_fp16, plan_fp32_nodes, run_emulated, to_fp16)


def _model(nodes, inits, out_shape=(1, 4)):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
                          [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.checker.check_model(m)
    return m


def gem_model():
    """GeM as exported without the gem-fp16 patch: y = mean(clip(x, 1e-6) ** 6.5) ** (1 / 6.5) * 2.

        x --Clip--Pow(p)--ReduceMean--Pow(1/p)--Mul(2)--> y
    """
    return _model([helper.make_node("Clip", ["x", "eps"], ["c"], name="clip"),
                   helper.make_node("Pow", ["c", "p"], ["cp"], name="pow"),
                   helper.make_node("ReduceMean", ["cp"], ["m"], name="mean", axes=[1], keepdims=1),
                   helper.make_node("Pow", ["m", "rp"], ["r"], name="root"),
                   helper.make_node("Mul", ["r", "two"], ["y"], name="scale")],
                  {"eps": 1e-6, "p": 6.5, "rp": 1 / 6.5, "two": 2.0}, out_shape=(1, 1))


def amplifier_model():
    """y = (x * 300) * (x * 300) / 1000: the product leaves FP16's range for |x| > 0.85.

        x --Mul(300)--h--Mul(h, h)--s--Div(1000)--> y
    """
    return _model([helper.make_node("Mul", ["x", "k"], ["h"], name="amp"),
                   helper.make_node("Mul", ["h", "h"], ["s"], name="square"),
                   helper.make_node("Div", ["s", "d"], ["y"], name="shrink")], {"k": 300.0, "d": 1000.0})


def _cos(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return a @ b / np.linalg.norm(a) / np.linalg.norm(b)


def test_emulation_rounds_like_fp16_storage():
    m = _model([helper.make_node("Add", ["x", "b"], ["y"], name="add")], {"b": [[0.1, 1e-3, 3.0, 7e4]]})
    x = np.array([[1.0001, 2.0, 3.14159, 1.0]], np.float32)
    got = run_emulated(naive_fp16(m), {"x": x})
    want = (x.astype(np.float16) + np.float32([[0.1, 1e-3, 3.0, 65504]]).astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(got.outputs["y"], want.astype(np.float16).astype(np.float32))
    emu = emulate_fp16(naive_fp16(m))
    assert all(t.data_type != TensorProto.FLOAT16 for t in emu.graph.initializer)


def test_known_op_rule_keeps_gem_in_fp32_and_in_range():
    m = gem_model()
    x = {"x": np.array([[9.0, 1.0, 0.5, 7.0]], np.float32)}  # 9 ** 6.5 = 1.6e6: inf in FP16
    ref = ort.InferenceSession(m.SerializeToString()).run(None, x)[0]
    naive = run_emulated(naive_fp16(m), x)
    assert not naive.finite and "cp" in naive.overflowed
    plan = plan_fp32_nodes(m)
    assert {"pow", "mean", "root"} <= set(plan.fp32_nodes)
    ours = run_emulated(to_fp16(m, plan.fp32_nodes), x)
    assert ours.finite and not ours.overflowed and _cos(ref, ours.outputs["y"]) >= 0.999
    assert abs(float(ours.outputs["y"].ravel()[0]) - float(ref.ravel()[0])) < 1e-2 * abs(float(ref.ravel()[0]))


def test_audited_tensors_stay_fp32_and_islands_are_joined():
    m = amplifier_model()
    x = {"x": np.array([[1.0, -2.0, 0.3, 0.9]], np.float32)}
    ref = ort.InferenceSession(m.SerializeToString()).run(None, x)[0]
    assert not run_emulated(naive_fp16(m), x).finite
    plan = plan_fp32_nodes(m, keep_fp32_tensors=["s"])  # what the range audit flags (3.6e5 > 65504)
    assert plan.fp32_nodes == ["shrink", "square"]
    m16 = to_fp16(m, plan.fp32_nodes)
    names = [n.name for n in m16.graph.node]
    assert len(names) == len(set(names)), "duplicate Cast nodes must be merged"
    ours = run_emulated(m16, x)
    assert ours.finite and _cos(ref, ours.outputs["y"]) >= 0.999
    onnx.checker.check_model(m16)


def test_fp16_model_itself_is_valid_for_onnx_runtime():
    m16 = to_fp16(gem_model(), plan_fp32_nodes(gem_model()).fp32_nodes)
    out = ort.InferenceSession(m16.SerializeToString()).run(None, {"x": np.ones((1, 4), np.float32)})[0]
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert any(t.data_type == TensorProto.FLOAT16 for t in m16.graph.initializer)


@pytest.fixture(scope="module")
def gaitgl_unpatched(tmp_path_factory):
    from deploykit.calib.qdq import optimize_for_quantization
    from deploykit.export import OnnxFromModel

    d = tmp_path_factory.mktemp("fp16")
    res = OnnxFromModel("gaitgl", frames=3, patches=[])(d)  # GeM exactly as upstream writes it
    return optimize_for_quantization(res.onnx_path, d / "gaitgl.opt.onnx"), res.manifest


def test_gaitgl_gem_overflow_naive_vs_ours(gaitgl_unpatched):
    """The stress check on a real model: the naive FP16 graph overflows in GeM, ours stays in range."""
    from deploykit.verify.fp16_check import fp16_stress

    opt, man = gaitgl_unpatched
    r = fp16_stress(opt, man, samples=1)
    assert r.gain is not None and r.gain <= r.max_gain
    assert not r.naive_finite and any("/HPP/Pow" in t for t in r.naive_overflowed)
    assert r.ours_finite and not r.ours_overflowed and r.ours_cosine >= 0.999, r.to_json()


def _square_plus_model():
    """y = x**2 + x * W (issue 13, bug 3): Pow is kept FP32, and Add with it (it consumes Pow's output).

        x --Pow(2)------------\\
        x --Mul(W)--(FP16)-----Add--> y      (x = 300, W = 4.2: y = 91260 > 65504)
    """
    g = helper.make_graph([helper.make_node("Pow", ["x", "two"], ["p"], name="pow"),
                           helper.make_node("Mul", ["x", "W"], ["m"], name="mul"),
                           helper.make_node("Add", ["p", "m"], ["y"], name="add")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                          [numpy_helper.from_array(np.float32(2.0).reshape(()), "two"),
                           numpy_helper.from_array(np.full((1, 4), 4.2, np.float32), "W")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def test_fp32_island_output_leaves_the_graph_in_fp32():
    """|y| = 91260 > 65504: an FP32 island whose value is a graph output must not pass through FP16.
    Tolerance: the FP16 Mul branch x*W = 1260 carries FP16 rounding (weight 4.2 -> 4.1992, the product's
    half-ulp 0.5), so |err| <= 300 * 0.0008 + 0.5 < 1; through FP16 the output is inf."""
    m = _square_plus_model()
    x = {"x": np.array([[300.0, -300.0, -2.0, 1.0]], np.float32)}
    ref = ort.InferenceSession(m.SerializeToString()).run(None, x)[0]
    assert abs(float(ref[0, 0]) - 91260.0) < 1e-2
    plan = plan_fp32_nodes(m)
    assert set(plan.fp32_nodes) == {"pow", "add"}
    m16 = to_fp16(m, plan.fp32_nodes)
    onnx.checker.check_model(m16)
    for got in (ort.InferenceSession(m16.SerializeToString()).run(None, x)[0], run_emulated(m16, x).outputs["y"]):
        assert np.isfinite(got).all(), got
        np.testing.assert_allclose(got, ref, rtol=0, atol=1.0)


def test_graph_inputs_reach_kept_nodes_unrounded():
    """x = 300.1 is 300.0 in FP16; Pow kept FP32 must square 300.1 (90060.01), not 300.0 (90000).
    y = (x**2 * 0.001) * 1 with the last Mul in FP16: y = 90.06, FP16 half-ulp at 90 = 0.031; reading x
    through FP16 gives 90.00 (error 0.06)."""
    g = helper.make_graph([helper.make_node("Pow", ["x", "two"], ["p"], name="pow"),
                           helper.make_node("Mul", ["p", "milli"], ["q"], name="shrink"),
                           helper.make_node("Mul", ["q", "one"], ["y"], name="fp16_mul")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                          [numpy_helper.from_array(np.float32(v).reshape(()), k)
                           for k, v in {"two": 2.0, "milli": 1e-3, "one": 1.0}.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    x = {"x": np.array([[300.1, 300.1, 1.0, 2.0]], np.float32)}
    ref = ort.InferenceSession(m.SerializeToString()).run(None, x)[0]
    plan = plan_fp32_nodes(m)
    assert set(plan.fp32_nodes) == {"pow", "shrink"}
    m16 = to_fp16(m, plan.fp32_nodes)
    pow_node = next(n for n in m16.graph.node if n.name == "pow")
    assert pow_node.input[0] == "x", "the kept node must read the FP32 graph input itself"
    for got in (ort.InferenceSession(m16.SerializeToString()).run(None, x)[0], run_emulated(m16, x).outputs["y"]):
        np.testing.assert_allclose(got, ref, rtol=0, atol=0.032)
