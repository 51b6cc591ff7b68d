"""`deploykit build-engine` as a user runs it: INT8 on ONNX Runtime builds, loads, runs and stays
accurate against PyTorch FP32 on held-out data; FP16 on the CPU is refused in one line."""

import json

import numpy as np
import pytest

from conftest import run_cli
from deploykit import models
from deploykit.calib import trt_cache
from deploykit.runtime import Engine
from deploykit.verify import gates
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
    assert eng["calibration"]["method"] == "percentile" and eng["calibration"]["samples"] == 8
    assert eng["calibration"]["synthetic"] is True and eng["versions"]["onnxruntime"]
    mixed = eng["mixed_precision"]  # automatic: the sweep runs only if the all-INT8 model misses; recorded either way
    assert mixed["decided_by"].startswith("automatic")
    assert mixed["float_nodes"] == sorted(mixed["sensitivity"]["float_nodes"] if mixed["sensitivity"] else [])
    s8 = json.loads((gaitgl_int8 / "gaitgl.int8-s8s8.manifest.json").read_text())["engine"]["mixed_precision"]
    assert s8["float_nodes"] == mixed["float_nodes"]  # carried into the TensorRT model too
    with Engine.load(gaitgl_int8 / "gaitgl.int8.onnx") as e:
        out = e.infer({"sils": np.random.default_rng(0).uniform(0, 1, (1, 6, 64, 44)).astype(np.float32)})
    assert out["embeddings"].shape == (1, 128, 64) and np.isfinite(out["embeddings"]).all()


def test_gaitgl_int8_accuracy_reads_the_gates_table(gaitgl_int8):
    # the report carries the table's INT8 gates (centred cosine, signal NSR over the held-out batch);
    # the plain cosine, the old weak gate, is still reported
    for artifact in ("gaitgl.int8.onnx", "gaitgl.int8-s8s8.onnx"):
        rep = engine_accuracy("gaitgl", gaitgl_int8 / artifact, samples=4)
        assert rep.outputs[0].cosine_mean >= 0.99, rep.to_json()
        checks = rep.outputs[0].checks
        assert [(c.metric, c.limit) for c in checks] == [(t.figure, t.limit) for t in gates.INT8.output]
        assert rep.passed == all(checks) and checks[0].value == pytest.approx(rep.outputs[0].centred_cosine)


def test_parity_command_gates_int8_on_the_signal(gaitgl_int8, tmp_path):
    # `deploykit parity` on an INT8 engine gates by the table: centred cosine and signal NSR over 12
    # held-out samples, and nearest-neighbour agreement. Whether it passes depends on the Q/DQ
    # placement (issue 10 item 1); the exit code must say what the report says.
    proc = run_cli("parity", "gaitgl", "--engine", str(gaitgl_int8 / "gaitgl.int8.onnx"),
                   "--json", str(tmp_path / "p.json"))
    rep = json.loads((tmp_path / "p.json").read_text())
    assert proc.returncode == (0 if rep["passed"] else 1), proc.stdout + proc.stderr
    assert rep["precision"] == "int8" and rep["samples"] == 12
    assert [(c["metric"], c["limit"]) for c in rep["outputs"][0]["checks"]] == [("centred_cosine", 0.9798),
                                                                                 ("signal_nsr", 0.2)]
    assert rep["task"]["checks"][0]["metric"] == "nn_agreement" and rep["task_gate"] == "gated"


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
    # plain cosine (the old gate) still holds; the table's centred gates judge the engine (random
    # weights lose the input-dependent part, benchmarks/int8_accuracy.md), and `passed` says so
    assert all(o.cosine_mean >= 0.98 for o in rep.outputs), rep.to_json()
    assert rep.passed == all(all(o.checks) for o in rep.outputs)
    assert all(o.checks[0].limit == gate_for(family) for o in rep.outputs)
    if family == "pose":  # measured on all 8 held-out crops (flat random-weight maps: see `parity`'s task gate)
        assert rep.keypoints["joints"] == 8 * 17


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
