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


def test_automatic_float_set_runs_fp32_once_and_quantizes_u8s8_once_per_candidate(tmp_path, monkeypatch):
    """Without --sensitivity, the U8S8 model keeps S8S8's automatic float set only if that lowers U8S8's
    NSR, so two U8S8 models are measured. The FP32 reference is computed once for the S8S8 choice and
    the U8S8 check, and the measured winner is the artifact (no third quantization)."""
    from deploykit.calib import mixed, qdq, sensitivity
    from deploykit.export import OnnxFromModel

    real_decide, real_ref, real_quantize = mixed.decide, sensitivity.reference_outputs, qdq.quantize
    calls = {"ref": 0, "u8s8": []}

    def ref(*a, **k):
        calls["ref"] += 1
        return real_ref(*a, **k)

    def quantize(src, rng, layout, dst, **k):
        if qdq.QdqLayout(layout) is qdq.QdqLayout.U8S8:
            calls["u8s8"].append(sorted(k.get("exclude_nodes") or ()))
        return real_quantize(src, rng, layout, dst, **k)

    # always=True: the sweep runs (and chooses) whatever the all-INT8 NSR, so the U8S8 check has a set to test
    monkeypatch.setattr(mixed, "decide", lambda *a, **k: real_decide(*a, **{**k, "always": True}))
    monkeypatch.setattr(sensitivity, "reference_outputs", ref)
    monkeypatch.setattr(qdq, "quantize", quantize)
    src = OnnxFromModel("gaitgl", frames=3)(tmp_path).onnx_path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntheticCalibrationWarning)
        res = QdqFromOnnx(src, samples=4, method="max", auto_mixed=True, progress=False)(tmp_path)
    chosen = res.sensitivity.float_nodes
    assert chosen, "the forced sweep chose no float layer: nothing for the U8S8 check to test"
    assert calls["ref"] == 1
    assert calls["u8s8"] == [sorted(chosen), []], calls["u8s8"]  # with the set, without it; nothing more
    assert not list(tmp_path.rglob("*.all-int8.onnx"))
    how = json.loads(res.paths["u8s8"].with_name("gaitgl.int8.manifest.json").read_text())["engine"]["mixed_precision"]
    # the artifact is the model the verdict describes: re-quantizing with its float set gives the same graph
    again = tmp_path / "again.onnx"
    real_quantize(res.paths["opt"], res.ranges, qdq.QdqLayout.U8S8, again, exclude_nodes=res.float_nodes)
    assert again.read_bytes() == res.paths["u8s8"].read_bytes(), how["u8s8"]
