"""Re-ID pre-processing (Pillow-exact resize, normalisation, flip) and PGFA's heatmaps / part labels."""

import numpy as np
import pytest

from deploykit.errors import BadInputError
from deploykit.runtime import reid
from deploykit.runtime.imageops import float_to_l, pil_resize

# Pillow 13.0 results for A below (recorded, so the check runs without Pillow).
A = np.array([[0, 10, 20, 30, 40, 250], [5, 15, 25, 35, 45, 200], [50, 60, 70, 80, 90, 100],
              [255, 0, 255, 0, 255, 0]], np.uint8)
A_BILINEAR_3x2 = np.array([[16, 34, 116], [89, 91, 102]], np.uint8)  # resize((3, 4)) then ((3, 2))
A_BICUBIC_6x2 = np.array([[0, 19, 20, 39, 40, 218], [140, 29, 151, 40, 162, 61]], np.uint8)


def test_pil_resize_recorded_values():
    np.testing.assert_array_equal(pil_resize(A, (2, 3), "bilinear"), A_BILINEAR_3x2)
    np.testing.assert_array_equal(pil_resize(A, (2, 6), "bicubic"), A_BICUBIC_6x2)


def test_pil_resize_against_pillow_when_installed():
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for _ in range(40):
        h, w = rng.integers(1, 200, 2)
        oh, ow = rng.integers(1, 300, 2)
        img = rng.integers(0, 256, (h, w, 3), np.uint8)
        for name, f in (("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)):
            # one resize per axis: Pillow <= 12 always ran the horizontal pass first; Pillow 13
            # (python-pillow/Pillow#9549) may start with the vertical one. Two single-axis calls
            # pin the order the upstream models were trained with.
            ref = np.array(Image.fromarray(img).resize((int(ow), int(h)), f).resize((int(ow), int(oh)), f))
            np.testing.assert_array_equal(pil_resize(img, (oh, ow), name), ref)


def test_pil_resize_properties():
    flat = np.full((37, 23, 3), 77, np.uint8)
    for r in ("bilinear", "bicubic"):
        np.testing.assert_array_equal(pil_resize(flat, (256, 128), r), np.full((256, 128, 3), 77))
    np.testing.assert_array_equal(pil_resize(A, A.shape, "bicubic"), A)
    with pytest.raises(BadInputError, match="uint8"):
        pil_resize(A.astype(np.float32), (2, 2))
    np.testing.assert_array_equal(float_to_l(np.array([0.4, 0.6, 254.7, -3, 300, np.nan])), [0, 0, 254, 0, 255, 0])


def test_preprocess_reid_rga_and_pgfa():
    rng = np.random.default_rng(1)
    crop_bgr = rng.integers(0, 256, (180, 70, 3), np.uint8)
    x = reid.preprocess_reid(crop_bgr, reid.ReidConfig.preset("rga"))
    assert x.shape == (1, 3, 256, 128) and x.dtype == np.float32
    rgb = pil_resize(crop_bgr[..., ::-1].copy(), (256, 128), "bilinear")
    np.testing.assert_allclose(x[0, 0], (rgb[..., 0] / 255 - 0.485) / 0.229, rtol=1e-5, atol=1e-6)
    y = reid.preprocess_reid([crop_bgr, crop_bgr[:100]], reid.ReidConfig.preset("pgfa"))
    assert y.shape == (2, 3, 384, 128)
    same = reid.preprocess_reid(crop_bgr[..., ::-1], reid.ReidConfig.preset("rga"), image_color="rgb")
    np.testing.assert_array_equal(same, x)
    man = {"preprocess": {"size_hw": [384, 128], "color": "RGB", "mean": [0.485, 0.456, 0.406],
                          "std": [0.229, 0.224, 0.225], "resize": "PIL bicubic (interpolation=3)"}}
    assert reid.ReidConfig.from_manifest(man) == reid.ReidConfig.preset("pgfa")


def test_average_flip():
    a = np.ones((2, 8), np.float32)
    np.testing.assert_allclose(reid.average_flip(a, 3 * a), 2 * a)
    with pytest.raises(BadInputError, match="differ"):
        reid.average_flip(a, a[:1])


def upstream_heatmaps(people, imgh, imgw):
    """Transcription of PGFA AlphaPose/generate_heatmap.py for one image (Pillow replaced by pil_resize)."""
    p_count = 0
    final_p = None
    for i in range(len(people)):
        p_points = np.array(people[i], dtype=float).reshape(18, 3)
        pp = p_points
        pp[pp[:, 2] <= 0.2] = 0.
        p_points = p_points[p_points[:, 2] > 0.2]
        if p_points.shape[0] > p_count:
            final_p, p_count = pp, p_points.shape[0]
    heatmap = np.zeros((18, imgh, imgw))
    for j in range(18):
        if final_p[j].all() == 0.:
            continue
        w, h = int(final_p[j][0]), int(final_p[j][1])
        variance = imgh * imgw / 1000.
        ys, xs = np.mgrid[0:imgh, 0:imgw]
        heatmap[j] = np.exp(-(((xs - w) * (xs - w) + (ys - h) * (ys - h)) / 2.0 / variance / variance))
    out = np.zeros((18, 24, 8))
    for j in range(18):
        b = float_to_l(heatmap[j] * 255)  # Image.fromarray(float).convert('L'): float32, truncate
        out[j] = pil_resize(b, (24, 8), "bilinear") / 255.
    return out


def test_pgfa_heatmaps_match_the_transcription():
    rng = np.random.default_rng(2)
    for _ in range(5):
        n = rng.integers(1, 4)
        people = np.concatenate([rng.uniform(0, 128, (n, 18, 1)), rng.uniform(0, 256, (n, 18, 1)),
                                 rng.uniform(0, 1, (n, 18, 1))], axis=2)
        people[0, 3, 0] = 0.0  # x exactly 0 -> empty map upstream
        got = reid.pgfa_heatmaps(people, (256, 128))
        ref = upstream_heatmaps(people.copy(), 256, 128)
        np.testing.assert_allclose(got, ref, atol=1e-7)
    assert got.shape == (18, 24, 8) and got.dtype == np.float32
    np.testing.assert_array_equal(reid.pgfa_heatmaps(None, (256, 128)), np.ones((18, 24, 8)))


def test_pgfa_heatmaps_against_pillow_when_installed():
    Image = pytest.importorskip("PIL.Image")
    g = np.exp(-np.random.default_rng(3).uniform(0, 5, (200, 90))) * 255
    l8 = Image.fromarray(g).convert("L")
    np.testing.assert_array_equal(float_to_l(g), np.array(l8))
    ref = np.array(l8.resize((8, 200), Image.BILINEAR).resize((8, 24), Image.BILINEAR))  # horizontal pass first
    np.testing.assert_array_equal(pil_resize(float_to_l(g), (24, 8), "bilinear"), ref)


def upstream_part_label(people, part_num, imgh):
    """Transcription of PGFA utils/part_label.py part_label_generate (file present)."""
    if len(people) == 0:
        return np.ones(part_num)
    p_count = 0
    for i in range(len(people)):
        p_points = np.array(people[i]).reshape(18, 3)
        p_points = p_points[p_points[:, 2] > 0.2]
        count = p_points.shape[0]
        if count >= p_count:
            final_point, p_count = p_points, count
    if final_point.shape[0] < 3:
        return np.ones(part_num)
    label = np.zeros(part_num)
    for j in range(len(final_point)):
        w, h = final_point[j][:2]
        for k in range(part_num):
            if h > (float(k) / part_num) * imgh and h < (float(k + 1.) / part_num) * imgh:
                label[k] = 1
    return label


@pytest.mark.parametrize("parts", [3, 6])
def test_pgfa_part_visibility_matches_the_transcription(parts):
    rng = np.random.default_rng(parts)
    for _ in range(50):
        n = rng.integers(0, 4)
        people = np.concatenate([rng.uniform(0, 128, (n, 18, 1)), rng.uniform(0, 256, (n, 18, 1)) * rng.uniform(0, 1),
                                 rng.uniform(0, 0.45, (n, 18, 1))], axis=2)
        np.testing.assert_array_equal(reid.pgfa_part_visibility(people, 256, parts),
                                      upstream_part_label(people, parts, 256))
    np.testing.assert_array_equal(reid.pgfa_part_visibility(None, 256, 3), np.ones(3))
