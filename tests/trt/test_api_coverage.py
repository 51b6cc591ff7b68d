"""Every TensorRT and cuda-python call the code base makes is one the recording double has, and one the
recording tests exercise. The calls are found by an AST scan of attribute chains on the objects that
hold TensorRT / cuda-python values (the module `trt`, builders, networks, layers, tensors, configs, the
runtime, engines, contexts; `cudart` and its device properties). A new call fails this test until the
double (with its source cited in recording_trt.py) and a recording test cover it."""

import ast
from pathlib import Path

import numpy as np
import pytest
from recording_trt import CUDART_MEMBERS, FLOAT, VERSIONS, FakeCudart, Net, make_trt, members
from test_recording_build import _build
from test_recording_runtime import _install, _plan

from deploykit.build.backends import tensorrt as tb
from deploykit.build.build_engine import Precision
from deploykit.runtime import Engine

ROOT = Path(__file__).resolve().parents[2]
TRT_FILES = ["deploykit/build/backends/tensorrt.py", "deploykit/runtime/backends/tensorrt.py"]
CUDA_FILES = ["deploykit/runtime/backends/tensorrt.py"]
TRT_ROOTS = {"trt", "builder", "network", "parser", "config", "layer", "profile", "cache", "runtime", "engine",
             "t", "serialized"}
SELF_TRT = {"_context", "_engine", "_trt", "_runtime"}
CUDA_ROOTS = {"cudart"}
PROPS = {"name", "major", "minor"}  # cudaDeviceProp fields read by gpu_identity


def _chains(path: str, roots: set, self_attrs: set = frozenset()) -> set[str]:
    """Attribute names reached from a root name (or self.<one of self_attrs>), through calls and subscripts."""
    found = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if not isinstance(node, ast.Attribute):
            continue
        chain, cur = [node.attr], node.value
        while isinstance(cur, (ast.Attribute, ast.Call, ast.Subscript)):
            if isinstance(cur, ast.Attribute):
                chain.append(cur.attr)
            cur = cur.func if isinstance(cur, ast.Call) else cur.value
        if isinstance(cur, ast.Name) and cur.id in roots:
            found.add(node.attr)
        elif isinstance(cur, ast.Name) and cur.id == "self" and chain[-1] in self_attrs and len(chain) > 1:
            found.add(node.attr)
    return found


def _trt_calls() -> set[str]:
    return set().union(*(_chains(f, TRT_ROOTS, SELF_TRT) for f in TRT_FILES)) - {"__version__"}


def _cuda_calls() -> set[str]:
    return set().union(*(_chains(f, CUDA_ROOTS | {"props"}) for f in CUDA_FILES))


def test_the_scan_sees_the_calls():
    """A scan that found nothing would pass vacuously: these calls are known to be in the code."""
    assert {"build_serialized_network", "set_timing_cache", "set_output_type", "dynamic_range", "DLA_core",
            "execute_async_v3", "set_input_shape", "add_optimization_profile"} <= _trt_calls()
    assert {"cudaGetDeviceCount", "cudaMemcpyAsync", "cudaGetDeviceProperties"} <= _cuda_calls()


