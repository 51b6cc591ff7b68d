"""The zoo after the default patches: nothing blocks a TensorRT 10 build, and GeM heads stay in FP16 range."""

import numpy as np
import onnx
import pytest
import torch

from deploykit import models
from deploykit.export import OnnxFromModel
from deploykit.export.lint import audit_fp16, check_model
from deploykit.export.patches import apply_patches
from deploykit.models.factory import reference_model
from zoo_exports import raw_model, sample_feeds, zoo_params

GEM_INPUT_PEAK = 9.0  # > 65504 ** (1 / 6.5) = 5.51: x ** 6.5 overflows FP16 (1.6e6 at 9.0)


@pytest.mark.parametrize("name", zoo_params(models.names()))
def test_default_patches_leave_no_trt10_blocker(name):
    patched, _ = apply_patches(raw_model(name))
    report = check_model(patched, trt_version="10")
    assert report.passed, report.table()


def _clamp_input_peak(model, feeds) -> float:
    """max |x| entering GeM's clamp, read from the audit's ranges."""
    audit = audit_fp16(model, [feeds])
    clips = {n.output[0] for n in model.graph.node if n.op_type == "Clip"}
    pows = [n for n in model.graph.node if n.op_type == "Pow" and n.input[0] in clips]
    ranges = {r.name: r.max_abs for r in audit.ranges}
    return max(ranges[n.input[0]] for n in pows)


def _overflows(model, feeds) -> list:
    return [f for f in audit_fp16(model, [feeds]).findings if f.code == "fp16-overflow"]


def test_gem_overflow_before_and_not_after_patch_gaitgl(tmp_path):
    """An input scaled so GeM sees activations of ~9: the unpatched Pow overflows FP16, the patched graph does not.

    GaitGL up to GeM is positively homogeneous (bias-free convs, LeakyReLU, max pooling), so scaling
    the silhouettes by s scales GeM's input by s: the constructed input puts it at GEM_INPUT_PEAK.
    """
    raw = raw_model("gaitgl")
    feeds = sample_feeds("gaitgl", raw)
    scale = GEM_INPUT_PEAK / _clamp_input_peak(raw, feeds)
    loud = {k: (v * scale).astype(np.float32) for k, v in feeds.items()}
    np.savez(tmp_path / "loud.npz", **loud)
    before = check_model(_save(raw, tmp_path / "raw.onnx"), fp16=True, data=tmp_path)
    overflow = [f for f in before.findings if f.code == "fp16-overflow"]
    assert overflow and overflow[0].op == "Pow" and before.exit_code == 1
    patched, _ = apply_patches(raw)
    after = check_model(_save(patched, tmp_path / "patched.onnx"), fp16=True, data=tmp_path)
    assert not [f for f in after.findings if f.code == "fp16-overflow"] and after.exit_code == 0, after.table()


@pytest.mark.slow
def test_gem_overflow_before_and_not_after_patch_gaitedge(tmp_path):
    """GaitEdge's GaitGL sees a synthesised silhouette in [0, 1] (U-Net -> sigmoid -> RoIAlign), so the
    input cannot be scaled past it; instead its first conv's weights are scaled (a checkpoint whose
    activations are larger), which scales GeM's input the same way. The model's own sampler feeds it."""
    net, _ = reference_model("gaitedge", seed=3)  # the weights raw_model("gaitedge") was exported with
    raw = raw_model("gaitedge")
    feeds = sample_feeds("gaitedge", raw)
    scale = GEM_INPUT_PEAK / _clamp_input_peak(raw, feeds)
    state = net.state_dict()
    state["conv3d.0.conv3d.weight"] = state["conv3d.0.conv3d.weight"] * scale
    ckpt = tmp_path / "loud.pt"
    torch.save(state, ckpt)
    stage = dict(frames=6, seed=3, checkpoint=str(ckpt))
    unpatched = OnnxFromModel("gaitedge", patches=[], **stage)(tmp_path / "raw")
    patched = OnnxFromModel("gaitedge", **stage)(tmp_path / "patched")
    assert _overflows(onnx.load(str(unpatched.onnx_path)), feeds)[0].op == "Pow"
    assert not _overflows(onnx.load(str(patched.onnx_path)), feeds)


def _save(model, path):
    onnx.save(model, str(path))
    return path
