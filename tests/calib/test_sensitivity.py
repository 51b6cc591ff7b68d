"""The per-layer sweep: gates off = FP32 exactly; a layer made to hurt is found and kept float."""

import dataclasses

import numpy as np
import onnxruntime as ort
import pytest

from tiny_graphs import tiny_convnet, tiny_feeds
from deploykit.calib import qdq, sensitivity as S
from deploykit.calib.ranges import RangeCollector

@pytest.fixture
def tiny_model(tmp_path):
    return tiny_convnet(tmp_path / "tiny.onnx")



def test_gates_off_is_the_fp32_model(tiny_model):
    rg = RangeCollector(tiny_model).collect(tiny_feeds(4)).ranges("max")
    model, cands = S.gated_model(tiny_model, rg)
    assert [c[0] for c in cands] == ["conv1", "conv2"]
    sess = ort.InferenceSession(model.SerializeToString())
    ref = ort.InferenceSession(str(tiny_model))
    f = tiny_feeds(1, seed=3)[0]
    off = sess.run(None, {**f, S.GATES: np.zeros(2, np.float32)})[0]
    on = sess.run(None, {**f, S.GATES: np.ones(2, np.float32)})[0]
    np.testing.assert_allclose(off, ref.run(None, f)[0], rtol=1e-6, atol=1e-6)
    assert not np.allclose(on, off)


def test_a_hurting_layer_is_found_and_kept_float(tiny_model, tmp_path):
    rg = RangeCollector(tiny_model).collect(tiny_feeds(8)).ranges("max")
    bad = dataclasses.replace(rg.tensors["r"], amax=rg.tensors["r"].amax * 0.05, hi=rg.tensors["r"].amax * 0.05)
    rg.tensors["r"] = bad  # conv2's input range clipped to 5 %: quantizing conv2 must hurt
    feeds = tiny_feeds(6, seed=11)
    layers = S.sweep(tiny_model, rg, feeds)
    worst = max(layers, key=lambda e: e.error)
    assert worst.node == "conv2" and worst.error > 10 * min(e.error for e in layers)
    ref_sess = ort.InferenceSession(str(tiny_model))
    ref = [ref_sess.run(None, f) for f in feeds]

    def evaluate(float_nodes):
        p = qdq.quantize(tiny_model, rg, "s8s8", tmp_path / "e.onnx", exclude_nodes=float_nodes)
        s = ort.InferenceSession(str(p))
        return S.output_nsr(ref, [s.run(None, f) for f in feeds])

    rep = S.choose_float_layers(layers, evaluate, target=0.01, max_float_fraction=0.5)
    assert rep.float_nodes == ["conv2"] and rep.final_nsr < rep.full_int8_nsr
    js = rep.to_json()
    assert js["float_nodes"] == ["conv2"] and js["most_sensitive"][0]["node"] == "conv2"
