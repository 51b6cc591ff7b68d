"""focal-fold: Split -> same Conv per strip -> Concat becomes one batched Conv, with equal values."""

import numpy as np
import pytest
from onnx import helper

from patch_helpers import assert_parity_on_model, assert_same_values, assert_unchanged, init, make_model, ops
from patch_helpers import patched, run, vi, zoo_params

RNG = np.random.default_rng(0)


def _strip_graph(shape=(2, 3, 8, 5), axis=2, sizes=(2, 2, 2, 2), weights=None, order=None, extra_first=False):
    """x -> Split(axis) -> Conv(W_i) per strip -> Concat(axis), optionally with another input first."""
    k, c, rank = len(sizes), shape[1], len(shape)
    kernel = [3] * (rank - 2)
    weights = weights or ["W"] * k
    inits = {w: init(w, RNG.standard_normal((4, c, *kernel)).astype(np.float32)) for w in set(weights)}
    inits["B"] = init("B", RNG.standard_normal(4).astype(np.float32))
    inits["sizes"] = init("sizes", np.array(sizes, dtype=np.int64))
    parts = [f"p{i}" for i in range(k)]
    nodes = [helper.make_node("Split", ["x", "sizes"], parts, axis=axis)]
    for i, w in enumerate(weights):
        nodes.append(helper.make_node("Conv", [parts[i], w, "B"], [f"c{i}"], pads=[1] * 2 * (rank - 2),
                                      kernel_shape=kernel))
    cat = [f"c{i}" for i in (order or range(k))]
    if extra_first:
        nodes.append(helper.make_node("Conv", ["x", weights[0], "B"], ["g"], pads=[1] * 2 * (rank - 2),
                                      kernel_shape=kernel))
        cat = ["g"] + cat
    nodes.append(helper.make_node("Concat", cat, ["y"], axis=axis))
    return make_model(nodes, [vi("x", list(shape))], [vi("y", None)], inits.values())


@pytest.mark.parametrize("shape,axis,extra_first", [
    ((2, 3, 8, 5), 2, False),         # FocalConv2d: [n*s, c, h, w], strips along h
    ((1, 3, 4, 8, 5), 3, False),      # GLConv local branch: [n, c, s, h, w], strips along h
    ((1, 3, 4, 8, 5), 3, True),       # GLConv fm_sign: Concat([global, strips...])
    ((2, 3, 5, 8), 3, False),         # strips along w
])
def test_folds_strips_into_one_conv(shape, axis, extra_first):
    model = _strip_graph(shape, axis, extra_first=extra_first)
    out, applied = patched(model, "focal-fold")
    assert [a.name for a in applied] == ["focal-fold"] and applied[0].matches == 1
    assert "Split" not in ops(out)
    assert ops(out).count("Conv") == 1 + extra_first
    assert ops(out).count("Concat") == int(extra_first)
    x = RNG.standard_normal(shape).astype(np.float32)
    assert_same_values(run(model, {"x": x}), run(out, {"x": x}))


@pytest.mark.parametrize("variant", [
    dict(weights=["W0", "W1", "W2", "W3"]),  # a different conv per strip: grouped-parts territory
    dict(sizes=(2, 2, 3, 1)),                # unequal strips
    dict(axis=1, shape=(2, 8, 6, 5)),        # split over channels, not a spatial axis
    dict(order=[1, 0, 2, 3]),                # concatenated in another order
])
def test_leaves_other_graphs_unchanged(variant):
    kw = dict(shape=(2, 3, 8, 5), axis=2, sizes=(2, 2, 2, 2))
    kw.update(variant)
    if kw["axis"] == 1:
        kw["sizes"] = (2, 2, 2, 2)
    assert_unchanged(_strip_graph(**kw), "focal-fold")


@pytest.mark.parametrize("name", zoo_params({"gaitgl", "gaitgl-oumvlp", "gaitpart"}))
def test_parity_on_zoo_models(name):
    applied = assert_parity_on_model(name, "focal-fold")
    assert applied[0].matches >= 3
