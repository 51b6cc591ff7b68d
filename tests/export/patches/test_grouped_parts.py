"""grouped-parts: per-part conv clones become one grouped conv net, with equal values."""

import numpy as np
import pytest
from onnx import helper

from patch_helpers import assert_parity_on_model, assert_same_values, assert_unchanged, init, make_model, ops
from patch_helpers import patched, run, vi, zoo_params

RNG = np.random.default_rng(5)
P, N, C, S, HID = 4, 2, 6, 7, 3


def _parts_graph(source="split", chain=("Conv3", "LeakyRelu", "Conv1"), order=None, two_heads=False, bn=False):
    """x [P, N, C, S] -> part i -> chain with per-part weights -> Unsqueeze -> Concat(axis 0)."""
    nodes, inits = [], [init("ax0", np.array([0], np.int64))]
    if source == "split":
        nodes.append(helper.make_node("Split", ["x", "ones"], [f"s{i}" for i in range(P)], axis=0))
        inits.append(init("ones", np.ones(P, np.int64)))
    heads = ("a", "b") if two_heads else ("a",)
    for h in heads:
        outs = []
        for i in range(P):
            if source == "split":
                nodes.append(helper.make_node("Squeeze", [f"s{i}", "ax0"], [f"{h}q{i}"]))
            else:
                inits.append(init(f"{h}idx{i}", np.array(i, np.int64)))
                nodes.append(helper.make_node("Gather", ["x", f"{h}idx{i}"], [f"{h}q{i}"], axis=0))
            t, cin = f"{h}q{i}", C
            for j, step in enumerate(chain):
                o = f"{h}{i}_{j}"
                if step.startswith("Conv"):
                    k = int(step[4:])
                    cout = HID if cin == C else C
                    w = init(f"{h}W{i}_{j}", RNG.standard_normal((cout, cin, k)).astype(np.float32))
                    inits.append(w)
                    nodes.append(helper.make_node("Conv", [t, w.name], [o], kernel_shape=[k], pads=[k // 2] * 2))
                    cin = cout
                else:
                    nodes.append(helper.make_node(step, [t], [o]))
                t = o
            if bn:
                names = [f"{h}bn{i}_{k}" for k in range(4)]
                vals = [RNG.uniform(0.5, 1.5, cin), RNG.standard_normal(cin), RNG.standard_normal(cin),
                        RNG.uniform(0.5, 1.5, cin)]
                inits += [init(nm, v.astype(np.float32)) for nm, v in zip(names, vals)]
                nodes.append(helper.make_node("BatchNormalization", [t, *names], [f"{h}bn{i}"]))
                t = f"{h}bn{i}"
            nodes.append(helper.make_node("Unsqueeze", [t, "ax0"], [f"{h}u{i}"]))
            outs.append(f"{h}u{i}")
        nodes.append(helper.make_node("Concat", [outs[i] for i in (order or range(P))], [f"y{h}"], axis=0))
    return make_model(nodes, [vi("x", [P, N, C, S])], [vi(f"y{h}", None) for h in heads], inits)


@pytest.mark.parametrize("kw", [dict(), dict(source="gather"), dict(two_heads=True), dict(bn=True),
                                dict(chain=("Conv3", "Sigmoid"))])
def test_groups_part_convs(kw):
    model = _parts_graph(**kw)
    out, applied = patched(model, "grouped-parts")
    assert [a.name for a in applied] == ["grouped-parts"]
    heads = 2 if kw.get("two_heads") else 1
    assert applied[0].matches == heads
    assert "Squeeze" not in ops(out) and "Unsqueeze" not in ops(out) and "Concat" not in ops(out)
    n_convs = sum(s.startswith("Conv") for s in kw.get("chain", ("Conv3", "LeakyRelu", "Conv1")))
    assert ops(out).count("Conv") == heads * n_convs
    assert all(a.i == P for n in out.graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "group")
    x = RNG.standard_normal((P, N, C, S)).astype(np.float32)
    assert_same_values(run(model, {"x": x}), run(out, {"x": x}), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kw", [dict(order=[1, 0, 2, 3]), dict(chain=("LeakyRelu",))])
def test_leaves_other_graphs_unchanged(kw):
    assert_unchanged(_parts_graph(**kw), "grouped-parts")


@pytest.mark.parametrize("name", zoo_params({"gaitpart", "gaitpart-oumvlp"}))
def test_parity_on_zoo_models(name):
    applied = assert_parity_on_model(name, "grouped-parts")
    assert applied[0].matches == 2  # MTB1 and MTB2 of the temporal feature aggregator
