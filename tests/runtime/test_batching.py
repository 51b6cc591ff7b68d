"""`infer_many` and the Engine's batch validation, on hand-made static and dynamic-batch graphs."""

import numpy as np
import onnx
import pytest

from deploykit import manifest as mf
from deploykit.errors import BadInputError
from deploykit.runtime import Engine
from deploykit.runtime.batching import chunk_size, infer_many
from onnx_helpers import init, make_model, vi

W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def _engine(tmp_path, batch, dynamic_max=None):
    """`y = x @ W` with x [B, 4]; B static, or the symbol 'batch' with a manifest profile 1..dynamic_max."""
    dim0 = "batch" if dynamic_max else batch
    model = make_model([onnx.helper.make_node("MatMul", ["x", "w"], ["y"])], [vi("x", [dim0, 4])],
                       [vi("y", [dim0, 3])], [init("w", W)])
    path = tmp_path / f"mm{batch}{dynamic_max}.onnx"
    onnx.save(model, str(path))
    b = dynamic_max or batch
    mf.write(mf.manifest_path_for(path), {
        "model": {"name": "mm", "family": "reid"}, "onnx_sha256": mf.sha256_file(path), "batch": b,
        "dynamic_batch": {"min": 1, "opt": b, "max": b} if dynamic_max else None,
        "inputs": [{"name": "x", "shape": [b, 4], "dtype": "float32"}],
        "outputs": [{"name": "y", "shape": [b, 3], "dtype": "float32"}]})
    return Engine.load(path)


class _Counting:
    """Counts engine calls and the batch each call saw."""

    def __init__(self, engine):
        self.engine, self.batches = engine, []
        real = engine.infer

        def infer(feeds, **kw):
            self.batches.append(int(feeds["x"].shape[0]))
            return real(feeds, **kw)

        engine.infer = infer


@pytest.mark.parametrize("batch,dynamic,calls", [(1, None, [1] * 5), (2, None, [2, 2, 2]), (1, 4, [4, 1])])
def test_infer_many_matches_one_matmul_whatever_the_batch(tmp_path, batch, dynamic, calls):
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    with _engine(tmp_path, batch, dynamic) as eng:
        count = _Counting(eng)
        out = infer_many(eng, {"x": x})
    # float32 matmul of 4 terms: ONNX Runtime and numpy agree to rounding
    np.testing.assert_allclose(out["y"], x @ W, rtol=1e-6, atol=1e-6)
    assert count.batches == calls  # static: padded full chunks; dynamic: chunks up to max, no padding


def test_infer_many_empty_and_ragged(tmp_path):
    with _engine(tmp_path, 2) as eng:
        assert infer_many(eng, {"x": np.zeros((0, 4), np.float32)})["y"].shape == (0, 3)
        assert chunk_size(eng) == 2
        with pytest.raises(BadInputError, match="numpy arrays"):
            infer_many(eng, {"x": [[1.0, 2, 3, 4]]})


def test_engine_validation_takes_a_dynamic_batch_up_to_max(tmp_path):
    with _engine(tmp_path, 1, 4) as eng:
        assert eng.batch_range == (1, 4)
        assert eng.infer({"x": np.ones((3, 4), np.float32)})["y"].shape == (3, 3)
        with pytest.raises(BadInputError, match=r"expected \[1\.\.4, 4\].*infer_many"):
            eng.infer({"x": np.ones((5, 4), np.float32)})
        with pytest.raises(BadInputError, match=r"expected \[1\.\.4, 4\]"):
            eng.infer({"x": np.ones((2, 5), np.float32)})
    with _engine(tmp_path, 2) as eng:
        assert eng.batch_range is None
        with pytest.raises(BadInputError, match=r"expected \[2, 4\].*static shapes.*infer_many"):
            eng.infer({"x": np.ones((3, 4), np.float32)})
