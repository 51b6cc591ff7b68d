"""`export --dynamic-batch`: the dynamic axis, its verification, the manifest profile and `check`."""

import json
import shutil

import numpy as np
import onnx
import pytest

from conftest import run_cli
from deploykit.errors import BadInputError
from deploykit.export import OnnxFromModel
from deploykit.export.dynamic_batch import DynamicBatchError, profile, verify
from deploykit.export.lint import check_model
from deploykit.runtime import Engine
from deploykit.runtime.batching import infer_many
from onnx_helpers import init, make_model, vi


@pytest.fixture(scope="module")
def gaitset_dynamic(tmp_path_factory):
    return OnnxFromModel("gaitset", frames=4, dynamic_batch=3, opt_batch=2)(tmp_path_factory.mktemp("dyn"))


def test_manifest_records_the_profile_and_specs_keep_max(gaitset_dynamic):
    man = gaitset_dynamic.manifest
    assert man["dynamic_batch"] == {"min": 1, "opt": 2, "max": 3} and man["batch"] == 3
    assert man["inputs"][0]["shape"] == [3, 4, 64, 44]  # the frame axis stays static
    dims = onnx.load(str(gaitset_dynamic.onnx_path)).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [4, 64, 44]


def test_dynamic_engine_gives_each_item_the_batch_one_result(gaitset_dynamic):
    x = np.random.default_rng(1).random((3, 4, 64, 44)).astype(np.float32)
    with Engine.load(gaitset_dynamic.onnx_path) as eng:
        full = eng.infer({"sils": x})["embeddings"]
        two = infer_many(eng, {"sils": x[:2]})["embeddings"]
        one = eng.infer({"sils": x[2:]})["embeddings"]
    # same kernels on the same items: only batched-sum rounding differs (float32)
    np.testing.assert_allclose(two, full[:2], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(one, full[2:], rtol=1e-4, atol=1e-5)


def test_check_accepts_a_dynamic_batch_only_with_a_profile(gaitset_dynamic, tmp_path):
    report = check_model(gaitset_dynamic.onnx_path)
    codes = {f.code: f.severity for f in report.findings}
    assert codes.get("dynamic-batch") == "info" and "dynamic-dim" not in codes and "dynamic-shape" not in codes
    assert report.exit_code == 0
    shutil.copy(gaitset_dynamic.onnx_path, tmp_path / "g.onnx")
    man = dict(gaitset_dynamic.manifest, dynamic_batch=None)
    (tmp_path / "g.manifest.json").write_text(json.dumps({"schema_version": 1, **man}))
    bare = check_model(tmp_path / "g.onnx")
    assert [f.severity for f in bare.findings if f.code == "dynamic-dim"] == ["error"] and bare.exit_code != 0


def _save(tmp_path, nodes, inits, name):
    m = make_model(nodes, [vi("x", ["batch", 4])], [vi("y", None)], inits)
    path = tmp_path / f"{name}.onnx"
    onnx.save(m, str(path))
    return path


def test_verify_refuses_graphs_that_bake_or_mix_the_batch(tmp_path):
    feeds = {"x": np.random.default_rng(0).random((3, 4)).astype(np.float32)}
    ok = _save(tmp_path, [onnx.helper.make_node("Relu", ["x"], ["y"])], [], "ok")
    verify(ok, "relu", feeds)  # item-wise graph: passes
    baked = _save(tmp_path, [onnx.helper.make_node("Reshape", ["x", "s"], ["y"])], [init("s", np.array([3, 4]))],
                  "baked")
    with pytest.raises(DynamicBatchError, match="baked: its graph cannot take a dynamic batch.*infer_many"):
        verify(baked, "baked", feeds)
    mixed = _save(tmp_path, [onnx.helper.make_node("ReduceMean", ["x"], ["m"], axes=[0], keepdims=1),
                             onnx.helper.make_node("Sub", ["x", "m"], ["y"])], [], "mixed")
    with pytest.raises(DynamicBatchError, match="mixed: output 0 of item 0 differs"):
        verify(mixed, "mixed", feeds)


def test_profile_and_cli_refuse_bad_values():
    assert profile(8) == {"min": 1, "opt": 8, "max": 8}
    with pytest.raises(BadInputError, match="--opt-batch 9 must be within 1..8"):
        profile(8, 9)
    for args, msg in [(["--dynamic-batch", "0"], "must be >= 1"), (["--batch", "2", "--dynamic-batch", "4"],
                                                                   "disagree"),
                      (["--opt-batch", "2"], "--opt-batch needs --dynamic-batch")]:
        proc = run_cli("export", "gaitset", *args, "--out", "/nonexistent/never-written")
        assert proc.returncode == 2 and proc.stderr.startswith("error: ") and msg in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
