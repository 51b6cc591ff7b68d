"""Heatmap decoding and the crop geometry, on synthetic Gaussian heatmaps with known sub-pixel peaks.

`python tests/runtime/test_pose_decode.py` prints the figures recorded in benchmarks/decoding.md.
"""

import numpy as np
import pytest

from deploykit.errors import BadInputError
from deploykit.runtime import pose
from deploykit.runtime.pose import TopDownConfig, crop_persons, decode_heatmaps, get_affine_transform

SIGMA = 2.0
HM_H, HM_W = 64, 48
QUARTER_TOL = 0.35  # per axis; the quarter offset's own bound is 0.25 per axis (0.354 Euclidean)
DARK_TOL = 0.05


def gaussian_maps(peaks: np.ndarray, h: int = HM_H, w: int = HM_W, sigma: float = SIGMA) -> np.ndarray:
    """`[N, 1, h, w]` unnormalised Gaussians (max 1) centred at the (x, y) `peaks` `[N, 2]`."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    d2 = (xs[None] - peaks[:, 0, None, None]) ** 2 + (ys[None] - peaks[:, 1, None, None]) ** 2
    return np.exp(-d2 / (2 * sigma * sigma))[:, None]


def clean_peaks(n: int, seed: int, margin: float = 6.0, h: int = HM_H, w: int = HM_W) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(margin, w - 1 - margin, n), rng.uniform(margin, h - 1 - margin, n)], axis=1)


def decode_errors(method: str, n: int = 1000, seed: int = 0, noise: float = 0.0) -> dict:
    peaks = clean_peaks(n, seed)
    maps = gaussian_maps(peaks)
    if noise:
        maps = maps + np.random.default_rng(seed + 1).normal(0, noise, maps.shape)
    coords, scores = decode_heatmaps(maps, method)
    err = coords[:, 0] - peaks
    eu = np.linalg.norm(err, axis=1)
    return {"max_axis": float(np.abs(err).max()), "max_euclid": float(eu.max()), "mean_euclid": float(eu.mean()),
            "p99_euclid": float(np.percentile(eu, 99)), "min_score": float(scores.min())}


@pytest.mark.parametrize("method, tol", [("quarter", QUARTER_TOL), ("dark", DARK_TOL)])
def test_decoding_accuracy_on_clean_gaussians(method, tol):
    e = decode_errors(method)
    print(method, e)
    assert e["max_axis"] <= tol
    if method == "quarter":
        assert e["max_euclid"] <= np.sqrt(2) * 0.25 + 1e-9  # the method's exact bound
        assert e["max_axis"] <= 0.25 + 1e-9
    assert e["min_score"] > 0.88  # the sampled max of a sigma-2 Gaussian is >= exp(-1/8)


def test_integer_peaks_are_exact_for_argmax_and_dark():
    peaks = np.array([[10.0, 20.0], [30.0, 40.0]])
    hm = gaussian_maps(peaks)
    for method in ("argmax", "dark"):
        c, s = decode_heatmaps(hm, method)
        np.testing.assert_allclose(c[:, 0], peaks, atol=1e-6)
        np.testing.assert_allclose(s[:, 0], 1.0)


def test_quarter_moves_toward_the_higher_neighbour_only_inside_the_border():
    hm = np.zeros((1, 3, 10, 10))
    hm[0, 0, 5, 5], hm[0, 0, 5, 6], hm[0, 0, 6, 5] = 1.0, 0.5, 0.5  # right and down higher than left/up
    hm[0, 1, 1, 5], hm[0, 1, 1, 6] = 1.0, 0.5  # y = 1: outside `1 < y` -> no offset (HRNet, current AlphaPose)
    hm[0, 2] = -1.0  # max <= 0 -> (0, 0), score -1
    c, s = decode_heatmaps(hm, "quarter")
    np.testing.assert_allclose(c[0, 0], [5.25, 5.25])
    np.testing.assert_allclose(c[0, 1], [5.0, 1.0])
    np.testing.assert_allclose(c[0, 2], [0.0, 0.0])
    assert s[0, 2] == -1.0
    c0, _ = decode_heatmaps(hm, "alphapose_v0")  # old: `0 < y` border, then +0.2 on every joint
    np.testing.assert_allclose(c0[0, 0], [5.45, 5.45])
    np.testing.assert_allclose(c0[0, 1], [5.45, 1.2])
    np.testing.assert_allclose(c0[0, 2], [0.2, 0.2])


def test_channels_keeps_the_first_maps():
    hm = gaussian_maps(clean_peaks(33, 1)).reshape(1, 33, HM_H, HM_W)
    c, s = decode_heatmaps(hm, "quarter", channels=17)
    assert c.shape == (1, 17, 2) and s.shape == (1, 17)
    with pytest.raises(BadInputError, match="channels=40"):
        decode_heatmaps(hm, channels=40)


def test_aliases_and_unknown_method():
    hm = gaussian_maps(clean_peaks(3, 2))
    a, _ = decode_heatmaps(hm, "hrnet")
    b, _ = decode_heatmaps(hm, "alphapose")
    c, _ = decode_heatmaps(hm, "quarter")
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(b, c)
    with pytest.raises(BadInputError, match="method='simdr'"):
        decode_heatmaps(hm, "simdr")


# -- geometry ------------------------------------------------------------------------------------
def random_boxes(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(0, 400, n)
    y1 = rng.uniform(0, 300, n)
    return np.stack([x1, y1, x1 + rng.uniform(20, 200, n), y1 + rng.uniform(40, 300, n)], axis=1)


def image_errors(method: str, cfg: TopDownConfig, n: int = 200, seed: int = 3):
    """Truth image points -> heatmap (forward affine) -> Gaussian -> decode -> to_image; errors / stride."""
    boxes = random_boxes(n, seed)
    image = np.zeros((480, 640, 3), np.uint8)
    crops = crop_persons(image, boxes, cfg)
    hm_size = cfg.heatmap_size
    peaks = clean_peaks(n, seed + 1, margin=6.0, h=hm_size[0], w=hm_size[1])
    truth = crops.to_image(peaks[:, None])[:, 0]  # the image points whose heatmap position is `peaks`
    coords, _ = decode_heatmaps(gaussian_maps(peaks, *hm_size), method)
    back = crops.to_image(coords)[:, 0]
    if cfg.crop == "center_scale":
        stride = crops.scale[:, 0] / hm_size[1]  # image pixels per heatmap pixel
    else:
        stride = (crops.to_image(np.array([[[1.0, 0.0]]] * n))[:, 0, 0] - crops.to_image(np.zeros((n, 1, 2)))[:, 0, 0])
    err = np.abs(back - truth) / stride[:, None]
    return err, stride


@pytest.mark.parametrize("preset", ["hrnet", "alphapose", "alphapose_v0"])
@pytest.mark.parametrize("method, tol", [("quarter", QUARTER_TOL), ("dark", DARK_TOL)])
def test_inverse_affine_maps_back_within_tolerance_times_stride(preset, method, tol):
    cfg = TopDownConfig.preset(preset)
    err, stride = image_errors(method, cfg)
    print(preset, method, "max err / stride", err.max(), "stride range", stride.min(), stride.max())
    assert err.max() <= tol


def test_forward_affine_and_warp_agree():
    """A dot drawn in the image lands in the crop where the affine matrix says."""
    cfg = TopDownConfig.preset("hrnet")
    image = np.zeros((480, 640, 3), np.uint8)
    image[200:203, 300:303] = 255  # 3x3 dot centred at (301, 201)
    box = np.array([[250.0, 100.0, 350.0, 400.0]])
    crops = crop_persons(image, box, cfg, image_color="rgb")
    m = get_affine_transform(crops.center[0], crops.scale[0], cfg.input_size)
    expected = pose.affine_points(np.array([301.0, 201.0]), m)
    plane = crops.inputs[0, 0] * cfg.std[0] + cfg.mean[0]
    ys, xs = np.nonzero(plane > 0.05)
    w = plane[ys, xs]
    found = np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])
    np.testing.assert_allclose(found, expected, atol=0.2)
    back = crops.to_image(found[None, None], from_size=cfg.input_size)[0, 0]
    np.testing.assert_allclose(back, [301.0, 201.0], atol=0.2 * crops.scale[0, 0] / cfg.input_size[1])


def test_affine_inverse_and_rotation_round_trip():
    c, s = np.array([320.0, 240.0]), np.array([120.0, 160.0])
    for rot in (0.0, 30.0, -75.0):
        fwd = get_affine_transform(c, s, (256, 192), rot=rot)
        inv = get_affine_transform(c, s, (256, 192), rot=rot, inv=True)
        pts = np.random.default_rng(0).uniform(0, 600, (10, 2))
        np.testing.assert_allclose(pose.affine_points(pose.affine_points(pts, fwd), inv), pts, atol=1e-3)
    # rot 0: center -> output center, scale[0] wide window -> output width
    fwd = get_affine_transform(c, s, (256, 192))
    np.testing.assert_allclose(pose.affine_points(c, fwd), [96.0, 128.0], atol=1e-4)
    np.testing.assert_allclose(fwd[0, 0], 192 / 120.0, rtol=1e-6)


def test_box_to_center_scale_pads_to_the_aspect_and_enlarges():
    c, s = pose.box_to_center_scale([[0, 0, 100, 100]], aspect_ratio=0.75)  # too wide -> taller
    np.testing.assert_allclose(c, [[50, 50]])
    np.testing.assert_allclose(s, [[125, 125 / 0.75]])
    c, s = pose.box_to_center_scale([[10, 20, 40, 220]], aspect_ratio=0.75)  # too tall -> wider
    np.testing.assert_allclose(s, [[200 * 0.75 * 1.25, 200 * 1.25]])


def test_alphapose_v0_crop_zeroes_outside_the_enlarged_box():
    cfg = TopDownConfig.preset("alphapose_v0")
    image = np.full((300, 400, 3), 200, np.uint8)
    crops = crop_persons(image, [[100, 50, 200, 250]], cfg, image_color="rgb")
    np.testing.assert_allclose(crops.ul[0], [85, 20])  # 0.15 w / 0.15 h each side
    np.testing.assert_allclose(crops.br[0], [215, 280])
    x = crops.inputs[0]
    inside = 200 / 255 - np.array(pose.ALPHAPOSE_MEAN)
    np.testing.assert_allclose(x[:, 160, 128], inside, atol=1e-6)  # box centre: mean-subtracted value
    np.testing.assert_allclose(x[:, 160, 0], 0.0, atol=1e-6)  # aspect padding: zeros (after mean subtraction)


def test_config_from_manifest_records():
    pre = {"kind": "image", "size_hw": [384, 288], "color": "BGR", "mean": [0.485, 0.456, 0.406],
           "std": [0.229, 0.224, 0.225], "crop": {"method": "center_scale_affine", "scale_mult": 1.25}}
    post = {"kind": "heatmap", "decoder": "alphapose_v0", "heatmap_hw": [96, 72], "channels": 17,
            "flip_pairs": [[1, 2]], "flip_shift": False}
    cfg = TopDownConfig.from_manifest({"preprocess": pre, "postprocess": post})
    assert cfg.color == "bgr" and cfg.input_size == (384, 288) and cfg.heatmap_size == (96, 72)
    assert cfg.decoder == "alphapose_v0" and cfg.channels == 17 and cfg.flip_pairs == ((1, 2),) and not cfg.flip_shift
    with pytest.raises(BadInputError, match="size_hw"):
        TopDownConfig.from_manifest({"preprocess": {}})


def figures_markdown(n: int = 4000, n_img: int = 1000) -> str:
    rows = []
    for noise in (0.0, 0.01, 0.05):
        for method in ("quarter", "dark", "argmax", "alphapose_v0"):
            e = decode_errors(method, n=n, noise=noise)
            rows.append(f"| {noise:g} | {method} | {e['max_axis']:.4f} | {e['max_euclid']:.4f} | "
                        f"{e['p99_euclid']:.4f} | {e['mean_euclid']:.4f} |")
    img = []
    for preset in ("hrnet", "alphapose", "alphapose_v0"):
        for method in ("quarter", "dark"):
            err, stride = image_errors(method, TopDownConfig.preset(preset), n=n_img)
            img.append(f"| {preset} | {method} | {err.max():.4f} | {np.linalg.norm(err, axis=1).mean():.4f} | "
                       f"{stride.min():.2f}-{stride.max():.2f} |")
    return "\n".join(["| noise sd | method | max per-axis error | max Euclidean | p99 Euclidean | mean Euclidean |",
                      "|---|---|---|---|---|---|", *rows, "",
                      "| crop | method | max per-axis error / stride | mean Euclidean / stride "
                      "| stride (image px per heatmap px) |",
                      "|---|---|---|---|---|", *img])


if __name__ == "__main__":
    print(figures_markdown())


def _crop_box_v0_literal(img_chw, ul, br, res_h, res_w):
    """Transcription of the old AlphaPose cropBox (full-image copy zeroed outside the box)."""
    import cv2

    ul = ul.astype(int)
    br = (br - 1).astype(int)
    len_h = max(br[1] - ul[1], (br[0] - ul[0]) * res_h / res_w)
    len_w = len_h * res_w / res_h
    pad = [(len_h - (br[1] - ul[1])) // 2, (len_w - (br[0] - ul[0])) // 2]
    img = img_chw.copy()
    if ul[1] > 0:
        img[:, :ul[1], :] = 0
    if ul[0] > 0:
        img[:, :, :ul[0]] = 0
    if br[1] < img.shape[1] - 1:
        img[:, br[1] + 1:, :] = 0
    if br[0] < img.shape[2] - 1:
        img[:, :, br[0] + 1:] = 0
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = [ul[0] - pad[1], ul[1] - pad[0]]
    src[1] = [br[0] + pad[1], br[1] + pad[0]]
    dst[1] = [res_w - 1, res_h - 1]
    for m in (src, dst):
        d = m[0] - m[1]
        m[2] = m[1] + np.array([-d[1], d[0]], np.float32)
    trans = cv2.getAffineTransform(src, dst)
    out = cv2.warpAffine(img.transpose(1, 2, 0).copy(), trans, (res_w, res_h), flags=cv2.INTER_LINEAR)
    return out.transpose(2, 0, 1)


def test_alphapose_v0_crop_equals_the_upstream_transcription():
    cfg = TopDownConfig.preset("alphapose_v0")
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (240, 320, 3), np.uint8)
    boxes = np.concatenate([random_boxes(20, 6) * 0.5, [[300, 200, 319, 239], [0, 0, 3, 3], [310, 5, 330, 60]]])
    crops = crop_persons(image, boxes, cfg, image_color="rgb")
    mean = np.array(pose.ALPHAPOSE_MEAN, np.float32)[:, None, None]
    norm = image.astype(np.float32).transpose(2, 0, 1) / np.float32(255) - mean
    for i in range(len(boxes)):
        ref = _crop_box_v0_literal(norm, crops.ul[i], crops.br[i], *cfg.input_size)
        # OpenCV's float32 bilinear warp may round the last bit differently between builds and SIMD
        # paths (opencv 5.1 gives 7e-9 on 2 elements); 1e-6 is ~16 ulps on values in [-0.5, 1], far
        # below the 1/255 = 4e-3 step of the uint8 image, so any real crop/offset error still fails.
        np.testing.assert_allclose(crops.inputs[i], ref, rtol=0, atol=1e-6)


def test_dark_blur_equals_darkpose_per_map_blur():
    import cv2

    from deploykit.runtime.pose.decode import _blur

    hm = np.random.default_rng(7).random((3, 5, 64, 48)) - 0.1
    b = 5  # kernel 11
    ref = np.empty_like(hm)
    for i in range(3):
        for j in range(5):
            dr = np.zeros((64 + 2 * b, 48 + 2 * b))
            dr[b:-b, b:-b] = hm[i, j]
            dr = cv2.GaussianBlur(dr, (11, 11), 0)
            ref[i, j] = dr[b:-b, b:-b] * (hm[i, j].max() / dr[b:-b, b:-b].max())
    np.testing.assert_allclose(_blur(hm, 11), ref, rtol=0, atol=1e-12)
