"""OpenGait silhouette pretreatment, cutting, sampling and the SMPLGait / GaitEdge extra inputs."""

import cv2
import numpy as np
import pytest

from deploykit.errors import BadInputError
from deploykit.runtime import gait


def upstream_imgs2pickle(frames, img_size=64):
    """Transcription of OpenGait datasets/pretreatment.py imgs2pickle (per-frame loop)."""
    to_pickle = []
    for img in frames:
        if img.sum() <= 10000:
            continue
        y_sum = img.sum(axis=1)
        y_top = (y_sum != 0).argmax(axis=0)
        y_btm = (y_sum != 0).cumsum(axis=0).argmax(axis=0)
        img = img[y_top: y_btm + 1, :]
        ratio = img.shape[1] / img.shape[0]
        img = cv2.resize(img, (int(img_size * ratio), img_size), interpolation=cv2.INTER_CUBIC)
        x_csum = img.sum(axis=0).cumsum()
        x_center = None
        total = img.sum()  # upstream recomputes img.sum() in the loop; hoisted (same value)
        for idx, csum in enumerate(x_csum):
            if csum > total / 2:
                x_center = idx
                break
        if not x_center:
            continue
        half_width = img_size // 2
        left = x_center - half_width
        right = x_center + half_width
        if left <= 0 or right >= img.shape[1]:
            left += half_width
            right += half_width
            _ = np.zeros((img.shape[0], half_width))
            img = np.concatenate([_, img, _], axis=1)
        to_pickle.append(img[:, left: right].astype('uint8'))
    return np.asarray(to_pickle)


def blob_sequence(rng, t=12, h=240, w=320):
    frames = np.zeros((t, h, w), np.uint8)
    for i in range(t):
        kind = rng.integers(0, 6)
        if kind == 0:
            continue  # empty -> dropped
        y0, x0 = rng.integers(0, h - 30), rng.integers(0, w - 10)
        hh, ww = rng.integers(20, h - y0), rng.integers(3, min(120, w - x0))
        if kind == 1:  # thin: wider than tall after cropping, or centred at the left edge
            frames[i, y0:y0 + 5, 0:rng.integers(60, 200)] = 255
            continue
        if kind == 2:  # small: sum <= 10000
            frames[i, y0:y0 + 6, x0:x0 + 6] = 255
            continue
        yy, xx = np.mgrid[0:hh, 0:ww]
        ell = ((yy - hh / 2) / (hh / 2)) ** 2 + ((xx - ww / 2) / (ww / 2)) ** 2 <= 1.0
        frames[i, y0:y0 + hh, x0:x0 + ww] = np.where(ell, 255, rng.integers(0, 2) * 128)
    return frames


@pytest.mark.parametrize("img_size", [64, 128])
def test_pretreatment_equals_the_upstream_transcription(img_size):
    rng = np.random.default_rng(img_size)
    for _ in range(6):
        seq = blob_sequence(rng)
        ref = upstream_imgs2pickle(seq, img_size)
        got = gait.pretreat_silhouettes(seq, img_size)
        assert got.frames.shape == (len(ref), img_size, img_size)
        np.testing.assert_array_equal(got.frames, ref.reshape(got.frames.shape))
        assert len(got.kept) + len(got.dropped) == len(seq)


def test_cutting_and_scaling():
    frames = np.full((3, 64, 64), 255, np.uint8)
    x = gait.cut_and_scale(frames)
    assert x.shape == (3, 64, 44) and x.dtype == np.float32 and float(x.max()) == 1.0
    assert gait.cut_and_scale(np.zeros((2, 128, 128), np.uint8)).shape == (2, 128, 88)  # GLN: 20 px each side
    with pytest.raises(BadInputError, match="leaves nothing"):
        gait.cut_and_scale(frames, cutting=40)


def test_folder_input_sorted_without_gei(tmp_path):
    rng = np.random.default_rng(0)
    seq = blob_sequence(rng, t=6)
    seq[:, 50:200, 100:150] = 255  # every frame valid
    for i, fr in enumerate(seq):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), fr)
    cv2.imwrite(str(tmp_path / "gei.png"), np.full((240, 320), 255, np.uint8))
    from_dir = gait.pretreat_silhouettes(tmp_path)
    from_arr = gait.pretreat_silhouettes(seq)
    np.testing.assert_array_equal(from_dir.frames, from_arr.frames)
    assert len(from_dir) == 6
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="no .png"):
        gait.pretreat_silhouettes(tmp_path / "empty")
    with pytest.raises(BadInputError, match="does not exist"):
        gait.pretreat_silhouettes(tmp_path / "missing")


