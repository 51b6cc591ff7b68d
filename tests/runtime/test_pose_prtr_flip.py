"""PRTR decoding (softmax, Hungarian matching, flip) and heatmap flip test."""

import itertools

import numpy as np
import pytest

from deploykit.errors import BadInputError
from deploykit.runtime.pose import (COCO_FLIP_PAIRS, TopDownConfig, coco17_to_openpose18, crop_persons,
                                    decode_heatmaps, decode_prtr, flip_average, flip_back, flip_images)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_prtr_matching_is_the_optimal_one_to_one_assignment():
    rng = np.random.default_rng(0)
    j, q = 4, 6
    for _ in range(20):
        logits = rng.normal(0, 3, (1, q, j + 1))
        coords = rng.uniform(0, 1, (1, q, 2))
        xy, s = decode_prtr(logits, coords, (384, 288))
        prob = softmax(logits[0, :, :-1])
        best = max(itertools.permutations(range(q), j), key=lambda perm: sum(prob[perm[k], k] for k in range(j)))
        np.testing.assert_allclose(s[0], [prob[best[k], k] for k in range(j)])
        np.testing.assert_allclose(xy[0], coords[0, list(best)] * [288, 384])


def test_prtr_background_logit_option_and_flip():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (2, 100, 18))
    coords = rng.uniform(0, 1, (2, 100, 2))
    a, sa = decode_prtr(logits, coords, (384, 288))
    b, sb = decode_prtr(logits, coords, (384, 288), include_bg_logit=True)
    assert (sb <= sa + 1e-12).all()  # background mass removed after the softmax
    f, sf = decode_prtr(logits, coords, (384, 288), flipped=True)
    # flipped: x -> 1 - x and left/right swapped
    for l, r in COCO_FLIP_PAIRS:
        np.testing.assert_allclose(f[:, l, 0], (1 - a[:, r, 0] / 288) * 288)
        np.testing.assert_allclose(f[:, l, 1], a[:, r, 1])
        np.testing.assert_allclose(sf[:, l], sa[:, r])
    np.testing.assert_allclose(f[:, 0, 0], 288 - a[:, 0, 0])


def test_prtr_bad_inputs():
    with pytest.raises(BadInputError, match="one-to-one"):
        decode_prtr(np.zeros((1, 5, 18)), np.zeros((1, 5, 2)), (384, 288))
    with pytest.raises(BadInputError, match="coords has shape"):
        decode_prtr(np.zeros((1, 100, 18)), np.zeros((1, 99, 2)), (384, 288))
    with pytest.raises(BadInputError, match="NaN"):
        decode_prtr(np.full((1, 100, 18), np.nan), np.zeros((1, 100, 2)), (384, 288))


def test_prtr_coordinates_map_back_through_the_crop():
    cfg = TopDownConfig.preset("prtr_resnet")
    crops = crop_persons(np.zeros((480, 640, 3), np.uint8), [[100, 50, 200, 350]], cfg)
    xy = np.array([[[144.0, 192.0]]])  # input centre -> box centre
    np.testing.assert_allclose(crops.to_image(xy, from_size=cfg.input_size)[0, 0], [150, 200], atol=1e-3)


def test_flip_back_mirrors_swaps_and_shifts():
    hm = np.zeros((1, 17, 8, 10))
    hm[0, 5, 3, 2] = 1.0  # left shoulder at x = 2
    hm[0, 0, 4, 7] = 1.0  # nose at x = 7
    out = flip_back(hm, shift=False)
    assert out[0, 6, 3, 10 - 1 - 2] == 1.0 and out[0, 5].sum() == 0  # now the right shoulder, mirrored
    assert out[0, 0, 4, 2] == 1.0
    shifted = flip_back(hm, shift=True)
    np.testing.assert_array_equal(shifted[..., 1:], out[..., :-1])
    np.testing.assert_array_equal(shifted[..., 0], out[..., 0])
    avg = flip_average(hm, hm, shift=False)
    np.testing.assert_allclose(avg, (hm + out) / 2)


