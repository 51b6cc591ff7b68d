"""relation-split: 1x1 Conv over Concat(view(G^T), view(G)) becomes MatMul(G, W1^T)^T + Conv(view(G), W2)."""

import numpy as np
import pytest
from onnx import helper

from patch_helpers import assert_parity_on_model, assert_same_values, assert_unchanged, init, make_model, ops
from patch_helpers import patched, run, vi, zoo_params

RNG = np.random.default_rng(0)


def _relation_graph(a=12, spatial=(3, 4), o=5, perm=(0, 2, 1), view="Reshape", second="g", order=(0, 1)):
    """G = x @ x^T [1, a, a] -> cat(view(G^T), view(G)) [1, 2a, *s] -> Conv 1x1 (W [o, 2a]) -> y."""
    s = list(spatial) if view == "Reshape" else [a, 1]
    inits = [init("W", RNG.standard_normal((o, 2 * a, 1, 1)).astype(np.float32)),
             init("B", RNG.standard_normal(o).astype(np.float32)),
             init("shape", np.array([1, a, *s], dtype=np.int64)), init("ax", np.array([3], dtype=np.int64))]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["x", "xt"], ["g"]),  # square relation matrix, as RGA's
             helper.make_node("Transpose", ["g"], ["gt"], perm=list(perm))]

    def viewed(src, out):
        if view == "Reshape":
            return helper.make_node("Reshape", [src, "shape"], [out])
        return helper.make_node("Unsqueeze", [src, "ax"], [out])

    nodes += [viewed("gt", "v1"), viewed(second, "v2")]
    cat = [["v1", "v2"][i] for i in order]
    nodes += [helper.make_node("Concat", cat, ["c"], axis=1), helper.make_node("Conv", ["c", "W", "B"], ["y"])]
    return make_model(nodes, [vi("x", [1, a, 7])], [vi("y", None)], inits)


@pytest.mark.parametrize("view", ["Reshape", "Unsqueeze"])  # RGA's spatial branch, its channel branch
def test_splits_the_conv_and_drops_the_big_transpose(view):
    model = _relation_graph(view=view)
    out, applied = patched(model, "relation-split")
    assert [a.name for a in applied] == ["relation-split"] and applied[0].matches == 1
    assert "Concat" not in ops(out) and ops(out).count("Conv") == 1 and ops(out).count("MatMul") == 2
    # what is left transposed: x (the input's own Transpose) and the [1, a, o] product, never G [1, a, a]
    assert ops(out).count("Transpose") == 2
    x = RNG.standard_normal((1, 12, 7)).astype(np.float32)
    # the same multiply-adds summed in another order: float rounding only (|y| ~ 1e2 here)
    assert_same_values(run(model, {"x": x}), run(out, {"x": x}), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("variant", [
    dict(perm=(0, 1, 2)),     # not a transpose of G: nothing to split
    dict(order=(1, 0)),       # G first, G^T second: the weight halves would swap (not matched, kept exact)
    dict(second="gt"),        # cat(G^T, G^T): the second half is not G itself
])
def test_leaves_other_graphs_unchanged(variant):
    assert_unchanged(_relation_graph(**variant), "relation-split")


@pytest.mark.parametrize("name", zoo_params({"rga"}))
def test_parity_on_zoo_models(name):
    applied = assert_parity_on_model(name, "relation-split")
    assert applied[0].matches == 8  # gg_spatial and gg_channel of rga_att1..4
