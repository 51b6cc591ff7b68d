"""gem-fp16: GeM rescaled by the bin max: same values in FP32, no FP16 overflow in the pow."""

import numpy as np
import pytest
from onnx import helper

from patch_helpers import assert_parity_on_model, assert_same_values, assert_unchanged, init, make_model, ops
from patch_helpers import patched, run, vi, zoo_params

P = 6.5
SHAPE = [1, 4, 8, 6]


def _gem(pool="AveragePool", p=P, q=1 / P, clamp=True, keepdims=1, kernel=(1, 6), strides=(1, 6)):
    nodes = [helper.make_node("Clip", ["x", "eps"], ["xc"])] if clamp else []
    src = "xc" if clamp else "x"
    nodes.append(helper.make_node("Pow", [src, "p"], ["xp"]))
    if pool == "AveragePool":
        nodes.append(helper.make_node("AveragePool", ["xp"], ["m"], kernel_shape=list(kernel), strides=list(strides)))
    elif pool == "ReduceMean":
        nodes.append(helper.make_node("ReduceMean", ["xp"], ["m"], axes=[3], keepdims=keepdims))
    else:
        nodes.append(helper.make_node("GlobalAveragePool", ["xp"], ["m"]))
    nodes.append(helper.make_node("Pow", ["m", "q"], ["y"]))
    inits = [init("eps", np.array(1e-6, np.float32)), init("p", np.array([p], np.float32)),
             init("q", np.array(q, np.float32))]
    return make_model(nodes, [vi("x", SHAPE)], [vi("y", None)], inits)


@pytest.mark.parametrize("pool,keepdims", [("AveragePool", 1), ("ReduceMean", 1), ("ReduceMean", 0),
                                           ("GlobalAveragePool", 1)])
def test_rescales_gem(pool, keepdims):
    model = _gem(pool, keepdims=keepdims)
    out, applied = patched(model, "gem-fp16")
    assert [a.name for a in applied] == ["gem-fp16"]
    assert "ReduceMax" in ops(out) and "Div" in ops(out) and "Mul" in ops(out)
    x = np.random.default_rng(4).uniform(0, 3, SHAPE).astype(np.float32)
    assert_same_values(run(model, {"x": x}), run(out, {"x": x}), rtol=2e-6)


def test_intermediates_stay_in_fp16_range():
    """Large activations: the unpatched pow overflows FP16, the patched graph's values stay <= max(x)."""
    from deploykit.export.lint.fp16 import audit_fp16

    x = np.full(SHAPE, 9.0, np.float32)
    x[..., 0] = 12.0
    model = _gem()
    out, _ = patched(model, "gem-fp16")
    before, after = audit_fp16(model, [{"x": x}]), audit_fp16(out, [{"x": x}])
    assert any(f.code == "fp16-overflow" and f.op == "Pow" for f in before.findings)
    assert not any(f.code == "fp16-overflow" for f in after.findings)
    assert after.max_abs <= 12.0 * (1 + 1e-6) and before.max_abs > 65504
    assert_same_values(run(model, {"x": x}), run(out, {"x": x}), rtol=2e-6)


@pytest.mark.parametrize("variant", [
    dict(clamp=False),                       # no positive clamp: the bin max could be 0
    dict(kernel=(1, 3), strides=(1, 1)),     # a sliding window, not a complete average over bins
    dict(p=2.0, q=0.7),                      # the second pow is not the root of the first
])
def test_leaves_other_graphs_unchanged(variant):
    assert_unchanged(_gem(**variant), "gem-fp16")


@pytest.mark.parametrize("name", zoo_params({"gaitgl", "gaitgl-oumvlp", "gaitedge"}))
def test_parity_on_zoo_models(name):
    assert_parity_on_model(name, "gem-fp16")
