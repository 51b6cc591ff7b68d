"""`QdqFromOnnx`: one calibration writes every INT8 artifact, and `--sensitivity` records its choice."""

import json
import warnings

import pytest

from deploykit.calib import QdqFromOnnx, Ranges
from deploykit.calib.sources import SyntheticCalibrationWarning


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    from deploykit.export import OnnxFromModel

    d = tmp_path_factory.mktemp("cal")
    res = OnnxFromModel("gaitgl", frames=3)(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntheticCalibrationWarning)
        return QdqFromOnnx(res.onnx_path, samples=4, method="max", sensitivity=True, progress=False)(d)


def test_every_artifact_and_its_manifest(calibrated):
    for key in ("opt", "ranges", "cache", "s8s8", "u8s8"):
        assert calibrated.paths[key].is_file(), key
    rg = Ranges.load(calibrated.paths["ranges"])
    assert rg.method.value == "max" and rg.samples == 4 and "sils" in rg.tensors
    for key in ("s8s8", "u8s8"):
        man = json.loads(calibrated.paths[key].with_name(calibrated.paths[key].name.replace(".onnx", ".manifest.json")).read_text())
        eng = man["engine"]
        assert eng["precision"] == "int8" and eng["calibration"]["method"] == "max"
        assert eng["layout"].startswith(key.upper()) and eng["qdq"]["QuantizeLinear"] > 0
        assert man["onnx_sha256"] != eng["source_onnx_sha256"]  # the artifact's own hash


def test_sensitivity_choice_is_recorded(calibrated):
    rep = calibrated.sensitivity
    assert rep is not None and rep.layers and rep.steps[0]["float_nodes"] == 0
    man = json.loads(calibrated.paths["u8s8"].with_name("gaitgl.int8.manifest.json").read_text())
    mixed = man["engine"]["mixed_precision"]
    assert mixed["decided_by"] == "sensitivity sweep" and mixed["float_nodes"] == calibrated.float_nodes
    assert mixed["sensitivity"]["candidates"] == len(rep.layers) and mixed["sensitivity"]["most_sensitive"]
