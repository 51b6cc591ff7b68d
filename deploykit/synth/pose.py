"""Synthetic pose figures: rendered persons on clutter with known COCO-17 keypoints.

A figure faces the camera (its left side on the image's right, as COCO annotates a frontal
person), with random limb angles, proportions and colours, on `synth.draw.clutter`. The
person box is cut out with the runtime's top-down crop (`runtime.pose.crop_persons`, the model's
manifest record), and the keypoints go through the same affine transform, so they are in network
input pixels. numpy + OpenCV, no torch.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import numpy as np

from ..constants import COCO_JOINTS
from ..errors import BadInputError
from .draw import clutter, cv2 as _cv2

COCO_KEYPOINTS = COCO_JOINTS
CANVAS_HW = (320, 256)
# (a, b, which colour): limbs drawn as thick lines; 0 = shirt, 1 = skin, 2 = pants
_LIMBS = ((5, 7, 0), (6, 8, 0), (7, 9, 1), (8, 10, 1), (11, 13, 2), (12, 14, 2), (13, 15, 2), (14, 16, 2))


def _direction(deg: float) -> np.ndarray:
    """Unit vector at `deg` from straight down (image y grows downwards), positive towards image right."""
    r = math.radians(deg)
    return np.array([math.sin(r), math.cos(r)])


def _skeleton(rng: np.random.Generator, hw: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Random COCO-17 keypoints [17, 2] (x, y image pixels) of a frontal figure, and its height."""
    H, W = hw
    height = rng.uniform(0.55, 0.85) * H
    pelvis = np.array([W / 2 + rng.uniform(-0.1, 0.1) * W, H / 2 + rng.uniform(0.0, 0.08) * H])
    up = -_direction(rng.uniform(-12, 12))  # torso direction, pelvis -> neck
    side = np.array([-up[1], up[0]])  # towards image right
    if side[0] < 0:
        side = -side
    neck = pelvis + up * height * rng.uniform(0.28, 0.33)
    k = np.zeros((17, 2))
    head_r = height * rng.uniform(0.055, 0.07)
    head = neck + up * head_r * 1.6
    k[0] = head + side * rng.uniform(-0.15, 0.15) * head_r - up * 0.15 * head_r  # nose
    k[1], k[2] = head + side * 0.4 * head_r + up * 0.25 * head_r, head - side * 0.4 * head_r + up * 0.25 * head_r
    k[3], k[4] = head + side * head_r, head - side * head_r
    half_sh, half_hip = height * rng.uniform(0.09, 0.13), height * rng.uniform(0.06, 0.09)
    k[5], k[6] = neck + side * half_sh, neck - side * half_sh
    k[11], k[12] = pelvis + side * half_hip, pelvis - side * half_hip
    arm, leg = height * rng.uniform(0.15, 0.19), height * rng.uniform(0.22, 0.26)
    for s, (sh, el, wr) in ((1, (5, 7, 9)), (-1, (6, 8, 10))):
        a = s * rng.uniform(-30, 150)  # upper arm: along the body to raised sideways
        k[el] = k[sh] + _direction(a) * arm
        k[wr] = k[el] + _direction(a + s * rng.uniform(-20, 140)) * arm * 0.9
    for s, (hp, kn, an) in ((1, (11, 13, 15)), (-1, (12, 14, 16))):
        a = s * rng.uniform(-10, 40)
        k[kn] = k[hp] + _direction(a) * leg
        k[an] = k[kn] + _direction(a - s * rng.uniform(0, 45)) * leg
    return k, height


def _draw(img: np.ndarray, k: np.ndarray, height: float, rng: np.random.Generator) -> None:
    cv2 = _cv2()
    colours = [tuple(float(v) for v in rng.uniform(0, 255, 3)) for _ in range(3)]
    thick = [max(2, int(height * f)) for f in (rng.uniform(0.04, 0.06), rng.uniform(0.03, 0.045),
                                               rng.uniform(0.05, 0.07))]
    pt = lambda p: (int(round(p[0])), int(round(p[1])))  # noqa: E731
    torso = np.array([k[5], k[6], k[12], k[11]], np.int32)
    cv2.fillConvexPoly(img, torso, colours[0])
    for a, b, c in _LIMBS:
        cv2.line(img, pt(k[a]), pt(k[b]), colours[c], thick[c])
    head = (k[3] + k[4]) / 2
    cv2.circle(img, pt(head), int(np.linalg.norm(k[3] - k[4]) / 2), colours[1], -1)
    dark = tuple(float(v) * 0.3 for v in colours[1])
    for j in (0, 1, 2):  # nose and eyes: small dark dots so the face joints can be found
        cv2.circle(img, pt(k[j]), max(1, int(height * 0.008)), dark, -1)
    for j in (9, 10, 15, 16):  # hands and feet
        cv2.circle(img, pt(k[j]), max(2, int(height * 0.022)), colours[1] if j < 15 else dark, -1)


