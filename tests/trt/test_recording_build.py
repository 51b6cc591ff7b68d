"""The TensorRT build, runtime and GPU probe against a recording TensorRT of each version (recording_trt.py
cites the bindings' sources its member lists come from). What this proves: which calls and flags each
version and path makes, that no member absent in that version is touched, the timing-cache fallback,
exact FP32 pinning, dynamic ranges, the DLA and dynamic-batch calls, and the driverless probe. What it
cannot: that TensorRT builds or runs the plan (only a GPU can; see the README)."""

import numpy as np
import pytest
from recording_trt import BOOL, FLOAT, INT32, VERSIONS, FakeCudart, Net, install_cudart, make_trt

from deploykit.errors import BackendUnavailable, BadInputError
from deploykit.build.backends import tensorrt as tb
from deploykit.build.build_engine import Precision

CASES = [  # (version, precision, trt_path, dla) -> the path taken
    ("8.5.2", Precision.FP16, "auto", False), ("8.5.2", Precision.INT8, "auto", False),
    ("8.6.1", Precision.INT8_FP16, "auto", False), ("8.5.2", Precision.FP16, "auto", True),
    ("10.0.1", Precision.FP16, "auto", False), ("10.3.0", Precision.INT8, "auto", False),
    ("10.3.0", Precision.INT8, "flags", False), ("10.3.0", Precision.FP16, "auto", True),
    ("10.3.0", Precision.FP32, "auto", False), ("11.1.0", Precision.FP16, "auto", False),
    ("11.1.0", Precision.INT8, "auto", False), ("11.1.0", Precision.FP16, "auto", True),
]


def _build(tmp_path, version, precision=Precision.FP32, path="auto", dla=False, net=None, fp32_nodes=(),
           node_names=None, amax=None, timing_cache=None, dynamic_batch=None, **opts):
    trt, rec = make_trt(version, net=net, dla_cores=2, **opts)
    plan = tb.plan_build(version, precision, path, dla=dla)
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(b"onnx")
    rep = tb._build_plan(trt, plan, onnx_path, tmp_path / "m.plan", workspace_mib=64, timing_cache=timing_cache,
                         dla_core=0 if dla else None, amax=amax, fp32_nodes=frozenset(fp32_nodes),
                         node_names=frozenset(node_names if node_names is not None else fp32_nodes),
                         dynamic_batch=dynamic_batch, input_shapes={"x": (8, 4)})
    return plan, rec, rep


@pytest.mark.parametrize("version, precision, path, dla", CASES)
def test_build_sequence_per_version_and_path(tmp_path, version, precision, path, dla):
    plan, rec, _ = _build(tmp_path, version, precision, path, dla, fp32_nodes=["relu"], amax={"x": 1.0})
    assert rec.missing == [], f"TensorRT {version} has no {rec.missing}"
    seq = [m for k, op, m, _ in rec.calls if op == "call" and k in ("tensorrt", "Builder", "OnnxParser")]
    assert seq[:4] == ["Builder", "create_network", "OnnxParser", "parse"]
    assert seq[-1] == "build_serialized_network"
    cfg = rec.config
    want_flags = set(plan.builder_flags)
    assert cfg._flags == want_flags, "TF32 (on by default) must be cleared, the plan's flags set"
    assert cfg._pools == {"WORKSPACE": 64 << 20}
    major = int(version.split(".")[0])
    assert rec.network_flags == ({"STRONGLY_TYPED"} if plan.strongly_typed else
                                 {"EXPLICIT_BATCH"} if major < 10 else set())
    if major >= 11:
        assert plan.strongly_typed and not ({"FP16", "INT8"} & cfg._flags)
    if dla:
        assert not plan.strongly_typed or major >= 11, "DLA defaults to the flags path where it exists"
        assert cfg.default_device_type.name == "DLA" and cfg.DLA_core == 0 and "GPU_FALLBACK" in cfg._flags
    dyn_sets = [c for c in rec.calls if c[:3] == ("ITensor", "set", "dynamic_range")]
    assert bool(dyn_sets) == plan.dynamic_ranges, "implicit INT8 sets ITensor.dynamic_range, nothing else does"
    pins = [c for c in rec.calls if c[:3] == ("ILayer", "set", "precision")]
    assert bool(pins) == plan.fp32_layers
    assert (tmp_path / "m.plan").read_bytes() == b"PLAN"


def test_no_calibrator_and_ranges_from_the_json(tmp_path):
    _, rec, rep = _build(tmp_path, "8.5.2", Precision.INT8, amax={"x": 2.5, "conv_out": 4.0})
    assert not any(m == "int8_calibrator" for _, _, m, _ in rec.calls)
    net = rec.network
    assert net._inputs[0].dynamic_range == (-2.5, 2.5) and net._layers[0]._outs[0].dynamic_range == (-4.0, 4.0)
    assert (rep.dynamic_ranges_set, rep.dynamic_ranges_missing) == (2, 1)  # relu_out has no range


