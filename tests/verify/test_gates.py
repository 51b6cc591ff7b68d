"""The gates of `deploykit parity` can fail: the signal figures, the task figures, and a deliberately
mis-quantized gaitgl that exits 1 while its FP32 export (and a TensorRT-style placement) pass."""

import json

import numpy as np
import pytest

from conftest import run_cli
from deploykit.verify import compare, gates
from deploykit.verify.task_metrics import embedding_agreement, keypoint_agreement


def test_centred_figures_see_a_lost_signal_that_plain_cosine_misses():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(1, 256)) * 100.0               # what random weights put in every output
    ref = shared + rng.normal(size=(12, 256))                 # input-dependent part: ~1% of the norm
    lost = shared + rng.normal(size=(12, 256))                # same size, unrelated to the input
    good = ref + 0.05 * rng.normal(size=ref.shape)            # noise 5% of the signal
    s_lost, s_good = compare.signal_stats(ref, lost), compare.signal_stats(ref, good)
    assert s_lost["cosine"] > 0.9999 and s_good["cosine"] > 0.9999  # plain cosine cannot tell them apart
    assert abs(s_lost["centred_cosine"]) < 0.2 and s_lost["signal_nsr"] > 1.0
    assert s_good["centred_cosine"] > 0.99 and s_good["signal_nsr"] < 0.1
    judge = {t.figure: t for t in gates.INT8.output}
    assert not judge["centred_cosine"].judge(s_lost["centred_cosine"]) and judge["signal_nsr"].judge(s_good["signal_nsr"])
    # a 1.5x scale keeps every cosine at 1; only the NSR sees it
    mu = ref.mean(0, keepdims=True)
    s_scaled = compare.signal_stats(ref, mu + 1.5 * (ref - mu))
    assert s_scaled["centred_cosine"] > 0.999 and not judge["signal_nsr"].judge(s_scaled["signal_nsr"])


def test_centred_figures_are_nan_and_fail_without_a_batch():
    s = compare.signal_stats(np.ones((1, 8)), np.ones((1, 8)))
    assert np.isnan(s["centred_cosine"]) and not gates.INT8.output[0].judge(s["centred_cosine"])


MAN_EMB = {"model": {"family": "gait"}, "outputs": [{"name": "e"}], "postprocess": {"metric": "cosine"}}


def test_embedding_agreement_with_and_without_labels():
    rng = np.random.default_rng(1)
    ids = np.repeat(np.arange(4), 3)                            # 4 identities x 3 samples
    centres = rng.normal(size=(4, 32))
    ref = centres[ids] + 0.1 * rng.normal(size=(12, 32))
    same = {"e": ref + 1e-3 * rng.normal(size=ref.shape)}
    scrambled = {"e": rng.normal(size=ref.shape)}
    ok = embedding_agreement(MAN_EMB, {"e": ref}, same, gates.INT8, ids)
    bad = embedding_agreement(MAN_EMB, {"e": ref}, scrambled, gates.INT8, ids)
    assert ok["rank1_reference"] == 1.0 and ok["nn_agreement"] == 1.0 and all(ok["checks"]), ok
    assert bad["nn_agreement"] < 0.5 and bad["rank1_difference"] > 0.3
    assert [c.passed for c in bad["checks"]] == [False, False, False], bad
    # one query is the smallest difference 12 queries can show: the rank-1 limit widens to 1/12
    assert bad["checks"][1].limit == pytest.approx(1 / 12)
    pseudo = embedding_agreement(MAN_EMB, {"e": ref}, same, gates.INT8, None)
    assert "pseudo" in pseudo["labels"] and pseudo["pseudo_mAP"] == 1.0 and len(pseudo["checks"]) == 1


def _gauss_maps(joints, h=64, w=48, sigma=2.0):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([np.exp(-((x - jx) ** 2 + (y - jy) ** 2) / (2 * sigma ** 2)) for jx, jy in joints])[None]


MAN_POSE = {"model": {"family": "pose"}, "inputs": [{"shape": [1, 3, 256, 192]}], "outputs": [{"name": "hm"}],
            "postprocess": {"decoder": "quarter"}}


