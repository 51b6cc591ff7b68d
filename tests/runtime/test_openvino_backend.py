"""The OpenVINO backend: FP32 equals ONNX Runtime, the precision hint is really set, INT8 runs S8S8.

Tolerances: FP32 in two CPU libraries differs by float re-association only (different kernels and
fusions), ~1e-6 relative on these graphs; we allow 1e-4 x max|ref|, the FP32 parity gate. BF16 keeps
8 mantissa bits (relative step 2^-8 ~ 0.4%), so a whole network drifts to cosine ~0.9999; we gate
at 0.999. OpenVINO's INT8 kernels and ONNX Runtime's reference Q/DQ arithmetic round differently,
so the S8S8 model through both should agree to cosine 0.99 (it did not, 0.948 on gaitset, until
placement.mirror_max_inputs gave the set pooling's ReduceMax a Q/DQ on its input as well); how close
INT8 is to FP32 is the parity gates' question, not this backend's.
"""

import subprocess
import sys

import numpy as np
import pytest

ov = pytest.importorskip("openvino", reason="openvino is not installed (pip install 'deploykit[openvino]')")

from conftest import BLOCK_TORCH  # noqa: E402

from deploykit.export import OnnxFromModel  # noqa: E402
from deploykit.build.build_engine import BuildOptions, EngineFromOnnx  # noqa: E402
from deploykit.runtime import Engine  # noqa: E402
from deploykit.runtime.backends.openvino import bf16_supported  # noqa: E402


