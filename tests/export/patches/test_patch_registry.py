"""The patch registry and driver: names, order, default set, errors, and what the driver guarantees."""

import numpy as np
import pytest
from onnx import helper

from deploykit.errors import BadInputError
from deploykit.export import patches
from deploykit.export.patches import PatchError, apply_patches, register_patch
from patch_helpers import init, make_model, ops, run, vi

PASSES = ["static-split", "pixelshuffle", "gem-fp16", "focal-fold", "relation-split", "grouped-parts", "cleanup"]


def test_names_in_pipeline_order():
    assert patches.names() == PASSES
    assert patches.names(default_only=True) == [p for p in PASSES if p != "pixelshuffle"]


def test_every_patch_documents_its_trt_limitation():
    for name in patches.names():
        module_doc = __import__(patches.get(name).module, fromlist=["x"]).__doc__
        assert "What it removes" in module_doc and "Before" in module_doc and "After" in module_doc, name
        assert "Models:" in module_doc, name


def test_unknown_name_suggests():
    with pytest.raises(BadInputError, match="did you mean focal-fold"):
        patches.get("focal_fold")


def test_duplicate_registration_is_an_error():
    with pytest.raises(ValueError, match="registered twice"):
        register_patch("cleanup", order=1)(lambda g: [])


def test_selection_runs_in_pipeline_order():
    assert [p.name for p in patches.resolve(["cleanup", "focal-fold", "cleanup"])] == ["focal-fold", "cleanup"]
    assert [p.name for p in patches.resolve(None)] == patches.names(default_only=True)
    assert patches.resolve([]) == []


def test_no_patch_keeps_the_graph():
    model = make_model([helper.make_node("Identity", ["x"], ["i"]), helper.make_node("Relu", ["i"], ["y"])],
                       [vi("x", [2, 3])], [vi("y", None)])
    out, applied = apply_patches(model, [])
    assert applied == [] and ops(out) == ["Identity", "Relu"]
    out, applied = apply_patches(model)  # the default set: cleanup drops the Identity
    assert [a.name for a in applied] == ["cleanup"] and ops(out) == ["Relu"]
    assert [a.to_json() for a in applied] == [{"name": "cleanup", "matches": 1}]


def test_a_failing_rewrite_names_patch_and_node(monkeypatch):
    from deploykit.export.patches import cleanup

    def broken(graph, match):
        raise RuntimeError("boom")

    monkeypatch.setattr(cleanup, "rewrite", broken)
    model = make_model([helper.make_node("Identity", ["x"], ["y"])], [vi("x", [2])], [vi("y", None)])
    with pytest.raises(PatchError, match="graph patch 'cleanup' failed at Identity"):
        apply_patches(model, ["cleanup"])


def test_input_model_is_not_modified():
    model = make_model([helper.make_node("Reciprocal", ["p"], ["r"]), helper.make_node("Mul", ["x", "r"], ["y"])],
                       [vi("x", [2])], [vi("y", None)], [init("p", np.array([2.0], np.float32))])
    before = model.SerializeToString()
    out, _ = apply_patches(model)
    assert model.SerializeToString() == before and ops(out) == ["Mul"]
    x = np.arange(2, dtype=np.float32)
    np.testing.assert_array_equal(run(model, {"x": x})[0], run(out, {"x": x})[0])
