"""`deploykit build-engine` as a user runs it: INT8 on ONNX Runtime builds, loads, runs and stays
accurate against PyTorch FP32 on held-out data; FP16 on the CPU is refused in one line."""

import json

import numpy as np
import pytest

from conftest import run_cli
from deploykit import models
from deploykit.calib import trt_cache
from deploykit.runtime import Engine
from deploykit.verify.quant_accuracy import engine_accuracy, gate_for


def _build(tmp, name, *extra):
    out = tmp / name
    proc = run_cli("build-engine", name, "--int8", "--backend", "onnxruntime", "--out", str(out), *extra)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "SYNTHETIC" in proc.stderr and "backend: onnxruntime (asked for)" in proc.stderr
    return out


@pytest.fixture(scope="module")
def gaitgl_int8(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("cli"), "gaitgl", "--frames", "6", "--calib-samples", "8")


def test_gaitgl_int8_builds_loads_and_runs(gaitgl_int8):
    names = sorted(p.name for p in gaitgl_int8.iterdir())
    for f in ("gaitgl.int8.onnx", "gaitgl.int8.manifest.json", "gaitgl.int8-s8s8.onnx", "gaitgl.calib.cache",
              "gaitgl.ranges.json", "gaitgl.opt.onnx"):
        assert f in names
    man = json.loads((gaitgl_int8 / "gaitgl.int8.manifest.json").read_text())
    eng = man["engine"]
    assert eng["backend"] == "onnxruntime" and eng["precision"] == "int8"
    assert eng["calibration"]["method"] == "entropy" and eng["calibration"]["samples"] == 8
    assert eng["calibration"]["synthetic"] is True and eng["versions"]["onnxruntime"]
    assert eng["mixed_precision"]["float_nodes"] == []
    with Engine.load(gaitgl_int8 / "gaitgl.int8.onnx") as e:
        out = e.infer({"sils": np.random.default_rng(0).uniform(0, 1, (1, 6, 64, 44)).astype(np.float32)})
    assert out["embeddings"].shape == (1, 128, 64) and np.isfinite(out["embeddings"]).all()


def test_gaitgl_int8_accuracy_on_held_out_data(gaitgl_int8):
    for artifact in ("gaitgl.int8.onnx", "gaitgl.int8-s8s8.onnx"):
        rep = engine_accuracy("gaitgl", gaitgl_int8 / artifact, samples=4)
        assert rep.passed and rep.outputs[0].cosine_mean >= 0.99, rep.to_json()


def test_parity_command_reports_int8(gaitgl_int8, tmp_path):
    # `deploykit parity` on an INT8 engine gates by its precision (cosine >= 0.99 for embeddings)
    proc = run_cli("parity", "gaitgl", "--engine", str(gaitgl_int8 / "gaitgl.int8.onnx"), "--samples", "2",
                   "--json", str(tmp_path / "p.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rep = json.loads((tmp_path / "p.json").read_text())
    assert rep["precision"] == "int8" and rep["passed"]
    assert rep["outputs"][0]["checks"][0]["limit"] == 0.99
    assert rep["task"]["pairs"] == 2 and 0.0 <= rep["task"]["rank1_agreement"] <= 1.0


def test_calibration_cache_reads_back(gaitgl_int8):
    tag, algo, scales = trt_cache.read(gaitgl_int8 / "gaitgl.calib.cache")
    assert (tag, algo) == ("8502", "EntropyCalibration2")
    ranges = json.loads((gaitgl_int8 / "gaitgl.ranges.json").read_text())["tensors"]
    assert set(scales) == set(ranges)
    for name, r in ranges.items():
        assert scales[name] == pytest.approx(r["amax"] / 127, rel=1e-6)


def test_fp16_on_cpu_is_refused_in_one_line(tmp_path):
    proc = run_cli("build-engine", "gaitgl", "--fp16", "--backend", "onnxruntime", "--frames", "3",
                   "--out", str(tmp_path))
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "no FP16 kernels" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hrnet-w32", "rga"])
def test_image_models_int8(tmp_path, name):
    out = _build(tmp_path, name, "--calib-samples", "16")
    with Engine.load(out / f"{name}.int8.onnx") as e:
        feeds = {s.name: np.zeros(s.shape, np.float32) for s in e.inputs}
        assert all(np.isfinite(v).all() for v in e.infer(feeds).values())
    rep = engine_accuracy(name, out / f"{name}.int8.onnx", samples=8)
    family = models.spec(name).family
    assert all(o.cosine_mean >= gate_for(family) for o in rep.outputs), rep.to_json()
    if family == "pose":  # measured and reported; flat random-weight heatmaps make it fragile (see README)
        assert 0.0 <= rep.keypoints["share_within"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gaitgl", "hrnet-w32", "rga"])
def test_fp16_graph_stays_in_range(tmp_path, name):
    from deploykit.calib.qdq import optimize_for_quantization
    from deploykit.export import OnnxFromModel
    from deploykit.verify.fp16_check import fp16_stress

    res = OnnxFromModel(name)(tmp_path)
    r = fp16_stress(optimize_for_quantization(res.onnx_path, tmp_path / "opt.onnx"), res.manifest)
    if r.gain is not None:
        assert not r.naive_finite or r.naive_overflowed
    assert r.passed, r.to_json()
