"""Helpers for the patch tests: hand-made graphs, ONNX Runtime runs, and patched-vs-unpatched parity."""

from __future__ import annotations

import numpy as np
import onnx

from deploykit.export.patches import apply_patches
from deploykit.verify import compare
from onnx_helpers import init, make_model, run, vi  # noqa: F401  (re-exported for the patch tests)
from zoo_exports import raw_export, raw_model, sample_feeds, zoo_params  # noqa: F401

# Gates of issue 4 for patched vs unpatched ONNX (both float32 in ONNX Runtime).
PATCH_GATES = (compare.cosine(min=0.99999), compare.max_abs(rel=1e-5))


def ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def structure(model: onnx.ModelProto) -> list[tuple]:
    return [(n.op_type, tuple(n.input), tuple(n.output)) for n in model.graph.node]


def patched(model: onnx.ModelProto, name: str):
    """Apply exactly one patch; return (model, list of AppliedPatch)."""
    return apply_patches(model, [name])


def assert_same_values(a: list, b: list, rtol: float = 1e-6, atol: float = 1e-6) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def assert_unchanged(model: onnx.ModelProto, name: str) -> None:
    """A graph without the pattern: the patch reports no match and the graph keeps every node and edge
    (the driver may list the nodes in another topological order)."""
    out, applied = patched(model, name)
    assert applied == [], applied
    assert sorted(structure(out)) == sorted(structure(model))


def assert_parity_on_model(name: str, patch: str, samples: int = 2) -> list:
    """Export `name` unpatched, apply `patch`, and gate patched vs unpatched in ONNX Runtime."""
    raw = raw_model(name)
    out, applied = patched(raw, patch)
    assert [a.name for a in applied] == [patch], f"{patch} found nothing to rewrite in {name}"
    for s in range(samples):
        feeds = sample_feeds(name, raw, seed=100 + s)
        ref, got = run(raw, feeds), run(out, feeds)
        for r, g in zip(ref, got):
            assert np.abs(r).max() > 0, f"{name}: reference output is all zeros; the test would be void"
            for gate in PATCH_GATES:
                res = gate(r, g)
                assert res, f"{name} with {patch}: {res}"
    return applied
