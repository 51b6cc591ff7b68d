"""The TensorRT runtime backend against the recording TensorRT and a cuda-python double whose device memory
is byte arrays: buffers, copies, DLA_core before deserialisation, per-call input shapes for a dynamic batch,
and which calls each version gets. The double "runs" y = 2 * x, so the copies are checked end to end."""

import sys

import numpy as np
import pytest
from recording_trt import FakeCudart, install_cudart, make_trt

from deploykit import manifest as mf
from deploykit.runtime import Engine


def _plan(tmp_path, version, dynamic=None, dla_core=None, batch=2):
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"PLAN")
    man = {"model": {"name": "toy", "family": "reid"},
           "inputs": [{"name": "x", "shape": [batch, 4], "dtype": "float32"}],
           "outputs": [{"name": "y", "shape": [batch, 4], "dtype": "float32"}],
           "engine": {"backend": "tensorrt", "precision": "fp16", "trt_version": version,
                      "gpu_name": "NVIDIA H200", "compute_capability": "9.0", "dla_core": dla_core,
                      "plan_sha256": mf.sha256_file(plan)}}  # Engine.load verifies it
    if dynamic:
        man["dynamic_batch"] = dynamic
    mf.write(mf.manifest_path_for(plan), man)
    return plan


def _install(monkeypatch, version, batch_dim):
    cudart = FakeCudart()
    install_cudart(monkeypatch, cudart)
    trt, rec = make_trt(version, engine={"inputs": [("x", (batch_dim, 4))], "outputs": [("y", (batch_dim, 4))],
                                         "fn": lambda ins: {"y": 2 * ins["x"]}, "cudart": cudart})
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt, rec, cudart


@pytest.mark.parametrize("version", ["8.5.2", "10.3.0", "11.1.0"])
def test_static_plan_runs_through_the_documented_calls(tmp_path, monkeypatch, version):
    trt, rec, cudart = _install(monkeypatch, version, 2)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    with Engine.load(_plan(tmp_path, version)) as eng:
        np.testing.assert_array_equal(eng.infer({"x": x})["y"], 2 * x)
    assert rec.missing == []
    assert not any(m in ("DLA_core", "set_input_shape") for _, _, m, _ in rec.calls)
    assert cudart.mem == {}, "every cudaMalloc is freed on deactivate"


def test_dla_core_is_set_before_deserialising(tmp_path, monkeypatch):
    trt, rec, _ = _install(monkeypatch, "8.5.2", 2)
    with Engine.load(_plan(tmp_path, "8.5.2", dla_core=1)) as eng:
        eng.infer({"x": np.ones((2, 4), np.float32)})
    runtime_ops = [(op, m) for k, op, m, _ in rec.calls if k == "Runtime"]
    assert runtime_ops[:2] == [("set", "DLA_core"), ("call", "deserialize_cuda_engine")]


def test_dynamic_batch_sets_input_shapes_per_call(tmp_path, monkeypatch):
    """Buffers sized for the manifest's max batch (8); a batch of 3 sets its shape and reads 3 rows back."""
    trt, rec, _ = _install(monkeypatch, "10.3.0", -1)
    eng = Engine.load(_plan(tmp_path, "10.3.0", dynamic={"min": 1, "opt": 4, "max": 8}, batch=8))
    eng.activate()
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    out = eng._infer({"x": x})  # the shape check against the manifest is the runtime's (issue 14), not the backend's
    np.testing.assert_allclose(out["y"], 2 * x, rtol=0, atol=0)
    assert [a for k, op, m, a in rec.calls if m == "set_input_shape"] == [((("x", (3, 4)), {}))]
    eng.deactivate()


def test_one_logger_for_builder_and_runtime(tmp_path, monkeypatch):
    trt, rec, _ = _install(monkeypatch, "10.3.0", 2)
    for _ in range(2):
        with Engine.load(_plan(tmp_path, "10.3.0")) as eng:
            eng.infer({"x": np.ones((2, 4), np.float32)})
    assert len(rec.loggers) == 2 and rec.loggers[0] is rec.loggers[1]
