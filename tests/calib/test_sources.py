"""Calibration sources: each applies the runtime's preprocessing, batches, and stops at the bound."""

import warnings

import cv2
import numpy as np
import pytest

from deploykit.calib import sources
from deploykit.synth.draw import walking_silhouettes
from deploykit.errors import BadInputError

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def gait_manifest(batch=2, frames=4):
    return {"model": {"name": "g", "family": "gait"},
            "inputs": [{"name": "sils", "shape": [batch, frames, 64, 44], "dtype": "float32"}],
            "preprocess": {"kind": "silhouette", "img_size": 64, "cutting": 10, "divisor": 255.0}}


def image_manifest(family="reid", hw=(256, 128), batch=1):
    pre = {"kind": "image", "layout": "NCHW", "size_hw": list(hw), "color": "RGB", "scale": 1 / 255,
           "resize": "PIL bilinear resize", **IMAGENET}
    if family == "pose":
        pre["crop"] = {"method": "center_scale_affine", "scale_mult": 1.25, "pixel_std": 200.0}
    return {"model": {"name": "m", "family": family},
            "inputs": [{"name": "images", "shape": [batch, 3, *hw], "dtype": "float32"}], "preprocess": pre}


def _write_images(folder, n, hw=(120, 60)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), rng.integers(0, 255, (*hw, 3), dtype=np.uint8))
    return folder


@pytest.mark.parametrize("family, hw", [("reid", (256, 128)), ("pose", (256, 192))])
def test_image_folder(tmp_path, family, hw):
    man = image_manifest(family, hw, batch=2)
    src = sources.open_source(_write_images(tmp_path / "imgs", 5), man)
    assert isinstance(src, sources.ImageFolderSource)
    got = list(sources.batches(src, samples=4, progress=False))
    assert len(got) == 2 and got[0]["images"].shape == (2, 3, *hw) and got[0]["images"].dtype == np.float32
    x = got[0]["images"]
    assert -2.2 < x.min() < 0 < x.max() < 2.7  # ImageNet-normalised values


def test_image_folder_matches_the_runtime_reid_preprocessing(tmp_path):
    from deploykit.runtime.reid import ReidConfig, preprocess_reid

    folder = _write_images(tmp_path / "imgs", 1)
    man = image_manifest("reid")
    got = next(sources.batches(sources.open_source(folder, man), 1, progress=False))["images"]
    want = preprocess_reid(cv2.imread(str(folder / "000.png")), ReidConfig.from_manifest(man))
    np.testing.assert_array_equal(got, want)


def test_video_source(tmp_path):
    path = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 128))
    for i in range(12):
        w.write(np.full((128, 96, 3), i * 20, np.uint8))
    w.release()
    src = sources.open_source(path, image_manifest("reid"))
    with pytest.warns(UserWarning, match="ran out after 3"):
        got = list(sources.batches(src, samples=10, progress=False))
    assert len(got) == 3  # frames 0, 5, 10 (every 5th)


def test_silhouette_sequence_folders(tmp_path):
    rng = np.random.default_rng(0)
    for seq in ("001/nm-01/090", "002/bg-01/000"):
        d = tmp_path / "sils" / seq
        d.mkdir(parents=True)
        for t, frame in enumerate(walking_silhouettes(rng, 9)):
            cv2.imwrite(str(d / f"{t:03d}.png"), frame)
    src = sources.open_source(tmp_path / "sils", gait_manifest(batch=2, frames=4))
    assert isinstance(src, sources.SilhouetteSequenceSource) and len(src.sequences) == 2
    got = list(sources.batches(src, samples=4, progress=False))  # 2 clips of 4 frames per sequence
    assert len(got) == 2 and got[0]["sils"].shape == (2, 4, 64, 44)
    x = got[0]["sils"]
    assert x.min() >= 0 and x.max() <= 1 and x.mean() > 0.05


def test_npy_and_npz(tmp_path):
    man = gait_manifest(batch=1, frames=4)
    arr = np.random.default_rng(0).uniform(0, 1, (3, 4, 64, 44)).astype(np.float32)
    np.save(tmp_path / "a.npy", arr)
    with pytest.warns(UserWarning, match="ran out after 3"):
        got = list(sources.batches(sources.open_source(tmp_path / "a.npy", man), 10, progress=False))
    assert len(got) == 3 and np.array_equal(got[1]["sils"][0], arr[1])
    np.savez(tmp_path / "b.npz", sils=arr)
    assert len(list(sources.batches(sources.open_source(tmp_path / "b.npz", man), 2, progress=False))) == 2
    np.save(tmp_path / "bad.npy", arr[:, :, :32])
    with pytest.raises(BadInputError, match=r"expected \[4, 64, 44\]"):
        list(sources.batches(sources.open_source(tmp_path / "bad.npy", man), 2, progress=False))
    np.savez(tmp_path / "c.npz", other=arr)
    with pytest.raises(BadInputError, match="missing"):
        sources.open_source(tmp_path / "c.npz", man)


@pytest.mark.parametrize("man", [gait_manifest(), image_manifest("reid"), image_manifest("pose", (256, 192))])
def test_synthetic_warns_is_seeded_and_bounded(man):
    with pytest.warns(sources.SyntheticCalibrationWarning):
        a = list(sources.batches(sources.open_source(None, man, seed=3), 5, progress=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = list(sources.batches(sources.open_source("synthetic", man, seed=3), 5, progress=False))
        c = list(sources.batches(sources.open_source(None, man, seed=4), 5, progress=False))
    batch = man["inputs"][0]["shape"][0]
    assert len(a) == max(1, 5 // batch)
    name = man["inputs"][0]["name"]
    assert np.array_equal(a[0][name], b[0][name]) and not np.array_equal(a[0][name], c[0][name])


def test_bad_paths_and_counts(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        sources.open_source(tmp_path / "nope", image_manifest())
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="no .jpg"):
        sources.open_source(tmp_path / "empty", image_manifest())
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(BadInputError, match="cannot tell"):
        sources.open_source(tmp_path / "x.txt", image_manifest())
    with pytest.raises(BadInputError, match="--calib-samples"):
        list(sources.batches(sources.SyntheticSource(image_manifest(), warn=False), 0, progress=False))
    with pytest.raises(BadInputError, match="silhouette"):
        sources.ImageFolderSource(_write_images(tmp_path / "i", 1), gait_manifest())