def test_every_tensorrt_call_is_in_the_double_and_exercised(tmp_path, monkeypatch):
    union = set().union(*(m for v in VERSIONS for m in members(v).values()))
    calls = _trt_calls()
    assert calls <= union, f"TensorRT calls the recording double does not have: {sorted(calls - union)}"
    touched: set[str] = set()
    runs = [dict(version="8.5.2", precision=Precision.INT8_FP16, fp32_nodes=["relu"], amax={"x": 1.0}),
            dict(version="8.5.2", precision=Precision.FP16, dla=True),
            dict(version="10.3.0", precision=Precision.FP16, timing_cache=str(tmp_path / "t.cache"),
                 dynamic_batch={"min": 1, "opt": 2, "max": 4}),
            dict(version="11.1.0", precision=Precision.INT8),
            dict(version="10.3.0", dynamic_batch={"min": 1, "opt": 2, "max": 4},  # no manifest shape: t.shape
                 net=Net(inputs=[("z", (-1, 4), FLOAT)]))]
    for i, kw in enumerate(runs):
        d = tmp_path / f"b{i}"
        d.mkdir()
        _, rec, _ = _build(d, kw.pop("version"), **{"net": Net(), **kw})
        touched |= {m for _, _, m, _ in rec.calls}
        if rec.loggers:  # the ILogger subclass was constructed: trt.ILogger.__init__ ran
            touched.add("__init__")
        if any(getattr(lg, "lines", None) for lg in rec.loggers):  # log() compared against Severity.WARNING
            touched |= {"Severity", "WARNING"}
    trt, rec = make_trt("10.3.0", parse_ok=False)  # the parse failure path: num_errors, get_error
    (tmp_path / "bad.onnx").write_bytes(b"")
    with pytest.raises(tb.TrtBuildError):
        tb._build_plan(trt, tb.plan_build("10.3.0", Precision.FP32), tmp_path / "bad.onnx", tmp_path / "bad.plan",
                       workspace_mib=1, timing_cache=None, dla_core=None, amax=None, fp32_nodes=frozenset(),
                       node_names=frozenset())
    touched |= {m for _, _, m, _ in rec.calls}
    for dyn, dla in ((None, 1), ({"min": 1, "opt": 2, "max": 4}, None)):
        trt, rec, _ = _install(monkeypatch, "10.3.0", -1 if dyn else 2)
        eng = Engine.load(_plan(tmp_path, "10.3.0", dynamic=dyn, dla_core=dla, batch=4 if dyn else 2))
        eng.activate()
        eng._infer({"x": np.ones((2, 4), np.float32)})
        eng.deactivate()
        touched |= {m for _, _, m, _ in rec.calls}
    missed = calls - touched
    assert not missed, f"TensorRT calls no recording test exercises: {sorted(missed)}"


def test_every_cuda_python_call_is_in_the_double(monkeypatch, tmp_path):
    calls = _cuda_calls() - PROPS - {"decode"}  # props.name.decode(): bytes, not cuda-python
    kinds = {"cudaMemcpyHostToDevice", "cudaMemcpyDeviceToHost"}  # cudaMemcpyKind members
    assert kinds <= set(vars(FakeCudart.cudaMemcpyKind))
    calls -= kinds
    assert calls <= CUDART_MEMBERS, f"cuda-python calls the double does not have: {sorted(calls - CUDART_MEMBERS)}"
    trt, rec, cudart = _install(monkeypatch, "10.3.0", 2)
    with Engine.load(_plan(tmp_path, "10.3.0")) as eng:
        eng.infer({"x": np.ones((2, 4), np.float32)})
    from deploykit.runtime.backends.tensorrt import gpu_present

    gpu_present()
    exercised = set(cudart.calls)
    assert calls - {"cudaMemcpyKind"} <= exercised, sorted(calls - exercised)


@pytest.mark.parametrize("version", VERSIONS)
def test_double_lists_differ_where_the_sources_say(version):
    m = members(version)
    major = int(version.split(".")[0])
    assert ("STRONGLY_TYPED" in m["NetworkDefinitionCreationFlag"]) == (major >= 10)
    assert ("FP16" in m["BuilderFlag"]) == (major < 11) and ("INT8" in m["BuilderFlag"]) == (major < 11)
    assert ("int8_calibrator" in m["IBuilderConfig"]) == (major < 11)
    assert ("IInt8EntropyCalibrator2" in m["tensorrt"]) == (major < 11)
    assert ("execute_async_v2" in m["IExecutionContext"]) == (major < 10)
    assert "TF32" in m["BuilderFlag"]
    assert FakeCudart  # the cuda-python double is shared by the runtime tests
