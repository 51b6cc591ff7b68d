"""scripts/int8_vs_modelopt.py: the Q/DQ counts and the metrics its table reports (no ModelOpt needed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from onnx_helpers import init, make_model, vi

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("int8_vs_modelopt", ROOT / "scripts" / "int8_vs_modelopt.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_qdq_counts_tell_activation_constant_and_weighted_output_qdq(tmp_path):
    # x -Q/DQ-> Conv(w fake-quantized) -> Q/DQ on the Conv output (what TensorRT's rules forbid) -> Relu
    s, z = init("s", np.float32(0.1)), init("z", np.int8(0))
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("QuantizeLinear", ["w", "s", "z"], ["wq"]),
             helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wd"]),
             helper.make_node("Conv", ["xd", "wd"], ["c"]),
             helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"]),
             helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["cd"]),
             helper.make_node("Relu", ["cd"], ["r"]),
             helper.make_node("DequantizeLinear", ["b8", "s", "z"], ["bd"]),  # a stored int8 constant
             helper.make_node("Add", ["r", "bd"], ["y"])]
    model = make_model(nodes, [vi("x", [1, 1, 4, 4])], [vi("y", None)],
                       [s, z, init("w", np.ones((2, 1, 1, 1), np.float32)), init("b8", np.ones((1, 2, 1, 1), np.int8))])
    onnx.save(model, tmp_path / "m.onnx")
    assert _script().qdq_counts(tmp_path / "m.onnx") == {"activation_qdq": 2, "constant_qdq": 2,
                                                        "on_weighted_outputs": 1, "on_weighted_to_add": 0}


@pytest.mark.parametrize("first, then, other, x_shape, w", [
    # Conv -> Q/DQ -> residual Add: the Q/DQ quantizes the skip input (TensorRT's rule)
    ("Conv", "Add", "x", [1, 1, 4, 4], np.ones((1, 1, 1, 1), np.float32)),
    # MatMul -> Q/DQ -> MatMul: it quantizes the second MatMul's input, not the first's output (RGA's relation)
    ("MatMul", "MatMul", "w", [2, 2], np.eye(2, dtype=np.float32)),
])
def test_qdq_on_a_weighted_output_that_feeds_an_add_or_a_weighted_op_is_counted_apart(tmp_path, first, then, other,
                                                                                       x_shape, w):
    s, z = init("s", np.float32(0.1)), init("z", np.int8(0))
    nodes = [helper.make_node(first, ["x", "w"], ["c"]),
             helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"]),
             helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["cd"]),
             helper.make_node(then, ["cd", other], ["y"])]
    model = make_model(nodes, [vi("x", x_shape)], [vi("y", None)], [s, z, init("w", w)])
    onnx.save(model, tmp_path / "m.onnx")
    got = _script().qdq_counts(tmp_path / "m.onnx")
    assert (got["on_weighted_outputs"], got["on_weighted_to_add"]) == (0, 1)


def test_metrics_centred_cosine_and_nn_agreement_fall_when_the_input_dependent_part_is_lost():
    mod = _script()
    manifest = {"model": {"family": "reid"}, "outputs": [{"name": "feat"}], "postprocess": {"metric": "cosine"}}
    rng = np.random.default_rng(0)
    shared = rng.standard_normal(64) * 10  # a large common part lifts the plain cosine
    ref = shared + rng.standard_normal((12, 64))
    same = mod._metrics(manifest, {"feat": ref}, {"feat": ref.copy()}, ["feat"])
    assert same["outputs"]["feat"]["centred"] > 0.999 and same["task"]["value"] == 1.0
    lost = shared + rng.standard_normal((12, 64))  # same common part, input-dependent part replaced
    bad = mod._metrics(manifest, {"feat": ref}, {"feat": lost}, ["feat"])
    # plain cosine stays high (shared part), centred cosine of independent noise is near 0 (|.| < 0.3 for
    # 12 x 64 Gaussian samples), and nearest neighbours mostly change (chance is 1/11)
    assert bad["outputs"]["feat"]["cosine"] > 0.9
    assert abs(bad["outputs"]["feat"]["centred"]) < 0.3
    assert bad["task"]["value"] < 0.5
