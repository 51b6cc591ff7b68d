"""Engine feed validation: wrong names, shapes, dtypes and non-finite values are clear errors."""

import numpy as np
import pytest

from deploykit.errors import BadInputError
from deploykit.export import OnnxFromModel
from deploykit.runtime import Engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    res = OnnxFromModel("gaitgl", frames=3)(tmp_path_factory.mktemp("eng"))
    with Engine.load(res.onnx_path) as e:
        yield e


def test_good_feed_runs(engine):
    out = engine.infer({"sils": np.zeros((1, 3, 64, 44), np.float32)})
    assert out["embeddings"].shape == (1, 128, 64)


@pytest.mark.parametrize("feed, needle", [
    ({"x": np.zeros((1, 3, 64, 44), np.float32)}, "expected exactly ['sils']"),
    ({"sils": np.zeros((1, 4, 64, 44), np.float32)}, "expected [1, 3, 64, 44]"),
    ({"sils": np.zeros((1, 3, 64, 44), np.float64)}, "expected float32"),
    ({"sils": np.full((1, 3, 64, 44), np.nan, np.float32)}, "NaN or Inf"),
    ({"sils": [[0.0]]}, "numpy array"),
])
def test_bad_feeds(engine, feed, needle):
    with pytest.raises(BadInputError) as exc:
        engine.infer(feed)
    assert needle in str(exc.value)


def test_missing_engine_file(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        Engine.load(tmp_path / "nope.onnx")


def test_missing_manifest(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(BadInputError, match="manifest"):
        Engine.load(tmp_path / "m.onnx")