def _cos(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def gaitset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ov")
    res = OnnxFromModel("gaitset", frames=6)(out)
    feeds = {"sils": (np.random.default_rng(0).random((1, 6, 64, 44)) > 0.5).astype(np.float32)}
    with Engine.load(res.onnx_path) as e:
        ref = e.infer(feeds)["embeddings"]
    return out, res.onnx_path, feeds, ref


def test_fp32_equals_onnxruntime_and_sets_the_hint(gaitset):
    out, onnx_path, feeds, ref = gaitset
    res = EngineFromOnnx(onnx_path, BuildOptions(), backend="openvino")(out)
    assert res.engine_path.name == "gaitset.openvino.fp32.onnx"
    assert res.manifest["engine"]["backend"] == "openvino" and res.manifest["engine"]["precision"] == "fp32"
    with Engine.load(res.engine_path, threads=1) as e:
        assert type(e).__name__ == "OpenVinoEngine"
        # the CPU plugin defaults to bf16 on AVX512_BF16 CPUs: the hint must have taken effect
        assert e.compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == "f32"
        got = e.infer(feeds)["embeddings"]
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()


@pytest.mark.skipif(not bf16_supported(), reason="this CPU has no native bf16")
def test_bf16_is_labelled_and_close(gaitset):
    out, onnx_path, feeds, ref = gaitset
    res = EngineFromOnnx(onnx_path, BuildOptions(bf16=True), backend="openvino")(out)
    assert res.manifest["engine"]["precision"] == "bf16"
    with Engine.load(res.engine_path) as e:
        assert e.compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == "bf16"
        got = e.infer(feeds)["embeddings"]
    assert _cos(got, ref) >= 0.999 and not np.array_equal(got, ref)


def test_int8_runs_the_s8s8_model(gaitset):
    out, onnx_path, feeds, ref = gaitset
    res = EngineFromOnnx(onnx_path, BuildOptions(int8=True, calib_samples=8), backend="openvino")(out)
    assert res.manifest["engine"]["precision"] == "int8"
    with open(res.extras["s8s8"], "rb") as a, open(res.engine_path, "rb") as b:
        assert a.read() == b.read()  # one S8S8 artifact for TensorRT and the CPU
    with Engine.load(res.engine_path) as e:
        got = e.infer(feeds)["embeddings"]
    assert got.shape == ref.shape and np.isfinite(got).all() and not np.array_equal(got, ref)


def test_openvino_agrees_with_onnxruntime_on_the_same_s8s8_graph(gaitset):
    out, onnx_path, feeds, ref = gaitset
    res = EngineFromOnnx(onnx_path, BuildOptions(int8=True, calib_samples=8), backend="openvino")(out)
    with Engine.load(res.extras["s8s8"]) as e:  # ONNX Runtime's reading of the same Q/DQ graph
        ort_int8 = e.infer(feeds)["embeddings"]
    with Engine.load(res.engine_path) as e:
        got = e.infer(feeds)["embeddings"]
    assert _cos(got, ort_int8) >= 0.99, _cos(got, ort_int8)


def test_compiled_cache_lands_beside_the_engine(gaitset, tmp_path, monkeypatch):
    out, onnx_path, feeds, _ = gaitset
    res = EngineFromOnnx(onnx_path, BuildOptions(), backend="openvino")(out)
    monkeypatch.chdir(tmp_path)  # the working directory must stay clean
    with Engine.load(res.engine_path) as e:
        e.infer(feeds)
    assert not list(tmp_path.iterdir())
    assert list((out / res.manifest["engine"]["cache_dir"]).iterdir())


def test_refusals_are_one_line(gaitset, tmp_path):
    from conftest import run_cli

    out, onnx_path, _, _ = gaitset
    proc = run_cli("build-engine", str(onnx_path), "--backend", "openvino", "--fp16", "--out", str(tmp_path))
    assert proc.returncode == 2 and "use --bf16" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("build-engine", str(onnx_path), "--backend", "onnxruntime", "--bf16", "--out", str(tmp_path))
    assert proc.returncode == 2 and "--backend openvino" in proc.stderr
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_openvino_engine_runs_without_torch(gaitset):
    out, onnx_path, feeds, ref = gaitset
    res = EngineFromOnnx(onnx_path, BuildOptions(), backend="openvino")(out)
    np.save(out / "sils.npy", feeds["sils"])
    code = BLOCK_TORCH + f"""
import numpy as np
from deploykit.runtime import Engine
with Engine.load({str(res.engine_path)!r}) as e:
    out = e.infer({{"sils": np.load({str(out / 'sils.npy')!r})}})
print(type(e).__name__, out["embeddings"].shape, "torch" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OpenVinoEngine (1, 256, 62) False"


def test_an_output_that_aliases_an_inner_tensor_is_found_by_its_graph_name(tmp_path):
    """OpenVINO gives an output tensor every name it carries (here `coords` and the Relu's output, as
    PRTR's `coords` and `/kpt_embed/layers.2/Add_output_0` in its S8S8 model) and `get_any_name()` picks
    the first in sort order, `/kpt/...` before `coords`, so `infer` raised KeyError('coords') (prtr-res50
    `build-engine --int8`, backend auto).
    The engine must look the output up among all its names; exact, since no arithmetic differs."""
    import onnx
    from onnx import TensorProto, helper

    from deploykit import manifest as mf
    from deploykit.errors import BadInputError
    from deploykit.runtime.backends.openvino import OpenVinoEngine

    src = tmp_path / "alias.onnx"
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["/kpt/Relu_output_0"]),
                           helper.make_node("Identity", ["/kpt/Relu_output_0"], ["coords"])],
                          "alias", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("coords", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), str(src))
    mf.write(mf.manifest_path_for(src), {
        "model": {"name": "alias", "family": "test"}, "weights": {"source": "random", "seed": 0},
        "inputs": [{"name": "x", "shape": [1, 4], "dtype": "float32"}],
        "outputs": [{"name": "coords", "shape": [1, 4], "dtype": "float32"}],
        "preprocess": {}, "postprocess": {}, "onnx_sha256": mf.sha256_file(src)})
    res = EngineFromOnnx(src, BuildOptions(), backend="openvino")(tmp_path / "ov")
    x = np.array([[-1.0, 2.0, -3.0, 4.0]], np.float32)
    with Engine.load(res.engine_path) as e:
        assert isinstance(e, OpenVinoEngine)
        np.testing.assert_array_equal(e.infer({"x": x})["coords"], np.maximum(x, 0))
    from deploykit.runtime.backends.openvino import _output_index

    with pytest.raises(BadInputError, match="no output 'logits'"):
        _output_index(["logits"], [{"/kpt/Relu_output_0", "coords"}], "alias.openvino.fp32.onnx")
