"""The TensorRT backend where no TensorRT exists: the manifest check refuses a foreign plan *before*
deserialising it, and a missing tensorrt/cuda-python is a BackendUnavailable naming the extra.
The GPU path itself is not executed here."""

import json
import sys
import types

import numpy as np
import pytest

from deploykit import manifest as mf
from deploykit.errors import BackendUnavailable
from deploykit.runtime import Engine
from deploykit.runtime.backends.tensorrt import EngineMismatch, check_plan_compat

GPU = {"gpu_name": "Orin (nvgpu)", "compute_capability": "8.7"}


def _plan(tmp_path, **engine):
    plan = tmp_path / "m.int8.plan"
    plan.write_bytes(b"not a real plan")
    mf.write(mf.manifest_path_for(plan), {
        "model": {"name": "gaitgl", "family": "gait"},
        "inputs": [{"name": "sils", "shape": [1, 3, 64, 44], "dtype": "float32"}],
        "outputs": [{"name": "embeddings", "shape": [1, 128, 64], "dtype": "float32"}],
        "engine": {"backend": "tensorrt", "precision": "int8", "trt_version": "8.5.2.2", **GPU,
                   "plan_sha256": mf.sha256_file(plan), **engine}})
    return plan


@pytest.mark.parametrize("trt_version, gpu, needle", [
    ("10.3.0", GPU, "built by TensorRT 8.5.2.2, this machine has TensorRT 10.3.0"),
    ("8.5.2", {"gpu_name": "NVIDIA A100", "compute_capability": "8.0"}, "not portable across GPU architectures"),
    ("8.5.2", {"gpu_name": "Orin NX", "compute_capability": "8.7"}, "this GPU is Orin NX"),
])
def test_foreign_plans_are_refused(tmp_path, trt_version, gpu, needle):
    man = mf.read(mf.manifest_path_for(_plan(tmp_path)))
    with pytest.raises(EngineMismatch, match=needle) as exc:
        check_plan_compat(man, trt_version, gpu, "m.int8.plan")
    assert "deploykit build-engine gaitgl --backend tensorrt" in str(exc.value)


def test_matching_plan_passes_and_missing_version_is_refused(tmp_path):
    man = mf.read(mf.manifest_path_for(_plan(tmp_path)))
    check_plan_compat(man, "8.5.2", GPU)  # 8.5.2.2 vs 8.5.2: same major.minor.patch
    man["engine"].pop("trt_version")
    with pytest.raises(EngineMismatch, match="does not say which TensorRT"):
        check_plan_compat(man, "8.5.2", GPU)


def test_missing_tensorrt_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    eng = Engine.load(_plan(tmp_path))
    assert eng.backend == "tensorrt" and [s.name for s in eng.inputs] == ["sils"]
    with pytest.raises(BackendUnavailable, match=r"pip install 'deploykit\[trt\]'"):
        eng.infer({"sils": np.zeros((1, 3, 64, 44), np.float32)})


def test_refusal_comes_before_deserialisation(tmp_path, monkeypatch):
    """A fake tensorrt 10.3 whose Runtime fails the test if touched: the 8.5 plan must be refused first."""
    calls = []

    class Runtime:
        def __init__(self, *a):
            calls.append("Runtime")

        def deserialize_cuda_engine(self, blob):
            calls.append("deserialize")
            raise AssertionError("deserialised a plan that the manifest check should have refused")

    class _Logger:
        class Severity:
            WARNING = 2

        def __init__(self, *a):
            pass

    fake_trt = types.SimpleNamespace(__version__="10.3.0", Runtime=Runtime, ILogger=_Logger)
    props = types.SimpleNamespace(name=b"Orin (nvgpu)", major=8, minor=7)
    fake_cudart = types.SimpleNamespace(cudaGetDeviceProperties=lambda d: (0, props), cudaSetDevice=lambda d: (0,))
    monkeypatch.setitem(sys.modules, "tensorrt", fake_trt)
    cuda_pkg = types.ModuleType("cuda")
    cuda_pkg.cudart = fake_cudart
    monkeypatch.setitem(sys.modules, "cuda", cuda_pkg)
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", None)
    monkeypatch.setitem(sys.modules, "cuda.cudart", fake_cudart)
    eng = Engine.load(_plan(tmp_path))
    with pytest.raises(EngineMismatch, match="TensorRT 8.5.2.2"):
        eng.activate()
    assert calls == []


def test_plan_manifest_is_plain_json(tmp_path):
    plan = _plan(tmp_path)
    assert json.loads(mf.manifest_path_for(plan).read_text())["engine"]["trt_version"] == "8.5.2.2"
