"""static-split: computed Split/Slice sizes and sequence splits become static initializers."""

import numpy as np
import onnx
import pytest
from onnx import helper

from patch_helpers import PATCH_GATES, assert_same_values, assert_unchanged, init, make_model, ops, patched, run, vi

RNG = np.random.default_rng(1)
X = RNG.standard_normal((1, 3, 8, 5)).astype(np.float32)


def _half_of_dim(prefix="h"):
    """Nodes computing [x.shape[2] // 2] from Shape: the exporter's `x.size(2) // 2`."""
    return [
        helper.make_node("Shape", ["x"], [f"{prefix}_shape"]),
        helper.make_node("Gather", [f"{prefix}_shape", "two"], [f"{prefix}_dim"], axis=0),
        helper.make_node("Div", [f"{prefix}_dim", "two"], [f"{prefix}_half"]),
        helper.make_node("Unsqueeze", [f"{prefix}_half", "zero1"], [prefix]),
    ]


CONSTS = [init("two", np.array(2, dtype=np.int64)), init("zero1", np.array([0], dtype=np.int64)),
          init("zeros", np.array([0], dtype=np.int64)), init("axes2", np.array([2], dtype=np.int64))]


def test_slice_with_computed_end():
    nodes = _half_of_dim() + [helper.make_node("Slice", ["x", "zeros", "h", "axes2"], ["y"])]
    model = make_model(nodes, [vi("x", [1, 3, 8, 5])], [vi("y", None)], CONSTS)
    out, applied = patched(model, "static-split")
    assert [a.name for a in applied] == ["static-split"]
    assert ops(out) == ["Slice"]  # the Shape arithmetic is gone, its value is an initializer
    assert_same_values(run(model, {"x": X}), run(out, {"x": X}))


def test_split_with_computed_sizes():
    nodes = _half_of_dim() + [helper.make_node("Concat", ["h", "h"], ["sizes"], axis=0),
                              helper.make_node("Split", ["x", "sizes"], ["a", "b"], axis=2),
                              helper.make_node("Sub", ["a", "b"], ["y"])]
    model = make_model(nodes, [vi("x", [1, 3, 8, 5])], [vi("y", [1, 3, 4, 5])], CONSTS)
    out, applied = patched(model, "static-split")
    assert ops(out) == ["Split", "Sub"]
    split = out.graph.node[0]
    assert split.input[1] in {i.name for i in out.graph.initializer}
    assert_same_values(run(model, {"x": X}), run(out, {"x": X}))


@pytest.mark.parametrize("split,keepdims,picks", [
    (None, 0, [0, -1]),          # size-1 chunks, squeezed: x.unbind(2)
    (None, 1, [1, 3]),           # size-1 chunks, kept
    (np.array(3), 1, [0, 2]),    # chunk size 3 over 8: [3, 3, 2]
    (np.array([2, 6]), 1, [1, 0]),
])
def test_sequence_split_becomes_split(split, keepdims, picks):
    inputs = ["x"] + (["split"] if split is not None else [])
    inits = [init("split", split.astype(np.int64))] if split is not None else []
    inits += [init(f"i{j}", np.array(p, dtype=np.int64)) for j, p in enumerate(picks)]
    nodes = [helper.make_node("SplitToSequence", inputs, ["seq"], axis=2, keepdims=keepdims)]
    nodes += [helper.make_node("SequenceAt", ["seq", f"i{j}"], [f"y{j}"]) for j in range(len(picks))]
    outs = [vi(f"y{j}", None) for j in range(len(picks))]
    model = make_model(nodes, [vi("x", [1, 3, 8, 5])], outs, inits)
    out, applied = patched(model, "static-split")
    assert [a.name for a in applied] == ["static-split"]
    assert not any(op.startswith("Sequence") or op == "SplitToSequence" for op in ops(out))
    assert_same_values(run(model, {"x": X}), run(out, {"x": X}))


def test_leaves_static_and_dynamic_graphs_unchanged():
    static = make_model([helper.make_node("Split", ["x", "s"], ["a", "b"], axis=2),
                         helper.make_node("Add", ["a", "b"], ["y"])],
                        [vi("x", [1, 3, 8, 5])], [vi("y", None)], [init("s", np.array([4, 4], dtype=np.int64))])
    assert_unchanged(static, "static-split")
    # a really dynamic size (the batch dim is symbolic) cannot be folded and is left for the lint
    nodes = [helper.make_node("Shape", ["x"], ["shape"]), helper.make_node("Gather", ["shape", "zero"], ["n"]),
             helper.make_node("Unsqueeze", ["n", "zero1"], ["end"]),
             helper.make_node("Slice", ["x", "zeros", "end", "zero1"], ["y"])]
    dynamic = make_model(nodes, [vi("x", ["N", 3, 8, 5])], [vi("y", None)],
                         [init("zero", np.array(0, dtype=np.int64)), *CONSTS])
    assert_unchanged(dynamic, "static-split")
    # a sequence read by something other than SequenceAt stays a sequence
    seq = make_model([helper.make_node("SplitToSequence", ["x"], ["seq"], axis=2),
                      helper.make_node("ConcatFromSequence", ["seq"], ["y"], axis=2)],
                     [vi("x", [1, 3, 8, 5])], [vi("y", [1, 3, 8, 5])])
    assert_unchanged(seq, "static-split")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_parity_on_torch_export(tmp_path):
    """A real exporter graph: `x.chunk(4, 2)` traces to Shape -> Gather -> Add -> Div -> Mul -> Slice."""
    torch = pytest.importorskip("torch")

    class Chunks(torch.nn.Module):
        def forward(self, x):
            a, b, c, d = x.chunk(4, 2)
            return torch.cat([d, a * 2, c - b], 2)

    path = tmp_path / "chunks.onnx"
    torch.onnx.export(Chunks(), (torch.from_numpy(X),), str(path), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"])
    model = onnx.load(str(path))
    assert "Shape" in ops(model)
    out, applied = patched(model, "static-split")
    assert [a.name for a in applied] == ["static-split"] and "Shape" not in ops(out)
    for gate in PATCH_GATES:
        assert gate(run(model, {"x": X})[0], run(out, {"x": X})[0])
