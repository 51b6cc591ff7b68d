"""deploykit.synth: deterministic, torch-free generators with the shapes and ground truth they promise."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from conftest import BLOCK_TORCH
from deploykit.errors import BadInputError
from deploykit.synth import heatmap_targets, pose_figures, reid_persons, walkers


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def test_walkers_shapes_labels_and_determinism():
    sils, ids, conds, views = walkers(3, 4, 8, seed=5)
    assert sils.shape == (12, 8, 64, 44) and sils.dtype == np.float32
    assert 0.0 <= sils.min() and sils.max() <= 1.0 and sils.mean() > 0.05  # a figure, not an empty frame
    assert ids.dtype == np.int64 and ids.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert conds.tolist()[:4] == ["nm", "bg", "cl", "nm"]
    assert views.dtype == np.int64 and set(views.tolist()) <= {36, 54, 72, 90, 108, 126, 144}
    assert _digest(sils, ids) == _digest(*walkers(3, 4, 8, seed=5)[:2])
    assert _digest(sils) != _digest(walkers(3, 4, 8, seed=6)[0])


def test_walkers_identity_is_in_the_clips():
    # the same walker's two nm sequences are closer (mean frame) than two different walkers' are
    sils, ids, _, _ = walkers(6, 4, 30, seed=0, conditions=("nm",), views=(90,))
    m = sils.mean(1).reshape(len(ids), -1)
    d = np.linalg.norm(m[:, None] - m[None], axis=-1)
    same = (ids[:, None] == ids[None]) & ~np.eye(len(ids), dtype=bool)
    assert d[same].mean() < 0.7 * d[ids[:, None] != ids[None]].mean()


def test_walkers_gln_size_and_bad_input():
    assert walkers(1, 1, 2, seed=0, size=(128, 88))[0].shape == (1, 2, 128, 88)
    with pytest.raises(BadInputError, match="conditions"):
        walkers(1, 1, 2, seed=0, conditions=("run",))
    with pytest.raises(BadInputError, match="views"):
        walkers(1, 1, 2, seed=0, views=())
    with pytest.raises(BadInputError, match=">= 1"):
        walkers(0, 1, 2, seed=0)


def test_pose_figures_keypoints_in_input_pixels():
    images, kps, boxes = pose_figures(4, seed=3, size=(128, 96))
    assert images.shape == (4, 3, 128, 96) and images.dtype == np.float32
    assert kps.shape == (4, 17, 2) and boxes.shape == (4, 4)
    # the box (keypoints + margin) is cropped x1.25, so every joint lies well inside the input
    assert (kps[..., 0] > 0).all() and (kps[..., 0] < 96).all()
    assert (kps[..., 1] > 0).all() and (kps[..., 1] < 128).all()
    # a frontal figure: left shoulder/hip (COCO 5, 11) on the image's right of the right ones (6, 12)
    assert (kps[:, 5, 0] > kps[:, 6, 0]).all() and (kps[:, 11, 0] > kps[:, 12, 0]).all()
    assert _digest(images, kps) == _digest(*pose_figures(4, seed=3, size=(128, 96))[:2])


def test_pose_figures_follow_the_manifest_record():
    pre = {"size_hw": [64, 48], "color": "BGR", "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    images, kps, _ = pose_figures(2, seed=0, preprocess=pre)
    assert images.shape == (2, 3, 64, 48) and (kps[..., 0] < 48).all()


def test_heatmap_targets_peak_at_the_joint():
    kp = np.array([[[20.0, 36.0]] * 17], np.float32)  # input pixels, stride 4 -> heatmap (5, 9)
    hm = heatmap_targets(kp, (64, 48), (16, 12))
    assert hm.shape == (1, 17, 16, 12)
    assert np.unravel_index(hm[0, 0].argmax(), (16, 12)) == (9, 5) and hm[0, 0].max() == pytest.approx(1.0)


def test_reid_persons_ids_cams_and_determinism():
    images, ids, cams = reid_persons(3, 4, seed=2, cams=2)
    assert images.shape == (12, 3, 256, 128) and images.dtype == np.float32
    assert ids.tolist() == [0] * 4 + [1] * 4 + [2] * 4 and cams.tolist() == [0, 1] * 6
    assert _digest(images) == _digest(reid_persons(3, 4, seed=2, cams=2)[0])
    assert _digest(images) != _digest(reid_persons(3, 4, seed=3, cams=2)[0])


def test_generators_run_without_torch():
    code = BLOCK_TORCH + """
from deploykit.synth import walkers, pose_figures, reid_persons
walkers(1, 1, 2, seed=0); pose_figures(1, seed=0); reid_persons(1, 1, seed=0)
print("ok", "torch" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok False")