def test_exact_fp32_pinning_only_float_outputs(tmp_path):
    """`/Add` pins its own layers (`/Add`, and `/Add_7`, a further layer of it) but not the node `/Add_1`;
    `/Shape` (INT32 output) and `/Eq` (BOOL) keep their types."""
    net = Net(layers=[("/Add", [FLOAT]), ("/Add_1", [FLOAT]), ("/Add_7", [FLOAT]), ("/Shape", [INT32]),
                      ("/Eq", [BOOL]), ("/Mul", [FLOAT])])
    _, rec, rep = _build(tmp_path, "8.6.1", Precision.FP16, fp32_nodes=["/Add", "/Shape", "/Eq"],
                         node_names=["/Add", "/Add_1", "/Shape", "/Eq", "/Mul"], net=net)
    pinned = {k: lay._out_types for k, lay in ((lay._name, lay) for lay in rec.network._layers) if lay._out_types}
    assert pinned == {"/Add": {0: FLOAT}, "/Add_7": {0: FLOAT}}
    assert rep.pinned_layers == 2
    assert tb.layer_node("/Add_1_12", frozenset({"/Add", "/Add_1"})) == "/Add_1"


def test_timing_cache_refused_falls_back_and_the_plan_is_written_first(tmp_path):
    cache = tmp_path / "t.cache"
    cache.write_bytes(b"from another GPU")
    _, rec, rep = _build(tmp_path, "10.3.0", Precision.FP16, timing_cache=str(cache), timing_ok=[False, True])
    sets = [a for k, op, m, a in rec.calls if m == "set_timing_cache" and op == "call"]
    assert len(sets) == 2 and rep.timing_cache == "replaced" and any("refused" in n for n in rep.notes)
    assert (tmp_path / "m.plan").read_bytes() == b"PLAN"
    assert cache.read_bytes() == b"cache:", "the fresh cache replaces the refused one"


def test_timing_cache_lost_after_the_build_keeps_the_plan(tmp_path):
    _, rec, rep = _build(tmp_path, "8.5.2", Precision.FP16, timing_cache=str(tmp_path / "t.cache"),
                         timing_ok=[False, False])
    assert rep.timing_cache == "refused" and (tmp_path / "m.plan").read_bytes() == b"PLAN"
    assert not (tmp_path / "t.cache").exists()
    assert not any(m == "get_timing_cache" for _, _, m, _ in rec.calls)


def test_failed_build_and_parse_say_why(tmp_path):
    with pytest.raises(tb.TrtBuildError, match="failed to build"):
        _build(tmp_path, "10.3.0", plan=None)
    with pytest.raises(tb.TrtBuildError, match="cannot parse m.onnx: error 0"):
        _build(tmp_path, "10.3.0", parse_ok=False)
    assert not (tmp_path / "m.plan").exists()


def test_dynamic_batch_adds_one_profile(tmp_path):
    _, rec, _ = _build(tmp_path, "10.3.0", dynamic_batch={"min": 1, "opt": 4, "max": 8})
    (profile,) = rec.config._profiles
    assert profile._shapes == {"x": ((1, 4), (4, 4), (8, 4))}
    _, rec, _ = _build(tmp_path, "10.3.0")
    assert rec.config._profiles == []


def test_dla_refuses_fp32_and_counts_layers(tmp_path):
    with pytest.raises(BadInputError, match="DLA runs FP16 and INT8 only"):
        tb.plan_build("8.5.2", Precision.FP32, dla=True)
    _, rec, rep = _build(tmp_path, "8.5.2", Precision.FP16, dla=True, dla_ok=lambda name: name == "conv")
    assert rep.dla_layers["can_run_on_dla"] == 1 and rep.dla_layers["layers"] == 2
    trt, rec = make_trt("8.5.2", dla_cores=0)
    with pytest.raises(BackendUnavailable, match="0 DLA core"):
        tb._dla_config(trt, trt.Builder(None), None, None, 0, tb.BuildReport())


def test_one_logger_per_process():
    from deploykit.runtime.backends.tensorrt import capture_logger

    trt, rec = make_trt("10.3.0")
    a, b = capture_logger(trt), capture_logger(trt)
    assert a is b
    a.log(trt.ILogger.Severity.ERROR, "boom")
    a.log(trt.ILogger.Severity.INFO, "chatter")
    assert a.since(0) == ["ERROR: boom"]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_version_has_what_plan_build_asks(version):
    """Each path plan_build can return names only flags the version's BuilderFlag has."""
    from recording_trt import members

    have = members(version)["BuilderFlag"]
    for precision in Precision:
        for path in ("auto", "strong", "flags"):
            for dla in (False, True):
                try:
                    plan = tb.plan_build(version, precision, path, dla=dla)
                except (BackendUnavailable, BadInputError):
                    continue
                assert set(plan.builder_flags) | set(plan.clear_flags) <= have, (version, precision, path)


# -- the GPU probe without a driver (bug 2) ------------------------------------------------------

