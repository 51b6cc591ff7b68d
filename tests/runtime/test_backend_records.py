"""A backend is one record: a fake numpy 'echo' backend registered here appears in `choose_backend`,
`build-engine`'s builders, `Engine.load`, `deploykit bench` and `deploykit doctor` without any other code.

This module is both halves of the fake backend (its Engine subclass and its builder functions), as
`runtime/backends/NAME.py` and `build/backends/NAME.py` are for a real one.
"""

import shutil
import sys

import numpy as np
import pytest

from deploykit import manifest as mf
from deploykit.runtime import Engine, backend
from deploykit.runtime.backend import Backend, BenchVariant

ECHO = "echo"


class EchoEngine(Engine):
    """Outputs of the manifest's shapes, every value the sum of the inputs (so a test can check it ran)."""

    def __init__(self, path, manifest, scale: float = 1.0) -> None:
        super().__init__(path, manifest)
        self.scale = scale

    def _activate(self) -> None:
        pass

    def _deactivate(self) -> None:
        pass

    def _infer(self, feeds):
        total = self.scale * sum(float(a.sum()) for a in feeds.values())
        return {s.name: np.full(s.shape, total, np.dtype(s.dtype)) for s in self.outputs}


def preflight(options) -> None:
    if options.int8:
        from deploykit.build.build_engine import UnsupportedPrecision

        raise UnsupportedPrecision("the echo backend has no INT8")


def build(onnx_path, man, options, out_dir, calibration=None):
    from deploykit.build.build_engine import BuildResult

    engine = out_dir / f"{onnx_path.name.rsplit('.', 1)[0]}.echo"
    shutil.copyfile(onnx_path, engine)
    mpath = mf.write_engine_manifest(man, engine, {"backend": ECHO, "precision": "fp32"})
    return BuildResult(engine, mpath, mf.read(mpath), ECHO)


@pytest.fixture
def echo():
    rec = backend.register(Backend(
        name=ECHO, engine=f"{__name__}:EchoEngine", builder=__name__, probe=lambda: None,
        summary="the echo backend is always here", device="numpy", priority=1000, suffixes=(".echo",),
        bench=(BenchVariant("echo-fp32", {}),)))
    assert sys.modules[__name__] is not None  # the record's import paths name this module
    yield rec
    backend._REGISTRY._entries.pop(ECHO)  # the generic registry has no removal: tests clean up by hand


@pytest.fixture(scope="module")
def gaitset_onnx(tmp_path_factory):
    from deploykit.export import OnnxFromModel

    return OnnxFromModel("gaitset", frames=4)(tmp_path_factory.mktemp("gaitset")).onnx_path


def test_the_real_records():
    names = [b.name for b in backend.by_priority()]
    assert names[:3] == ["tensorrt", "openvino", "onnxruntime"]  # auto's order: GPU, then the CPU backends
    ort = backend.get("onnxruntime")
    assert ort.available() is None  # the base install
    assert "threads" in ort.engine_options() and "threads" not in backend.get("tensorrt").engine_options()
    assert backend.get("tensorrt").engine_options() == ("device",)
    with pytest.raises(Exception, match="did you mean tensorrt"):
        backend.get("tensorrtt")


def test_a_registered_backend_is_chosen_built_loaded_benched_and_reported(echo, gaitset_onnx, tmp_path):
    from deploykit.build.build_engine import BuildOptions, EngineFromOnnx, UnsupportedPrecision, choose_backend
    from deploykit.doctor import collect
    from deploykit.verify.bench import bench_backends, run_bench

    assert choose_backend("auto") == (ECHO, "the echo backend is always here")  # highest priority, usable
    assert choose_backend(ECHO) == (ECHO, "asked for")
    with pytest.raises(UnsupportedPrecision, match="no INT8"):  # its preflight runs before any work
        EngineFromOnnx(gaitset_onnx, BuildOptions(int8=True), backend=ECHO)(tmp_path)
    res = EngineFromOnnx(gaitset_onnx, BuildOptions(), backend="auto")(tmp_path / "out")
    assert res.backend == ECHO and res.engine_path.suffix == ".echo"
    feeds = {"sils": np.full((1, 4, 64, 44), 0.5, np.float32)}
    with Engine.load(res.engine_path, scale=2.0) as eng:
        assert type(eng) is EchoEngine and eng.backend == ECHO
        out = eng.infer(feeds)
    assert all(np.all(v == 2.0 * 0.5 * 4 * 64 * 44) for v in out.values())  # exact: sums of 0.5 in float64
    with pytest.raises(Exception, match="takes no option threads; it takes scale"):
        Engine.load(res.engine_path, threads=2)

    assert "echo-fp32" in bench_backends()
    msgs = []
    report = run_bench([str(res.engine_path)], iters=2, rounds=1, warmup=1, threads=2, progress=msgs.append)
    assert [t.samples for t in report.timings] == [2]
    assert any("takes no thread count" in m for m in msgs)  # --threads is not passed to an engine without it

    row = next(r for r in collect()["backends"] if r["backend"] == ECHO)
    assert row == {"backend": ECHO, "usable": True, "why": "the echo backend is always here"}


def test_an_unusable_backend_is_passed_over_with_its_reason(echo, monkeypatch):
    from deploykit.build.build_engine import choose_backend

    monkeypatch.setattr(Backend, "available", lambda self: "echo is switched off" if self.name == ECHO else
                        self.probe())
    name, why = choose_backend("auto")
    assert name != ECHO and why.startswith("echo is switched off; ")