def test_silhouette_clip_uses_the_manifest_record_and_fits_frames():
    seq = np.zeros((10, 128, 96), np.uint8)
    seq[:, 10:120, 30:60] = 255
    seq[3] = 0
    clip, pt = gait.silhouette_clip(seq, {"img_size": 64, "cutting": 10, "divisor": 255.0}, frames=30)
    assert clip.shape == (1, 30, 64, 44) and clip.dtype == np.float32
    assert 3 in pt.dropped and 3 not in pt.kept.tolist()
    np.testing.assert_array_equal(pt.kept[:9], [0, 1, 2, 4, 5, 6, 7, 8, 9])
    clip2, _ = gait.silhouette_clip(seq, None, frames=4, policy="uniform")
    assert clip2.shape == (1, 4, 64, 44)
    clip3, pt3 = gait.silhouette_clip(seq, None, limit=5)
    assert clip3.shape == (1, 5, 64, 44) and pt3.kept.tolist() == [0, 1, 2, 4, 5]
    with pytest.raises(BadInputError, match="every frame was dropped"):
        gait.silhouette_clip(np.zeros((4, 64, 64), np.uint8))


def test_sampling_helpers():
    np.testing.assert_array_equal(gait.sample_frames(5), np.arange(5))
    np.testing.assert_array_equal(gait.sample_frames(800, limit=720), np.arange(720))
    np.testing.assert_array_equal(gait.fit_frames(3, 7), [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(gait.fit_frames(10, 4, "first"), [0, 1, 2, 3])
    np.testing.assert_array_equal(gait.fit_frames(10, 4, "uniform"), [0, 2, 5, 7])
    with pytest.raises(BadInputError, match="no frames"):
        gait.fit_frames(0, 4)


def test_value_range_and_colour_frames():
    m = np.zeros((100, 80), bool)
    m[10:90, 30:50] = True
    a = gait.pretreat_silhouettes([m])
    b = gait.pretreat_silhouettes([m.astype(np.float32)], value_range=1)
    c = gait.pretreat_silhouettes([np.repeat(m[..., None], 3, 2).astype(np.uint8) * 255])
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.frames, c.frames)
    with pytest.raises(BadInputError, match="value_range=1"):
        gait.pretreat_silhouettes([m.astype(np.float32) * 300])


def test_smplgait_inputs_align_with_kept_frames():
    seq = np.zeros((6, 128, 96), np.uint8)
    seq[:, 10:120, 30:60] = 255
    seq[2] = 0
    clip, pt = gait.silhouette_clip(seq)
    smpl = np.arange(6 * 85, dtype=np.float32).reshape(6, 85)
    feeds = gait.smplgait_inputs(clip, smpl, kept=pt.kept)
    assert feeds["sils"].shape == (1, 5, 64, 44) and feeds["smpls"].shape == (1, 5, 85)
    np.testing.assert_array_equal(feeds["smpls"][0, :, 0], smpl[[0, 1, 3, 4, 5], 0])
    with pytest.raises(BadInputError, match="kept="):
        gait.smplgait_inputs(clip, smpl)
    with pytest.raises(BadInputError, match=r"\[T, 85\]"):
        gait.smplgait_inputs(clip, smpl[:, :80])


def test_gaitedge_inputs():
    rng = np.random.default_rng(0)
    rgbs = rng.integers(0, 256, (5, 128, 128, 3)).astype(np.uint8)
    sils = (rng.uniform(size=(5, 128, 128)) > 0.5).astype(np.uint8) * 255
    boxes = np.array([[10, 10, 60, 110]] * 5, float)
    feeds = gait.gaitedge_inputs(rgbs, sils, boxes=boxes)
    assert feeds["rgbs"].shape == (1, 5, 3, 128, 128) and feeds["sils"].shape == (1, 5, 128, 128)
    np.testing.assert_allclose(feeds["ratios"], np.full((1, 5), 0.5))
    mean = np.array([0.485, 0.456, 0.406]) * 255
    std = np.array([0.229, 0.224, 0.225]) * 255
    np.testing.assert_allclose(feeds["rgbs"][0, 1, :, 3, 4], (rgbs[1, 3, 4] - mean) / std, rtol=1e-5)
    assert set(np.unique(feeds["sils"])) <= {0.0, 1.0}
    with pytest.raises(BadInputError, match="ratios"):
        gait.gaitedge_inputs(rgbs, sils)
    short = gait.gaitedge_inputs(rgbs, sils, ratios=np.full(5, 0.4), limit=3)
    assert short["rgbs"].shape[1] == 3


def test_upstream_drop_rules():
    frames = np.zeros((3, 100, 320), np.uint8)
    frames[0, 20:80, 0] = 255  # mass at column 0 -> x_center 0 -> upstream's `if not x_center` drops it
    frames[1, 20:80, 100:102] = 255  # sum 30600 > 10000, kept
    frames[2, 20:40, 100:101] = 255  # sum 5100 <= 10000, dropped
    got = gait.pretreat_silhouettes(frames)
    assert got.kept.tolist() == [1] and set(got.dropped) == {0, 2}
    assert len(upstream_imgs2pickle(frames)) == 1
    thin = np.zeros((1, 400, 400), np.uint8)
    thin[:, 0:400, 200] = 255  # 1 px wide, 400 tall: resizes to width int(64 / 400) = 0
    assert len(gait.pretreat_silhouettes(thin)) == 0  # upstream cv2.resize would raise here
