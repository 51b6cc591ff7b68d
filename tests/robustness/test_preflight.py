"""Preflight before heavy work (issue 11 item 4): calibration data, memory, --out; a refused build writes nothing."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from rb_helpers import calib_npy, loadable_sets, one_line, stages, tiny  # noqa: F401

from deploykit import preflight
from deploykit.calib import sources
from deploykit.cli import main
from deploykit.errors import BadInputError
from deploykit.manifest import TensorSpec

SIL = {"inputs": [{"name": "sils", "shape": [1, 4, 64, 44], "dtype": "float32"}],
       "preprocess": {"kind": "silhouette", "divisor": 255.0}}
IMG = {"inputs": [{"name": "img", "shape": [1, 3, 8, 8], "dtype": "float32"}],
       "preprocess": {"kind": "image", "scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}


def _sils(n=3, fill=None, dtype=np.float32):
    a = np.random.default_rng(0).uniform(0, 1, (n, 4, 64, 44))
    if fill is not None:
        a[1, 0, 0, 0] = fill
    return a.astype(dtype)


@pytest.mark.parametrize("arr, needle", [
    (_sils(dtype=np.int8), "has dtype int8; calibration data must be float32"),
    (_sils(dtype=np.float64), "has dtype float64"),
    (_sils(dtype=np.int64), "has dtype int64"),
    (_sils(fill=np.nan), "sample 1 holds NaN or Inf"),
    (_sils(fill=np.inf), "sample 1 holds NaN or Inf"),
    (_sils(fill=1e30), r"sample 1 has values in \[.*1e\+30\], outside \[0, 1\]"),
    (_sils(fill=-0.5), r"outside \[0, 1\], the range the silhouette preprocessing produces"),
])
def test_bad_calibration_arrays_are_refused_naming_file_and_sample(tmp_path, arr, needle):
    p = tmp_path / "calib.npy"
    np.save(p, arr)
    with pytest.raises(BadInputError, match=needle) as exc:
        sources.check_calib_data(p, SIL)
    assert str(p) in str(exc.value)


def test_good_calibration_arrays_pass(tmp_path):
    np.save(tmp_path / "ok.npy", _sils())
    sources.check_calib_data(tmp_path / "ok.npy", SIL)
    lo, hi = preflight.value_range(IMG["preprocess"])
    np.save(tmp_path / "img.npy", np.full((2, 3, 8, 8), hi, np.float32))  # the brightest normalised pixel
    sources.check_calib_data(tmp_path / "img.npy", IMG)
    np.save(tmp_path / "img_bad.npy", np.full((2, 3, 8, 8), 255.0, np.float32))  # raw pixels given as float
    with pytest.raises(BadInputError, match="outside"):
        sources.check_calib_data(tmp_path / "img_bad.npy", IMG)


def test_missing_calibration_data_is_refused(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        sources.check_calib_data(tmp_path / "nope.npy", SIL)


def test_tensors_that_cannot_fit_are_refused_up_front():
    specs = [TensorSpec("sils", (1, 100000, 64, 44))]
    with pytest.raises(BadInputError, match=r"about 64x that .* lower --frames/--batch"):
        preflight.check_tensor_memory(specs, "gaitset", available=8 << 30)
    preflight.check_tensor_memory([TensorSpec("sils", (1, 30, 64, 44))], "gaitset", available=8 << 30)


def test_export_with_frames_100000_is_refused_before_the_model_is_built(tmp_path, monkeypatch):
    monkeypatch.setattr(preflight, "available_memory", lambda: 8 << 30)
    res = CliRunner().invoke(main, ["export", "gaitset", "--frames", "100000", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "lower --frames/--batch" in res.output and one_line(res.output)
    assert not (tmp_path / "o").exists()


def test_export_into_an_unwritable_out_is_refused_in_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    res = CliRunner().invoke(main, ["export", "gaitset", "--out", str(tmp_path / "file" / "sub")])
    assert res.exit_code == 2 and "cannot write into --out" in res.output and one_line(res.output)


def _build(tiny, out, *extra):
    return CliRunner().invoke(main, ["-q", "build-engine", str(tiny), "--backend", "onnxruntime", "--out", str(out),
                                     *extra])


def test_a_refused_build_leaves_the_previous_engine_set_untouched(tmp_path, tiny):
    out = tmp_path / "eng"
    good = calib_npy(tmp_path / "c.npy")
    assert _build(tiny, out, "--int8", "--calib-data", str(good)).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    np.save(tmp_path / "i8.npy", np.zeros((4, 3, 16, 16), np.int8))
    for bad in (tmp_path / "missing.npy", tmp_path / "i8.npy"):
        res = _build(tiny, out, "--int8", "--calib-data", str(bad), "--calib-method", "max")
        assert res.exit_code == 2 and one_line(res.output), res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and not stages(out)
    assert "tiny.int8.onnx" in loadable_sets(out)


def test_build_engine_from_a_model_name_checks_calib_data_before_exporting(tmp_path):
    res = CliRunner().invoke(main, ["build-engine", "gaitset", "--int8", "--backend", "onnxruntime", "--calib-data",
                                    str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "does not exist" in res.output
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())  # nothing exported


def test_a_committed_engine_set_lists_its_members(tmp_path, tiny):
    out = tmp_path / "eng"
    assert _build(tiny, out, "--int8", "--calib-data", str(calib_npy(tmp_path / "c.npy"))).exit_code == 0
    man = json.loads((out / "tiny.int8.manifest.json").read_text())
    assert {"tiny.opt.onnx", "tiny.ranges.json", "tiny.calib.cache", "tiny.int8.onnx", "tiny.int8-s8s8.onnx"} <= \
        set(man["artifact_set"]["members"])
    assert sorted(loadable_sets(out)) == ["tiny.int8-s8s8.onnx", "tiny.int8.onnx"]
