"""Stages chain: every XFromY stage takes an Artifact, a path or another stage, and returns an Artifact.

The chain export -> patch -> ONNX Runtime engine runs on gaitset (4 frames: cheap) and the engine is
checked against the exported model on the same input.
"""

import numpy as np
import pytest

from deploykit.artifact import Artifact
from deploykit.build.build_engine import BuildOptions, BuildResult, EngineFromOnnx
from deploykit.errors import BadInputError
from deploykit.export import ExportResult, OnnxFromModel, PatchedOnnx, PatchResult
from deploykit.runtime import Engine


@pytest.fixture(scope="module")
def chained(tmp_path_factory):
    out = tmp_path_factory.mktemp("chain")
    res = EngineFromOnnx(PatchedOnnx(OnnxFromModel("gaitset", frames=4)), BuildOptions(progress=False),
                         backend="onnxruntime")(out)
    return out, res


def test_the_chain_runs_lazily_into_one_folder(chained):
    out, res = chained
    export, patched, engine = res.chain()
    assert [type(a) for a in (export, patched, engine)] == [ExportResult, PatchResult, BuildResult]
    assert all(isinstance(a, Artifact) and a.manifest_path.is_file() and a.path.parent == out
               for a in (export, patched, engine))
    assert [a.path.name for a in (export, patched, engine)] == ["gaitset.onnx", "gaitset.patched.onnx",
                                                                "gaitset.patched.fp32.onnx"]
    assert engine.manifest["engine"]["backend"] == "onnxruntime" and engine.engine_path == engine.path
    assert engine.manifest["engine"]["source_onnx"] == "gaitset.patched.onnx"


def test_the_chained_engine_matches_the_export(chained):
    _, res = chained
    export = res.chain()[0]
    x = {"sils": np.random.default_rng(0).uniform(0, 1, (1, 4, 64, 44)).astype(np.float32)}
    with Engine.load(export.path) as ref, Engine.load(res.path) as eng:
        want, got = ref.infer(x), eng.infer(x)
    for name in want:
        # FP32 both: ONNX Runtime's constant folding/fusions only reorder float32 arithmetic
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5)


def test_a_path_or_an_artifact_is_an_input_too(chained, tmp_path):
    _, res = chained
    export = res.chain()[0]
    by_path = EngineFromOnnx(str(export.path), BuildOptions(progress=False), backend="onnxruntime")(tmp_path / "p")
    by_artifact = EngineFromOnnx(Artifact.at(export.path), BuildOptions(progress=False),
                                 backend="onnxruntime")(tmp_path / "a")
    for built in (by_path, by_artifact):
        assert built.source.path == export.path and built.path.name == "gaitset.fp32.onnx"


def test_what_is_not_an_input_is_refused(tmp_path):
    with pytest.raises(BadInputError, match="not an Artifact, a path or a stage"):
        EngineFromOnnx(42, backend="onnxruntime")(tmp_path)
    with pytest.raises(BadInputError, match="returned a str, not an Artifact"):
        EngineFromOnnx(lambda out: "model.onnx", backend="onnxruntime")(tmp_path)
    with pytest.raises(BadInputError, match="does not exist"):
        PatchedOnnx(tmp_path / "missing.onnx")()
