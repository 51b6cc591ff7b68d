"""Re-ID checkpoints and export: PGFA's multi-file checkpoints, RGA under a dynamic batch axis."""

import copy
import io
import json

import numpy as np
import pytest
import torch

from deploykit import models
from deploykit.errors import CheckpointError
from deploykit.export import OnnxFromModel
from deploykit.models import checkpoints
from deploykit.models.factory import calibrate_norm_stats, reference_model
from deploykit.models.reid import pgfa
from deploykit.verify import compare


def _save_upstream_pgfa(model, directory, epoch=59):
    """Split our PGFA state dict into the files upstream train.py writes (plain state dicts)."""
    files = pgfa.checkpoint_files(directory, epoch=epoch, part_num=model.part_num)
    sd = model.state_dict()
    for prefix, path in files.items():
        torch.save({k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}, path)
    return files


def _pgfa_out(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    images, heatmaps = torch.randn(2, 3, 384, 128, generator=g), torch.rand(2, 18, 24, 8, generator=g)
    with torch.no_grad():
        return [t.numpy() for t in model(images, heatmaps)]


@pytest.mark.parametrize("part_num", [3, 6])
def test_pgfa_each_upstream_key_list_maps_exactly_onto_our_keys(part_num, upstream_keys_dir):
    ours = [(k, list(v.shape)) for k, v in models.build("pgfa", part_num=part_num).state_dict().items()]
    covered = 0
    for prefix, file in pgfa.key_prefixes(part_num).items():
        upstream = [tuple(e) for e in json.loads((upstream_keys_dir / file).read_text())]
        mine = [(k[len(prefix):], s) for k, s in ours if k.startswith(prefix)]
        assert mine == upstream, f"{prefix} does not map onto {file}"
        covered += len(mine)
    assert covered == len(ours), "some of our keys belong to no upstream file"


def test_pgfa_multi_file_round_trip(tmp_path):
    src, _ = reference_model("pgfa", seed=11)
    files = _save_upstream_pgfa(src, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["net_59.pth", "global_59.pth", "partial0_59.pth", "partial1_59.pth", "partial2_59.pth"])
    dst, weights = reference_model("pgfa", seed=99, checkpoint=files)
    for a, b in zip(_pgfa_out(src), _pgfa_out(dst)):
        np.testing.assert_array_equal(a, b)  # same weights -> bit-identical
    assert weights["source"] == "checkpoint" and weights["load_report"] == "all keys match"
    assert [f["prefix"] for f in weights["files"]] == list(files)
    assert all(len(f["sha256"]) == 64 for f in weights["files"])
    OnnxFromModel("pgfa", checkpoint={p: str(f) for p, f in files.items()}).validate()  # export accepts it


def test_pgfa_missing_and_misshaped_keys_are_named(tmp_path):
    src, _ = reference_model("pgfa", seed=1)
    files = _save_upstream_pgfa(src, tmp_path)
    part2 = torch.load(files["part_heads.2."], weights_only=True)
    del part2["add_block.0.weight"]
    torch.save(part2, files["part_heads.2."])
    with pytest.raises(CheckpointError, match=r"missing: part_heads\.2\.add_block\.0\.weight") as err:
        reference_model("pgfa", checkpoint=files)
    assert "partial2_59.pth" in str(err.value)  # the prefix -> file list names the file

    files = _save_upstream_pgfa(src, tmp_path)
    glob = torch.load(files["global_head."], weights_only=True)
    glob["classifier.0.weight"] = torch.zeros(751, 256)  # a Market-1501 head
    torch.save(glob, files["global_head."])
    with pytest.raises(CheckpointError, match=r"global_head\.classifier\.0\.weight checkpoint \[751, 256\] "
                                              r"vs model \[702, 256\]"):
        reference_model("pgfa", checkpoint=files)


def test_multi_file_duplicate_keys_and_bad_files_are_refused(tmp_path):
    torch.save({"w": torch.zeros(1)}, tmp_path / "a.pth")
    torch.save({"x.w": torch.zeros(1)}, tmp_path / "b.pth")
    with pytest.raises(CheckpointError, match=r"b\.pth gives key x\.w, which .*a\.pth already gave"):
        checkpoints.read_multi({"x.": tmp_path / "a.pth", "": tmp_path / "b.pth"})
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoints.read_multi({"x.": tmp_path / "a.pth", "y.": tmp_path / "missing.pth"})
    with pytest.raises(CheckpointError, match="no checkpoint files"):
        checkpoints.read_multi({})


@pytest.mark.filterwarnings("ignore")  # the exporter's own deprecation/tracer chatter
def test_rga_exports_with_a_dynamic_batch_axis():
    """Upstream's avg_pool2d(x, x.size()[2:]) fails under dynamic axes; our pooling and reshapes do not.

    The weights get data-calibrated BN statistics: with plain random statistics RGA's outputs for two
    different images differ by only ~1e-4 of max|output| (the size of the usual parity gate). Calibrated,
    the outputs depend on the input, but the network also amplifies float32 rounding (PyTorch float32
    itself is ~8e-4 of max|output| away from float64), so ONNX Runtime is held to PyTorch's own float32
    accuracy against a float64 reference instead of the fixed 1e-4 gate.
    """
    import onnxruntime as ort

    model, _ = reference_model("rga", seed=3)
    rng = np.random.default_rng(0)
    calibrate_norm_stats(model, torch.from_numpy(rng.uniform(-2.0, 2.5, (2, 3, 256, 128)).astype(np.float32)))
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (torch.randn(1, 3, 256, 128),), buf, dynamo=False, opset_version=17,
                          input_names=["images"], output_names=["feat_pre_bn", "feat"],
                          dynamic_axes={"images": {0: "batch"}, "feat_pre_bn": {0: "batch"}, "feat": {0: "batch"}})
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[0] == "batch"
    images = rng.uniform(-2.0, 2.5, (2, 3, 256, 128)).astype(np.float32)  # exported at batch 1
    got = sess.run(None, {"images": images})
    with torch.no_grad():
        ref32 = [r.numpy() for r in model(torch.from_numpy(images))]
        ref64 = [r.numpy() for r in copy.deepcopy(model).double()(torch.from_numpy(images).double())]
    for name, g, r32, r64 in zip(("feat_pre_bn", "feat"), got, ref32, ref64):
        assert g.shape == (2, 2048)
        scale = np.abs(r64).max()
        spread = np.abs(r64[0] - r64[1]).max() / scale
        assert spread > 1e-2, f"{name}: outputs barely depend on the input ({spread:.1e}); the check would be void"
        assert compare.cosine(min=0.99999)(r32, g), str(compare.cosine(min=0.99999)(r32, g))
        err_ort, err_torch = np.abs(g - r64).max(), np.abs(r32 - r64).max()
        assert err_ort <= 3 * err_torch + 1e-6 * scale, (
            f"{name}: ONNX Runtime is {err_ort / scale:.2e} of max|ref| from float64, "
            f"PyTorch float32 {err_torch / scale:.2e}")


def test_rga_refuses_other_input_sizes():
    model = models.build("rga")
    with pytest.raises(ValueError, match="256x128"):
        model(torch.zeros(1, 3, 384, 128))


def test_pgfa_refuses_heatmaps_of_another_size():
    model = models.build("pgfa")
    with pytest.raises(ValueError, match=r"heatmaps of \(18, 24, 8\)"):
        model(torch.zeros(1, 3, 384, 128), torch.zeros(1, 18, 48, 4))
