"""Pose checkpoints and graphs: PRTR's key rename and wrappers round-trip, AlphaPose's 2018 files load,
FastPose keeps PixelShuffle as DepthToSpace, PRTR's position encoding is a constant."""

import io

import numpy as np
import onnx
import pytest
import torch

from deploykit import models
from deploykit.errors import CheckpointError
from deploykit.export import OnnxFromModel
from deploykit.models.factory import reference_model
from deploykit.models.pose.prtr import PRTR, sine_position_encoding


def _old_names(sd):
    """PRTR's released files name the backbone `backbone.body.*` (before the Joiner)."""
    return {k.replace("backbone.0.body.", "backbone.body.", 1): v for k, v in sd.items()}


def _outputs(model, x):
    with torch.no_grad():
        return [t.numpy() for t in model(x)]


@pytest.fixture(scope="module")
def prtr_src():
    # a 64x64 input keeps the forwards cheap (eager mode makes the encoding for its 2x2 map)
    src, _ = reference_model("prtr-res50", seed=7)
    x = torch.rand(1, 3, 64, 64) * 4 - 2
    return src, x, _outputs(src, x)


@pytest.mark.parametrize("layout", ["best_state_dict_old_names", "plain", "resume_with_stale_state_dict"])
def test_prtr_checkpoint_round_trip(tmp_path, prtr_src, layout):
    src, x, ref = prtr_src
    sd = src.state_dict()
    if layout == "best_state_dict_old_names":
        obj = {"best_state_dict": _old_names(sd), "epoch": torch.tensor(3)}
    elif layout == "plain":
        obj = sd
    else:  # HRNet/PRTR tools/train.py resume file: last epoch under state_dict (DataParallel), best separately
        stale = {f"module.{k}": torch.zeros_like(v) for k, v in sd.items()}
        obj = {"state_dict": stale, "best_state_dict": _old_names(sd), "optimizer": {}}
    path = tmp_path / "prtr.pth"
    torch.save(obj, path)
    dst, weights = reference_model("prtr-res50", seed=99, checkpoint=path)
    assert "backbone.1.pos" not in dst.state_dict()  # the constant encoding is not a checkpoint key
    for a, b in zip(ref, _outputs(dst, x)):
        np.testing.assert_array_equal(a, b)
    assert weights["load_report"] == "all keys match"


def test_prtr_frozen_bn_counters_are_dropped(tmp_path, prtr_src):
    src, x, ref = prtr_src
    sd = _old_names(src.state_dict())
    sd["backbone.body.bn1.num_batches_tracked"] = torch.tensor(0)  # torchvision-style dump of the backbone
    torch.save(sd, tmp_path / "prtr.pth")
    dst, _ = reference_model("prtr-res50", checkpoint=tmp_path / "prtr.pth")
    np.testing.assert_array_equal(ref[0], _outputs(dst, x)[0])


def test_prtr_missing_key_is_named_after_the_rename(tmp_path, prtr_src):
    sd = _old_names(prtr_src[0].state_dict())
    del sd["backbone.body.layer4.2.conv3.weight"]
    torch.save({"best_state_dict": sd}, tmp_path / "prtr.pth")
    with pytest.raises(CheckpointError, match=r"missing: backbone\.0\.body\.layer4\.2\.conv3\.weight"):
        reference_model("prtr-res50", checkpoint=tmp_path / "prtr.pth")


def test_prtr_hrnet_adapter_keeps_batchnorm_counters():
    spec = models.spec("prtr-hrnet-w32")
    sd = {"backbone.body.bn1.num_batches_tracked": torch.tensor(1), "query_embed.weight": torch.zeros(1)}
    assert set(spec.adapt_checkpoint(sd)) == {"backbone.0.body.bn1.num_batches_tracked", "query_embed.weight"}


def test_fastpose_2018_file_without_batch_counters_loads(tmp_path):
    src, _ = reference_model("fastpose-res50", seed=5)
    sd = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "duc_se.pth")  # AlphaPose saves a plain state dict, no prefix
    dst, _ = reference_model("fastpose-res50", checkpoint=tmp_path / "duc_se.pth")
    x = torch.rand(1, 3, 64, 64) - 0.45
    with torch.no_grad():
        np.testing.assert_array_equal(src(x).numpy(), dst(x).numpy())


def test_fastpose_onnx_keeps_pixel_shuffle_as_depth_to_space(tmp_path):
    # fastpose's own head (PixelShuffle + 2 DUC + 33-channel conv_out, first 17 kept) at 320x256; the
    # SE-ResNet-50 trunk instead of 101 only keeps this test fast (the trunk has no PixelShuffle).
    res = OnnxFromModel("fastpose", overrides={"num_layers": 50})(tmp_path)
    graph = onnx.load(str(res.onnx_path)).graph
    d2s = [n for n in graph.node if n.op_type == "DepthToSpace"]
    assert len(d2s) == 3
    for node in d2s:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["blocksize"] == 2 and attrs.get("mode", b"DCR") == b"CRD"
    assert res.manifest["outputs"][0]["shape"] == [1, 17, 80, 64]
    assert res.manifest["preprocess"]["std"] is None  # AlphaPose: mean only


def test_prtr_position_encoding_is_a_constant():
    model = PRTR(image_size=(64, 64), enc_layers=1, dec_layers=1).eval()
    assert not any(k.endswith("pos") for k in model.state_dict())
    torch.testing.assert_close(model.backbone[1].pos, sine_position_encoding(2, 2), rtol=0, atol=0)
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (torch.rand(1, 3, 64, 64),), buf, dynamo=False, opset_version=17,
                          input_names=["images"], output_names=["logits", "coords"])
    ops = {n.op_type for n in onnx.load_from_string(buf.getvalue()).graph.node}
    assert not ops & {"CumSum", "Sin", "Cos", "Range"}, ops
    with pytest.raises(Exception, match="image_size"):
        torch.onnx.export(model, (torch.rand(1, 3, 96, 64),), io.BytesIO(), dynamo=False, opset_version=17)