def test_pose_gate_judges_peaked_heatmaps_and_refuses_flat_ones():
    rng = np.random.default_rng(2)
    joints = rng.uniform(8, 40, size=(17, 2))
    ref = [{"hm": _gauss_maps(joints)}]
    near = [{"hm": _gauss_maps(joints + 0.3)}]
    moved = [{"hm": _gauss_maps(joints + [6.0, 0.0])}]           # 6 heatmap px = 24 input px > PCK@0.05 (12.8)
    ok, far = (keypoint_agreement(MAN_POSE, ref, e, gates.INT8) for e in (near, moved))
    assert ok["applicable"] and ok["peaked_share"] == 1.0 and all(ok["checks"]), ok
    assert far["applicable"] and not any(far["checks"]), far
    flat = [{"hm": rng.normal(size=(1, 17, 64, 48))}]           # random weights: no peak stands out
    na = keypoint_agreement(MAN_POSE, flat, flat, gates.INT8)
    assert not na["applicable"] and "checks" not in na and na["median_peak"] < gates.PEAK_MIN_STD


@pytest.fixture(scope="module")
def gaitgl_engines(tmp_path_factory):
    """gaitgl (seed 0, 6 frames) as FP32 ONNX, plus two S8S8 Q/DQ models built here with
    onnxruntime.quantization directly (not deploykit's calib/qdq.py, which is being changed):
    `bad.onnx` with ONNX Runtime's default placement (every op type, Q/DQ on Conv outputs, what
    main wrote for TensorRT before issue 10) and `conv_inputs.onnx` with Q/DQ on Conv inputs only
    (TensorRT's rule: quantize the inputs of weighted ops, not their outputs)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from deploykit import manifest as mf
    from deploykit.calib import sources

    out = tmp_path_factory.mktemp("gates")
    assert run_cli("export", "gaitgl", "--frames", "6", "--out", str(out)).returncode == 0
    man = mf.read(out / "gaitgl.manifest.json")
    pre = out / "pre.onnx"
    quant_pre_process(str(out / "gaitgl.onnx"), str(pre), skip_symbolic_shape=True)
    calib = list(sources.batches(sources.SyntheticSource(man, seed=0, warn=False), 16, progress=False))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            return next(self.it, None)

    for name, placement in (("bad", {}), ("conv_inputs", {"op_types_to_quantize": ["Conv"]})):
        extra = {"ActivationSymmetric": True, "WeightSymmetric": True}
        if placement:
            extra["OpTypesToExcludeOutputQuantization"] = ["Conv"]
        dst = out / f"{name}.onnx"
        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, extra_options=extra, **placement)
        m = {**man, "onnx_sha256": mf.sha256_file(dst), "engine": {"backend": "onnxruntime", "precision": "int8"}}
        mf.write(mf.manifest_path_for(dst), m)
    return out


def test_parity_fails_a_misquantized_engine_and_passes_fp32(gaitgl_engines, tmp_path):
    bad = run_cli("parity", "gaitgl", "--engine", str(gaitgl_engines / "bad.onnx"), "--json", str(tmp_path / "b.json"))
    rep = json.loads((tmp_path / "b.json").read_text())
    assert bad.returncode == 1 and "FAIL" in bad.stdout, bad.stdout + bad.stderr
    stats = rep["outputs"][0]["stats"]
    assert stats["cosine"] > 0.999, stats              # the old gate (cosine >= 0.99) would have passed it
    assert stats["centred_cosine"] < 0.9 and stats["signal_nsr"] > 0.5, stats
    fp32 = run_cli("parity", "gaitgl", "--engine", str(gaitgl_engines / "gaitgl.onnx"))
    assert fp32.returncode == 0 and "PASS" in fp32.stdout, fp32.stdout + fp32.stderr
    few = run_cli("parity", "gaitgl", "--engine", str(gaitgl_engines / "bad.onnx"), "--samples", "4")
    assert few.returncode == 2 and "--samples 4 is too few" in few.stderr, few.stderr
    from deploykit.verify.parity import run_parity

    good = run_parity("gaitgl", gaitgl_engines / "conv_inputs.onnx")   # the same gates pass a sound INT8 placement
    assert good.passed and good.samples == 12, "\n".join(good.lines())


def test_parity_help_states_the_tables_limits():
    # the help text repeats the table for users; it must not drift from it
    text = " ".join(run_cli("parity", "--help").stdout.split())
    for g in (gates.FP16, gates.INT8):
        for t in g.output:
            assert f"{t.limit:g}" in text, (g.precision, t.figure)
    for t in (*gates.INT8.embedding[:1], *gates.INT8.pose):
        assert f"{t.limit:g}" in text, t.figure
    assert f"{gates.PEAK_MIN_STD:g} std" in text

