"""Engine building: backend choice, the ONNX Runtime builder, and the TensorRT plan decisions.

TensorRT itself is not installed here: `plan_build` (which path, flags, ONNX and cache each
TensorRT version gets) is tested, the API calls are not executed.
"""

import sys

import numpy as np
import pytest

from deploykit.errors import BackendUnavailable, BadInputError
from deploykit.build.build_engine import (BuildOptions, EngineFromOnnx, Precision, UnsupportedPrecision,
                                           choose_backend)
from deploykit.build.backends.tensorrt import plan_build


def test_auto_backend_says_why():
    import importlib.util

    name, why = choose_backend("auto")
    if "tensorrt" not in sys.modules:
        # no TensorRT here: the next by priority is OpenVINO where installed, else ONNX Runtime (base install),
        # and the reason says why TensorRT was passed over
        assert name == ("openvino" if importlib.util.find_spec("openvino") else "onnxruntime")
        assert why.startswith("tensorrt is not installed") or "no GPU" in why
    with pytest.raises(BadInputError, match="--backend"):
        choose_backend("tvm")


@pytest.mark.parametrize("version, precision, path, want", [
    ("11.1.0", Precision.FP16, "auto", dict(strongly_typed=True, onnx="fp16", builder_flags=())),
    ("11.1.0", Precision.INT8, "auto", dict(strongly_typed=True, onnx="s8s8", dynamic_ranges=False)),
    ("10.3.0", Precision.INT8, "auto", dict(strongly_typed=True, onnx="s8s8")),
    ("10.3.0", Precision.INT8, "flags", dict(strongly_typed=False, explicit_batch=False, onnx="fp32",
                                             builder_flags=("INT8", "OBEY_PRECISION_CONSTRAINTS"),
                                             dynamic_ranges=True, fp32_layers=True)),
    ("8.5.2", Precision.INT8, "auto", dict(strongly_typed=False, explicit_batch=True, fp32_layers=True,
                                           builder_flags=("INT8", "OBEY_PRECISION_CONSTRAINTS"), dynamic_ranges=True)),
    ("8.6.1", Precision.FP16, "auto", dict(builder_flags=("FP16", "OBEY_PRECISION_CONSTRAINTS"), fp32_layers=True,
                                           onnx="fp32")),
    ("10.0.1", Precision.INT8_FP16, "auto", dict(builder_flags=("FP16", "OBEY_PRECISION_CONSTRAINTS", "INT8"),
                                                 explicit_batch=False)),
])
def test_plan_build_per_version(version, precision, path, want):
    plan = plan_build(version, precision, path)
    for k, v in want.items():
        assert getattr(plan, k) == v, (k, plan)


def test_plan_build_refusals_and_notes():
    with pytest.raises(BackendUnavailable, match="TensorRT 11 removed"):
        plan_build("11.0.0", Precision.INT8, "flags")
    with pytest.raises(BackendUnavailable, match=">= 10.1"):
        plan_build("8.5.2", Precision.FP16, "strong")
    assert any("deprecated" in n for n in plan_build("10.3.0", Precision.INT8, "flags").notes)
    dla = plan_build("10.3.0", Precision.FP16, "auto", dla=True)  # DLA defaults to the flags path
    assert dla.builder_flags == ("GPU_FALLBACK", "FP16", "OBEY_PRECISION_CONSTRAINTS") and not dla.strongly_typed


def test_build_options_validate():
    assert BuildOptions(int8=True, fp16=True).precision is Precision.INT8_FP16
    for bad in (dict(calib_method="kl"), dict(calib_samples=0), dict(workspace_mib=0), dict(dla_core=-1),
                dict(trt_path="weak")):
        with pytest.raises(BadInputError):
            BuildOptions(**bad)


def test_all_int8_skips_the_automatic_float_choice_and_says_what_it_contradicts(monkeypatch, tmp_path):
    """--all-int8 (the speed of an engine with no float layer, as trtexec --int8): the one calibration
    runs without the automatic mixed precision; with --sensitivity or without --int8 it is refused."""
    from deploykit import calib
    from deploykit.build import build_engine as be

    with pytest.raises(BadInputError, match="--all-int8 and --sensitivity contradict"):
        BuildOptions(int8=True, all_int8=True, sensitivity=True)
    with pytest.raises(BadInputError, match="add --int8"):
        BuildOptions(all_int8=True)
    seen = {}

    class Spy:
        def __init__(self, onnx_path, **kw):
            seen.update(kw)

        def __call__(self, out_dir):
            return "calibrated"

    monkeypatch.setattr(calib, "QdqFromOnnx", Spy)
    assert be.calibrate(tmp_path / "m.onnx", BuildOptions(int8=True, all_int8=True), tmp_path) == "calibrated"
    assert seen["auto_mixed"] is False and seen["sensitivity"] is False
    be.calibrate(tmp_path / "m.onnx", BuildOptions(int8=True), tmp_path)
    assert seen["auto_mixed"] is True  # the default keeps the automatic choice


def test_tensorrt_builder_names_the_extra(tmp_path, exported_gaitgl):
    if "tensorrt" in sys.modules:
        pytest.skip("tensorrt is installed here")
    with pytest.raises(BackendUnavailable, match=r"deploykit\[trt\]"):
        EngineFromOnnx(exported_gaitgl.onnx_path, BuildOptions(fp16=True), backend="tensorrt")(tmp_path)


def test_onnxruntime_refuses_fp16_with_the_reason(tmp_path, exported_gaitgl):
    with pytest.raises(UnsupportedPrecision, match="no FP16 kernels"):
        EngineFromOnnx(exported_gaitgl.onnx_path, BuildOptions(fp16=True), backend="onnxruntime")(tmp_path)


def test_onnxruntime_fp32_engine_loads_and_matches(tmp_path, exported_gaitgl):
    from deploykit.runtime import Engine

    res = EngineFromOnnx(exported_gaitgl.onnx_path, BuildOptions(), backend="onnxruntime")(tmp_path)
    assert res.engine_path.name == "gaitgl.fp32.onnx" and res.manifest["engine"]["precision"] == "fp32"
    x = {"sils": np.random.default_rng(0).uniform(0, 1, (1, 3, 64, 44)).astype(np.float32)}
    with Engine.load(res.engine_path) as eng, Engine.load(exported_gaitgl.onnx_path) as ref:
        np.testing.assert_allclose(eng.infer(x)["embeddings"], ref.infer(x)["embeddings"], rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def exported_gaitgl(tmp_path_factory):
    from deploykit.export import OnnxFromModel

    return OnnxFromModel("gaitgl", frames=3)(tmp_path_factory.mktemp("gaitgl"))
