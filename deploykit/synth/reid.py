"""Synthetic re-ID persons: identities that differ in colours, proportions and accessories.

An identity fixes skin, hair, shirt, trousers and shoe colours, the head size, shoulder width and
leg length, and its accessories (a backpack strap, a bag at one side, a hat). Each image varies the
stance (arm and leg angles), the crop (shift and scale, as a detector's box would), the background
clutter, and the camera: each camera has its own colour gain and brightness. Images go through
the runtime's re-ID preprocessing (`runtime.reid.preprocess_reid`). numpy + OpenCV, no torch.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

import numpy as np

from ..errors import BadInputError
from .draw import clutter, cv2 as _cv2

CANVAS_HW = (192, 96)  # a person crop before the network's resize


@dataclasses.dataclass(frozen=True)
class PersonIdentity:
    """What stays fixed across one identity's images (colours BGR 0-255, sizes as fractions)."""

    skin: tuple
    hair: tuple
    shirt: tuple
    pants: tuple
    shoes: tuple
    head: float
    shoulder: float
    leg: float
    strap: bool
    bag: int  # 0 none, -1 left, +1 right (image side)
    hat: bool
    bag_colour: tuple

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "PersonIdentity":
        c = lambda lo=0, hi=255: tuple(float(v) for v in rng.uniform(lo, hi, 3))  # noqa: E731
        return cls(skin=c(60, 230), hair=c(0, 120), shirt=c(), pants=c(), shoes=c(0, 160),
                   head=rng.uniform(0.06, 0.08), shoulder=rng.uniform(0.16, 0.24), leg=rng.uniform(0.42, 0.5),
                   strap=bool(rng.random() < 0.4), bag=int(rng.choice([0, 0, -1, 1])), hat=bool(rng.random() < 0.3),
                   bag_colour=c())


def _render(p: PersonIdentity, rng: np.random.Generator, gain: np.ndarray) -> np.ndarray:
    """One uint8 BGR crop [192, 96, 3] of identity `p` under a camera's colour `gain` [3]."""
    cv2 = _cv2()
    H, W = CANVAS_HW
    img = clutter(rng, CANVAS_HW)
    s = rng.uniform(0.85, 1.0) * H  # figure height in the crop
    cx, top = W / 2 + rng.uniform(-0.08, 0.08) * W, (H - s) / 2 + rng.uniform(-0.05, 0.05) * H
    y = lambda f: int(top + f * s)  # noqa: E731
    hip, sh_w = 1.0 - p.leg - 0.03, p.shoulder * s
    for sgn in (1, -1):  # legs, then shoes
        fx = cx + sgn * rng.uniform(0.02, 0.12) * s
        cv2.line(img, (int(cx + sgn * 0.05 * s), y(hip)), (int(fx), y(0.97)), p.pants, max(2, int(0.07 * s)))
        cv2.ellipse(img, (int(fx), y(0.975)), (int(0.045 * s), int(0.02 * s)), 0, 0, 360, p.shoes, -1)
    cv2.ellipse(img, (int(cx), y((0.2 + hip) / 2)), (int(sh_w * 0.55), int((hip - 0.2) / 2 * s)), 0, 0, 360,
                p.shirt, -1)
    for sgn in (1, -1):  # arms
        hx = cx + sgn * (sh_w * 0.55 + rng.uniform(0.0, 0.1) * s)
        cv2.line(img, (int(cx + sgn * sh_w * 0.5), y(0.23)), (int(hx), y(0.5)), p.shirt, max(2, int(0.05 * s)))
        cv2.circle(img, (int(hx), y(0.51)), max(1, int(0.025 * s)), p.skin, -1)
    if p.strap:
        cv2.line(img, (int(cx - sh_w * 0.4), y(0.21)), (int(cx + sh_w * 0.45), y(hip)), p.bag_colour,
                 max(1, int(0.02 * s)))
    if p.bag:
        bx = int(cx + p.bag * (sh_w * 0.6 + 0.05 * s))
        cv2.rectangle(img, (bx - int(0.05 * s), y(hip - 0.06)), (bx + int(0.05 * s), y(hip + 0.08)), p.bag_colour, -1)
    head_r = int(p.head * s)
    cv2.circle(img, (int(cx), y(0.2) - head_r), head_r, p.skin, -1)
    cv2.ellipse(img, (int(cx), y(0.2) - head_r), (head_r, head_r), 0, 180, 360, p.hair, -1)  # hair on top
    if p.hat:
        cv2.rectangle(img, (int(cx) - head_r - 2, y(0.2) - 2 * head_r - 3),
                      (int(cx) + head_r + 2, y(0.2) - int(1.6 * head_r)), p.hair, -1)
    img = img * gain * rng.uniform(0.85, 1.15) + rng.normal(0, 5, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _crop(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A detector's box: a random shift and scale (about +-8%) of the crop, clipped to the image."""
    H, W = img.shape[:2]
    sc = rng.uniform(0.88, 1.0)
    h, w = int(H * sc), int(W * sc * rng.uniform(0.92, 1.08))
    w = min(w, W)
    y0, x0 = int(rng.uniform(0, H - h + 1)), int(rng.uniform(0, W - w + 1))
    return np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w])


def reid_persons(num_ids: int, imgs_per_id: int, seed: int, size: tuple[int, int] = (256, 128), cams: int = 2,
                 preprocess: Optional[Mapping[str, Any]] = None, first_id: int = 0):
    """`imgs_per_id` person crops of each of `num_ids` synthetic identities, over `cams` cameras.

    Image k of an identity comes from camera `k % cams`; each camera has a colour gain drawn from
    `seed`. Identities are drawn from `seed`, so another seed gives other persons.

    Args:
        num_ids, imgs_per_id: identities and images per identity (>= 1 each); cams: cameras (>= 1,
            default 2). seed: the generator seed; the same arguments give the same bytes.
        size: network input (h, w) when `preprocess` is None (RGA: 256x128 bilinear, ImageNet
            normalisation, RGB); default (256, 128).
        preprocess: a manifest's `preprocess` record; it wins over size.
        first_id: the id of the first identity (default 0).

    Returns:
        images float32 `[num_ids * imgs_per_id, 3, h, w]`, ids int64 `[n]`, cams int64 `[n]`.
    """
    from ..runtime.reid import ReidConfig, preprocess_reid

    if min(int(num_ids), int(imgs_per_id), int(cams)) < 1:
        raise BadInputError(f"reid_persons: num_ids {num_ids}, imgs_per_id {imgs_per_id}, cams {cams}; each must be "
                            f">= 1")
    cfg = (ReidConfig.from_manifest({"preprocess": dict(preprocess)}) if preprocess is not None
           else ReidConfig(tuple(size)))
    rng = np.random.default_rng([int(seed), 0x4e1d])
    gains = rng.uniform(0.75, 1.25, (int(cams), 3))
    crops, ids, cam_ids = [], [], []
    for i in range(int(num_ids)):
        person = PersonIdentity.draw(rng)
        for k in range(int(imgs_per_id)):
            c = k % int(cams)
            crops.append(_crop(_render(person, rng, gains[c]), rng))
            ids.append(first_id + i)
            cam_ids.append(c)
    return preprocess_reid(crops, cfg, image_color="bgr"), np.asarray(ids, np.int64), np.asarray(cam_ids, np.int64)
