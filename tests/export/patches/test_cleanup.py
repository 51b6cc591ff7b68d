"""cleanup: constant folding, Identity and dead-node removal; values unchanged."""

import numpy as np
import pytest
from onnx import helper

from patch_helpers import assert_parity_on_model, assert_same_values, assert_unchanged, init, make_model, ops
from patch_helpers import patched, run, vi, zoo_params

X = np.random.default_rng(6).standard_normal((1, 3, 4, 5)).astype(np.float32)


def test_folds_and_removes():
    nodes = [helper.make_node("Reciprocal", ["p"], ["rp"]),                 # constant: folded
             helper.make_node("Identity", ["x"], ["xi"]),                   # identity: removed
             helper.make_node("Shape", ["xi"], ["shape"]),                  # static shape: folded
             helper.make_node("Reshape", ["xi", "shape"], ["xr"]),
             helper.make_node("Mul", ["xr", "rp"], ["y0"]),
             helper.make_node("Relu", ["x"], ["unused"]),                   # dead: removed
             helper.make_node("Concat", ["y0"], ["y1"], axis=1),            # one-input Concat: removed
             helper.make_node("Identity", ["y1"], ["y"])]                   # identity into an output
    model = make_model(nodes, [vi("x", [1, 3, 4, 5])], [vi("y", None)], [init("p", np.array([4.0], np.float32))])
    out, applied = patched(model, "cleanup")
    assert [a.name for a in applied] == ["cleanup"]
    assert ops(out) == ["Reshape", "Mul"] and out.graph.output[0].name == "y"
    assert_same_values(run(model, {"x": X}), run(out, {"x": X}))


def test_leaves_clean_graphs_unchanged():
    model = make_model([helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
                        helper.make_node("Relu", ["c"], ["y"])], [vi("x", [1, 3, 4, 5])], [vi("y", None)],
                       [init("w", np.ones((2, 3, 1, 1), np.float32))])
    assert_unchanged(model, "cleanup")


@pytest.mark.parametrize("name", zoo_params({"gaitgl", "gaitbase", "prtr-res50"}))
def test_parity_on_zoo_models(name):
    assert_parity_on_model(name, "cleanup")