def _config(size: tuple[int, int], preprocess: Optional[Mapping[str, Any]]):
    from ..runtime.pose import TopDownConfig

    if preprocess is not None:
        return TopDownConfig.from_manifest({"preprocess": dict(preprocess)})
    h, w = size
    return TopDownConfig(input_size=(h, w), heatmap_size=(h // 4, w // 4))


def pose_figures(num: int, seed: int, size: tuple[int, int] = (256, 192),
                 preprocess: Optional[Mapping[str, Any]] = None):
    """`num` rendered persons, cropped and normalised as a top-down pose model's input.

    Args:
        num: images (>= 1). seed: the generator seed; the same arguments give the same bytes.
        size: network input (h, w) when `preprocess` is None (HRNet's crop and ImageNet
            normalisation, RGB); default (256, 192).
        preprocess: a manifest's `preprocess` record (`manifest["preprocess"]`); it wins over size.

    Returns:
        images float32 `[num, 3, h, w]` (normalised network input), keypoints float32
        `[num, 17, 2]` (x, y in input pixels, COCO order `COCO_KEYPOINTS`), boxes float32
        `[num, 4]` (the person boxes x1, y1, x2, y2 on the 320x256 canvas).
    """
    from ..runtime.pose import crop_persons
    from ..runtime.pose.transforms import get_affine_transform

    if int(num) < 1:
        raise BadInputError(f"pose_figures: num {num}; give 1 or more")
    cfg = _config(size, preprocess)
    h, w = cfg.input_size
    rng = np.random.default_rng([int(seed), 0x9053])
    images = np.zeros((int(num), 3, h, w), np.float32)
    kps = np.zeros((int(num), 17, 2), np.float32)
    boxes = np.zeros((int(num), 4), np.float32)
    for i in range(int(num)):
        img = clutter(rng, CANVAS_HW)
        k, height = _skeleton(rng, CANVAS_HW)
        _draw(img, k, height, rng)
        img = np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)
        lo, hi = k.min(0), k.max(0)
        pad = (hi - lo) * 0.08 + height * 0.03
        box = np.concatenate([lo - pad, hi + pad]) + rng.uniform(-0.03, 0.03, 4) * height  # a detector's jitter
        crops = crop_persons(img, box[None], cfg, image_color="bgr")
        images[i] = crops.inputs[0]
        trans = get_affine_transform(crops.center[0], crops.scale[0], (h, w))
        kps[i] = k @ trans[:, :2].T + trans[:, 2]
        boxes[i] = box
    return images, kps, boxes


def heatmap_targets(keypoints: np.ndarray, input_hw: tuple[int, int], heatmap_hw: tuple[int, int],
                    sigma: float = 2.0) -> np.ndarray:
    """HRNet's training targets: a Gaussian (sigma in heatmap pixels, default 2) per joint.

    Args:
        keypoints: `[n, 17, 2]` (x, y) in input pixels. input_hw / heatmap_hw: (h, w) of both.

    Returns:
        float32 `[n, 17, hh, hw]`, peak 1 at the joint's heatmap position (input / stride).
    """
    kp = np.asarray(keypoints, np.float64)
    hh, hw = heatmap_hw
    stride = np.array([input_hw[1] / hw, input_hw[0] / hh])
    mu = kp / stride  # [n, 17, 2] heatmap pixels
    ys, xs = np.arange(hh)[:, None], np.arange(hw)[None, :]
    dx = xs[None, None] - mu[..., 0, None, None]
    dy = ys[None, None] - mu[..., 1, None, None]
    return np.exp(-(dx ** 2 + dy ** 2) / (2 * sigma ** 2)).astype(np.float32)