def test_auto_without_a_driver_is_onnxruntime_with_the_reason(monkeypatch):
    import importlib.util

    from deploykit.build import build_engine as be
    from deploykit.runtime.backends.tensorrt import gpu_identity

    install_cudart(monkeypatch, FakeCudart(driverless=True))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "tensorrt" else real(n, *a))
    name, why = be.choose_backend("auto")
    assert name != "tensorrt" and "Failed to dlopen libcuda.so.1" in why
    with pytest.raises(BackendUnavailable, match="Failed to dlopen libcuda.so.1"):
        gpu_identity(0)
    install_cudart(monkeypatch, FakeCudart())
    assert be.choose_backend("auto")[0] == "tensorrt"
    assert gpu_identity(0) == {"gpu_name": "NVIDIA H200", "compute_capability": "9.0"}


def test_auto_probes_tensorrt_before_the_gpu(monkeypatch):
    import importlib.util

    from deploykit.build import build_engine as be

    cudart = FakeCudart(driverless=True)
    install_cudart(monkeypatch, cudart)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "tensorrt" else real(n, *a))
    name, why = be.choose_backend("auto")
    assert name != "tensorrt" and why.startswith("tensorrt is not installed (pip install 'deploykit[trt]'); ")
    assert cudart.calls == []


# -- implicit INT8 carries the mixed-precision float set (issue 10, item 6) ------------------------

def _int8_build(tmp_path, monkeypatch, version, keep_float):
    """tb.build end to end on the tiny convnet (x -> conv1 -> relu -> conv2) with a real calibration
    (4 samples, `keep_float` kept in float), against the recording TensorRT of `version`."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "robustness"))
    from rb_helpers import calib_npy, tiny_model

    from deploykit import manifest as mf
    from deploykit.build.build_engine import BuildOptions
    from deploykit.calib import QdqFromOnnx

    onnx_path = tiny_model(tmp_path / "src")
    npy = calib_npy(tmp_path / "calib.npy")
    trt, rec = make_trt(version, net=Net(layers=[("conv1", [FLOAT]), ("relu", [FLOAT]), ("conv2", [FLOAT])]))
    monkeypatch.setattr(tb, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(tb, "gpu_identity", lambda i: {"gpu_name": "NVIDIA Orin", "compute_capability": "8.7"})
    monkeypatch.setattr(tb, "calibrate", lambda src, opt, out, trt_version=None: QdqFromOnnx(
        src, data=str(npy), samples=4, keep_float=keep_float, auto_mixed=False, progress=False,
        trt_version=trt_version)(out))
    res = tb.build(onnx_path, mf.read(mf.manifest_path_for(onnx_path)),
                   BuildOptions(int8=True, progress=False), tmp_path / "engines")
    return rec, mf.read(res.manifest_path)


def test_implicit_int8_pins_the_float_nodes_the_s8s8_model_leaves_float(tmp_path, monkeypatch):
    """On the flag path a float node of the calibration would otherwise get TensorRT's INT8 kernels
    (every tensor has a dynamic range); it is pinned FP32 under OBEY_PRECISION_CONSTRAINTS, as the
    strongly typed path leaves it without Q/DQ. Without a float set nothing is pinned."""
    rec, man = _int8_build(tmp_path / "a", monkeypatch, "8.6.1", keep_float=("conv2",))
    assert {lay._name for lay in rec.network._layers if lay._out_types} == {"conv2"}
    assert len([c for c in rec.calls if c[:3] == ("ILayer", "set", "precision")]) == 1
    assert {"INT8", "OBEY_PRECISION_CONSTRAINTS"} <= rec.config._flags
    assert man["engine"]["fp32_pinned_layers"] == 1
    assert man["engine"]["mixed_precision"]["float_nodes"] == ["conv2"]

    rec, man = _int8_build(tmp_path / "b", monkeypatch, "8.6.1", keep_float=())
    assert not [c for c in rec.calls if c[:3] == ("ILayer", "set", "precision")]
    assert man["engine"]["fp32_pinned_layers"] == 0


def test_strongly_typed_int8_parses_the_s8s8_model_without_pins(tmp_path, monkeypatch):
    """TensorRT 10.3 default path: the float set lives in the S8S8 graph (no Q/DQ on conv2), no layer is pinned."""
    import onnx

    rec, man = _int8_build(tmp_path, monkeypatch, "10.3.0", keep_float=("conv2",))
    assert not [c for c in rec.calls if c[:3] == ("ILayer", "set", "precision")]
    assert man["engine"]["onnx"].endswith(".int8-s8s8.onnx") and man["engine"]["fp32_pinned_layers"] is None
    g = onnx.load(str(tmp_path / "engines" / man["engine"]["onnx"])).graph
    conv2 = next(n for n in g.node if n.name == "conv2")
    producers = {o: n.op_type for n in g.node for o in n.output}
    assert "DequantizeLinear" not in {producers.get(i) for i in conv2.input}