def test_flip_average_of_a_mirrored_twin_recovers_the_peak():
    rng = np.random.default_rng(2)
    ys, xs = np.mgrid[0:64, 0:48]
    peaks = rng.uniform(8, 40, (17, 2))
    hm = np.exp(-((xs - peaks[:, 0, None, None]) ** 2 + (ys - peaks[:, 1, None, None]) ** 2) / 8)[None]
    twin = flip_back(hm, shift=False)  # what a perfectly mirror-consistent model returns for the flipped image
    avg = flip_average(hm, twin, shift=False)
    np.testing.assert_allclose(avg, hm, atol=1e-12)
    c1, _ = decode_heatmaps(hm, "dark")
    c2, _ = decode_heatmaps(avg, "dark")
    np.testing.assert_allclose(c1, c2)


def test_flip_images_and_pairs_validation():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(flip_images(x)[..., 0], x[..., -1])
    with pytest.raises(BadInputError, match="outside the 5 joints"):
        flip_back(np.zeros((1, 5, 4, 4)))


def test_openpose18_layout():
    kp = np.arange(34, dtype=float).reshape(17, 2)
    sc = np.linspace(0.1, 0.9, 17)
    op = coco17_to_openpose18(kp, sc)
    assert op.shape == (18, 3)
    np.testing.assert_allclose(op[1, :2], (kp[5] + kp[6]) / 2)  # neck
    np.testing.assert_allclose(op[1, 2], (sc[5] + sc[6]) / 2)
    np.testing.assert_allclose(op[2, :2], kp[6])  # right shoulder second
    np.testing.assert_allclose(op[17, :2], kp[3])  # left ear last


def test_decode_outputs_heatmaps_with_flip_and_prtr():
    from deploykit.runtime.pose import decode_outputs

    cfg = TopDownConfig.preset("hrnet")
    crops = crop_persons(np.zeros((480, 640, 3), np.uint8), [[100, 50, 200, 350], [300, 60, 360, 200]], cfg)
    ys, xs = np.mgrid[0:64, 0:48]
    peaks = np.random.default_rng(3).uniform(8, 40, (2, 17, 2))
    hm = np.exp(-((xs - peaks[..., 0, None, None]) ** 2 + (ys - peaks[..., 1, None, None]) ** 2) / 8)
    xy, s = decode_outputs({"heatmaps": hm}, crops)
    ref, _ = decode_heatmaps(hm, "quarter")
    np.testing.assert_allclose(xy, crops.to_image(ref))
    twin = flip_back(hm, shift=False)  # a mirror-consistent "flipped" output
    xy2, _ = decode_outputs({"heatmaps": twin}, crops, flipped_outputs={"heatmaps": hm}, method="dark")
    assert xy2.shape == (2, 17, 2)
    with pytest.raises(BadInputError, match="3 heatmaps for 2 crops"):
        decode_outputs({"heatmaps": np.zeros((3, 17, 64, 48))}, crops)
    pcfg = TopDownConfig.preset("prtr_resnet")
    pcrops = crop_persons(np.zeros((480, 640, 3), np.uint8), [[100, 50, 200, 350]], pcfg)
    rng = np.random.default_rng(4)
    out = {"logits": rng.normal(size=(1, 100, 18)), "coords": rng.uniform(size=(1, 100, 2))}
    kp, sc = decode_outputs(out, pcrops)
    raw, raw_s = decode_prtr(out["logits"], out["coords"], pcfg.input_size)
    np.testing.assert_allclose(kp, pcrops.to_image(raw, from_size=pcfg.input_size))
    kpf, scf = decode_outputs(out, pcrops, flipped_outputs=out)
    rawf, rawf_s = decode_prtr(out["logits"], out["coords"], pcfg.input_size, flipped=True)
    np.testing.assert_allclose(kpf, pcrops.to_image((raw + rawf) / 2, from_size=pcfg.input_size))
    np.testing.assert_allclose(scf, (raw_s + rawf_s) / 2)


def test_configs_read_every_zoo_manifest_record():
    """The runtime readers accept the preprocess/postprocess records the model zoo writes."""
    pytest.importorskip("torch")
    from deploykit import models
    from deploykit.runtime.reid import ReidConfig

    seen = set()
    for name in models.names():
        spec = models.spec(name)
        rec = {"preprocess": dict(spec.preprocess), "postprocess": dict(spec.postprocess)}
        if spec.family == "pose":
            cfg = TopDownConfig.from_manifest(rec)
            seen.add(cfg.decoder)
            assert cfg.input_size == tuple(spec.preprocess["size_hw"])
        elif spec.family == "reid":
            assert ReidConfig.from_manifest(rec).size == tuple(spec.preprocess["size_hw"])
    assert {"quarter", "alphapose_v0", "prtr"} <= seen
