"""Top-down pose crops: person box -> network input, and network coordinates -> image coordinates.

Two crop families, as upstream:

* ``center_scale`` (HRNet, PRTR, current AlphaPose): the box becomes a center and a scale padded
  to the network's aspect ratio and enlarged 1.25 times (HRNet `_xywh2cs`, AlphaPose
  `_box_to_center_scale`), then `get_affine_transform` warps it to the input size with
  `cv2.warpAffine(INTER_LINEAR)`. Scales here are in pixels (HRNet's `scale * 200`; AlphaPose's
  pixel_std is 1). Coordinates go back with the inverse transform (`transform_preds`).
* ``alphapose_v0`` (the old AlphaPose `pytorch` branch, `crop_from_dets` + `cropBox`): the box is
  enlarged by 0.3 (0.15 w / 0.15 h each side), clipped to the image, at least 5 px; pixels outside
  it are zeroed *after* the mean subtraction; the box is padded to the aspect ratio and its corners
  are mapped to [0, 0] and [W-1, H-1]. Coordinates go back with `transformBoxInvert_batch`.

Sizes are (height, width) everywhere in this module; coordinates are (x, y).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ...constants import (ALPHAPOSE_MEAN, COCO_FLIP_PAIRS, HALPE26_FLIP_PAIRS,  # noqa: F401  (re-exported by pose)
                          IMAGENET_MEAN, IMAGENET_STD)
from ...errors import BadInputError
from ...records import ALIASES, CropMethod, Decoder, HeatmapPostprocess, ImagePreprocess, postprocess_of, preprocess_of
from .. import _checks
from ..imageops import as_image, convert_color

CROPS = tuple(m.value for m in CropMethod)
DECODERS = tuple(m.value for m in Decoder)


@dataclasses.dataclass(frozen=True)
class TopDownConfig:
    """What a top-down pose model needs around its engine.

    Attributes:
        input_size: network input (height, width).
        heatmap_size: heatmap (height, width); None for PRTR (no heatmaps).
        color: channel order the network expects, "rgb" or "bgr".
        mean: subtracted from pixels / 255, per *network input channel* (so in `color` order, as
            upstream applies it: PRTR-ResNet is BGR with ImageNet's RGB-ordered mean on B, G, R).
        std: divisor after the mean; None = mean only (AlphaPose).
        crop: "center_scale" or "alphapose_v0".
        scale_mult: box enlargement of the center/scale crop (1.25).
        enlarge: box enlargement of the alphapose_v0 crop (0.3).
        decoder: "quarter" (HRNet / current AlphaPose), "dark", "alphapose_v0", "argmax", or "prtr"
            (keypoint queries: `decode_prtr`).
        channels: heatmap channels that are joints (old FastPose has 33 outputs, 17 used); None = all.
        flip_pairs: left/right joint pairs (0-based) for flip test.
        flip_shift: shift the flipped heatmap 1 px right before averaging (HRNet SHIFT_HEATMAP,
            AlphaPose `flip_heatmap(shift=True)`); the old AlphaPose flip path had no shift.
    """

    input_size: tuple[int, int]
    heatmap_size: Optional[tuple[int, int]] = None
    color: str = "rgb"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: Optional[tuple[float, ...]] = IMAGENET_STD
    crop: str = "center_scale"
    scale_mult: float = 1.25
    enlarge: float = 0.3
    decoder: str = "quarter"
    channels: Optional[int] = None
    flip_pairs: tuple[tuple[int, int], ...] = COCO_FLIP_PAIRS
    flip_shift: bool = True

    def __post_init__(self) -> None:
        where = "TopDownConfig"
        object.__setattr__(self, "input_size", _checks.size_hw(self.input_size, "input_size", where))
        if self.heatmap_size is not None:
            object.__setattr__(self, "heatmap_size", _checks.size_hw(self.heatmap_size, "heatmap_size", where))
        object.__setattr__(self, "color", _checks.choice(self.color, "color", ("rgb", "bgr"), where))
        crop = ALIASES[CropMethod].get(str(self.crop).lower(), self.crop)
        object.__setattr__(self, "crop", _checks.choice(crop, "crop", CROPS, where))
        dec = ALIASES[Decoder].get(str(self.decoder).lower(), self.decoder)
        object.__setattr__(self, "decoder", _checks.choice(dec, "decoder", DECODERS, where))
        mean = tuple(float(m) for m in self.mean)
        std = None if self.std is None else tuple(float(s) for s in self.std)
        if len(mean) != 3 or (std is not None and (len(std) != 3 or min(std) <= 0)):
            raise BadInputError(f"{where}: mean {mean} / std {std} must have 3 entries (std > 0)")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "flip_pairs", tuple(tuple(int(v) for v in p) for p in self.flip_pairs))
        if not self.scale_mult > 0:
            raise BadInputError(f"{where}: scale_mult must be > 0, got {self.scale_mult}")

    @property
    def aspect_ratio(self) -> float:
        """Network input width / height."""
        return self.input_size[1] / self.input_size[0]

    @property
    def nms_variant(self) -> str:
        """The `pose_nms` variant of this AlphaPose generation: "pytorch" (old crop, -0.3 px) or "master"."""
        return "pytorch" if self.crop == "alphapose_v0" else "master"

    @classmethod
    def preset(cls, name: str, input_size: Optional[Sequence[int]] = None, **overrides) -> "TopDownConfig":
        """Upstream settings by name.

        Args:
            name: "alphapose_v0" (old FastPose, 320x256, crop and decoder of the pytorch branch),
                "alphapose" (current FastPose, 256x192), "hrnet" (256x192), "prtr_resnet" (BGR,
                384x288) or "prtr_hrnet" (RGB, 384x288).
            input_size: (height, width) to override the preset's.
            overrides: any other field.
        """
        key = _checks.choice(name, "preset", tuple(_PRESETS), "TopDownConfig.preset")
        base = dict(_PRESETS[key])
        if input_size is not None:
            h, w = _checks.size_hw(input_size, "input_size", "TopDownConfig.preset")
            base["input_size"] = (h, w)
            if base.get("heatmap_size") is not None:
                base["heatmap_size"] = (h // 4, w // 4)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> "TopDownConfig":
        """From a manifest's typed `preprocess` / `postprocess` records (or a dict holding both, or the
        preprocess record alone); schema 1 manifests read as `deploykit.records` describes."""
        pre = preprocess_of(manifest)
        if not isinstance(pre, ImagePreprocess):
            raise BadInputError("TopDownConfig.from_manifest: the preprocess record has no 'size_hw'; is this a "
                                "top-down pose model's manifest?")
        kw: dict[str, Any] = dict(input_size=pre.size_hw, color=pre.color.value, mean=pre.mean, std=pre.std)
        if pre.crop is not None:
            kw.update(crop=pre.crop.method.value, scale_mult=pre.crop.scale_mult, enlarge=pre.crop.enlarge)
        post = postprocess_of(manifest) if isinstance(manifest.get("postprocess"), Mapping) else None
        if isinstance(post, HeatmapPostprocess):
            kw.update(decoder=post.decoder.value, flip_pairs=post.flip_pairs)
            if post.heatmap_hw:
                kw["heatmap_size"] = post.heatmap_hw
            if post.channels:
                kw["channels"] = post.channels
            if post.flip_shift is not None:
                kw["flip_shift"] = post.flip_shift
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


_PRESETS: dict[str, dict[str, Any]] = {
    "alphapose_v0": dict(input_size=(320, 256), heatmap_size=(80, 64), color="rgb", mean=ALPHAPOSE_MEAN, std=None,
                         crop="alphapose_v0", decoder="alphapose_v0", channels=17, flip_shift=False),
    "alphapose": dict(input_size=(256, 192), heatmap_size=(64, 48), color="rgb", mean=ALPHAPOSE_MEAN, std=None,
                      crop="center_scale", decoder="quarter"),
    "hrnet": dict(input_size=(256, 192), heatmap_size=(64, 48), color="rgb", crop="center_scale", decoder="quarter"),
    "prtr_resnet": dict(input_size=(384, 288), heatmap_size=None, color="bgr", crop="center_scale", decoder="prtr"),
    "prtr_hrnet": dict(input_size=(384, 288), heatmap_size=None, color="rgb", crop="center_scale", decoder="prtr"),
}


# -- geometry ------------------------------------------------------------------------------------
def _as_boxes(boxes: Any, where: str) -> np.ndarray:
    b = _checks.array(boxes, "boxes", ndim=(1, 2), dtype=np.float64, where=where)
    if b.ndim == 1:
        if b.size == 0:
            b = b.reshape(0, 4)
        else:
            b = b[None]
    if b.shape[1] != 4:
        raise BadInputError(f"{where}: boxes has shape {list(b.shape)}; expected [N, 4] as (x1, y1, x2, y2)")
    if b.size and ((b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any()):
        raise BadInputError(f"{where}: a box has x2 < x1 or y2 < y1; boxes are (x1, y1, x2, y2) corners, not "
                            f"(x, y, w, h)")
    return b


def box_to_center_scale(boxes: Any, aspect_ratio: float, scale_mult: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
    """Boxes `[N, 4]` (x1, y1, x2, y2) -> center `[N, 2]` and scale `[N, 2]` (w, h) in pixels.

    The box is padded to `aspect_ratio` (= input width / height), then both sides times
    `scale_mult`: HRNet `_xywh2cs` (divide by 200 for its units) and AlphaPose `_box_to_center_scale`.
    """
    where = "box_to_center_scale"
    b = _as_boxes(boxes, where)
    if not (np.isfinite(aspect_ratio) and aspect_ratio > 0):
        raise BadInputError(f"{where}: aspect_ratio must be > 0, got {aspect_ratio}")
    x, y = b[:, 0], b[:, 1]
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    center = np.stack([x + w * 0.5, y + h * 0.5], axis=1)
    w2 = np.where(w > aspect_ratio * h, w, np.where(w < aspect_ratio * h, h * aspect_ratio, w))
    h2 = np.where(w > aspect_ratio * h, w / aspect_ratio, h)
    scale = np.stack([w2, h2], axis=1) * scale_mult
    return center, scale


def _get_3rd_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a - b
    return b + np.array([-d[1], d[0]], dtype=np.float32)


def get_affine_transform(center: Sequence[float], scale: Sequence[float], output_size: Sequence[int],
                         rot: float = 0.0, inv: bool = False) -> np.ndarray:
    """Upstream `get_affine_transform` (HRNet / AlphaPose), scale in pixels, output_size (height, width).

    Maps the `scale`-wide window around `center` onto the output, center to (W/2, H/2). Built from
    the same three float32 points and `cv2.getAffineTransform` as upstream, so the matrix matches
    theirs bit for bit. Returns a float64 `[2, 3]` matrix (image -> output, or output -> image
    with `inv=True`).
    """
    import cv2

    oh, ow = output_size
    c = np.asarray(center, np.float64)
    src_w = float(np.asarray(scale, np.float64).reshape(-1)[0])
    if not (np.isfinite(src_w) and src_w > 0 and np.isfinite(c).all()):
        raise BadInputError(f"get_affine_transform: center {c.tolist()} / scale {src_w} must be finite with "
                            f"scale > 0 (a zero-size box?)")
    r = np.pi * rot / 180
    sn, cs = np.sin(r), np.cos(r)
    src_dir = np.array([0 * cs - (src_w * -0.5) * sn, 0 * sn + (src_w * -0.5) * cs])
    dst_dir = np.array([0, ow * -0.5], np.float32)
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = c
    src[1] = c + src_dir
    dst[0] = [ow * 0.5, oh * 0.5]
    dst[1] = np.array([ow * 0.5, oh * 0.5]) + dst_dir
    src[2] = _get_3rd_point(src[0], src[1])
    dst[2] = _get_3rd_point(dst[0], dst[1])
    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


def affine_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply `[2, 3]` (or per-item `[N, 2, 3]` on `[N, K, 2]`) affine matrices to (x, y) points."""
    p = np.asarray(points, np.float64)
    m = np.asarray(matrix, np.float64)
    if m.ndim == 2:
        return p @ m[:, :2].T + m[:, 2]
    return np.einsum("nkj,nij->nki", p, m[:, :, :2]) + m[:, None, :, 2]


# -- crops ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class Crops:
    """A batch of person crops and what is needed to map coordinates back.

    Attributes:
        inputs: float32 `[N, 3, H, W]` network inputs (normalised, in the network's colour order).
        boxes: the detector boxes `[N, 4]` as given.
        config: the TopDownConfig used.
        center, scale: `[N, 2]` crop center and (w, h) in pixels (center_scale crops).
        ul, br: `[N, 2]` enlarged, clipped box corners (alphapose_v0 crops; upstream pt1/pt2).
    """

    inputs: np.ndarray
    boxes: np.ndarray
    config: TopDownConfig
    center: Optional[np.ndarray] = None
    scale: Optional[np.ndarray] = None
    ul: Optional[np.ndarray] = None
    br: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def to_image(self, coords: np.ndarray, from_size: Optional[Sequence[int]] = None) -> np.ndarray:
        """Map `[N, K, 2]` (x, y) from heatmap (or input) pixels back to image pixels.

        Args:
            coords: coordinates in a grid of `from_size` (height, width) over the crop.
            from_size: default the config's heatmap_size (the input_size for PRTR).
        """
        where = "Crops.to_image"
        size = from_size or self.config.heatmap_size or self.config.input_size
        fh, fw = _checks.size_hw(size, "from_size", where)
        c = _checks.array(coords, "coords", ndim=3, dtype=np.float64, where=where)
        if c.shape[0] != len(self) or c.shape[2] != 2:
            raise BadInputError(f"{where}: coords has shape {list(c.shape)}; expected [{len(self)}, K, 2]")
        if self.config.crop == "alphapose_v0":
            return transform_box_invert_v0(c, self.ul, self.br, self.config.input_size, (fh, fw))
        return transform_preds(c, self.center, self.scale, (fh, fw))


def transform_preds(coords: np.ndarray, center: np.ndarray, scale: np.ndarray,
                    output_size: Sequence[int]) -> np.ndarray:
    """Upstream `transform_preds`: `[N, K, 2]` coords on an `output_size` (h, w) grid -> image pixels."""
    c = np.asarray(coords, np.float64)
    if c.shape[0] == 0:
        return c.copy()
    mats = np.stack([get_affine_transform(center[i], scale[i], output_size, inv=True) for i in range(c.shape[0])])
    return affine_points(c, mats)


def _enlarged_box_v0(box: np.ndarray, img_w: int, img_h: int, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Old AlphaPose `crop_from_dets` box enlargement (float32 arithmetic as torch did)."""
    x1, y1, x2, y2 = (np.float32(v) for v in box)
    ht, width = y2 - y1, x2 - x1
    r = np.float32(rate)
    ulx = max(np.float32(0), x1 - width * r / 2)
    uly = max(np.float32(0), y1 - ht * r / 2)
    brx = max(min(np.float32(img_w - 1), x2 + width * r / 2), ulx + 5)
    bry = max(min(np.float32(img_h - 1), y2 + ht * r / 2), uly + 5)
    return np.array([ulx, uly], np.float64), np.array([brx, bry], np.float64)


def _crop_box_v0(img_hwc: np.ndarray, norm, ul: np.ndarray, br: np.ndarray, res_h: int, res_w: int) -> np.ndarray:
    """Old AlphaPose `cropBox`: zero outside the box, pad to the aspect ratio, warp corners to corners.

    Upstream zeroes a full normalised image outside [ul, br] and warps it. Here the box, normalised
    by `norm`, is pasted into a zero canvas that ends at the box (pixels past it are zero either way,
    and OpenCV's constant border is 0): the same matrix and the same pixels, so the same result bit
    for bit, without normalising or copying the whole image per box.
    """
    import cv2

    ulx, uly = int(ul[0]), int(ul[1])  # torch .int() truncates toward zero (values are >= 0)
    brx, bry = int(br[0] - 1), int(br[1] - 1)
    len_h = max(bry - uly, (brx - ulx) * res_h / res_w)
    len_w = len_h * res_w / res_h
    pad_h = (len_h - (bry - uly)) // 2
    pad_w = (len_w - (brx - ulx)) // 2
    ih, iw, ch = img_hwc.shape
    y0, x0 = max(uly, 0), max(ulx, 0)
    y1, x1 = min(bry + 1, ih), min(brx + 1, iw)
    canvas = np.zeros((max(y1, 1), max(x1, 1), ch), np.float32)
    if y1 > y0 and x1 > x0:
        canvas[y0:y1, x0:x1] = norm(img_hwc[y0:y1, x0:x1])
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = [ulx - pad_w, uly - pad_h]
    src[1] = [brx + pad_w, bry + pad_h]
    dst[1] = [res_w - 1, res_h - 1]
    src[2] = _get_3rd_point(src[0], src[1])
    dst[2] = _get_3rd_point(dst[0], dst[1])
    trans = cv2.getAffineTransform(src, dst)
    out = cv2.warpAffine(canvas, trans, (res_w, res_h), flags=cv2.INTER_LINEAR)
    return out.reshape(res_h, res_w, ch).transpose(2, 0, 1)


def transform_box_invert_v0(coords: np.ndarray, ul: np.ndarray, br: np.ndarray, input_size: Sequence[int],
                            heatmap_size: Sequence[int]) -> np.ndarray:
    """Old AlphaPose `transformBoxInvert_batch`: heatmap (x, y) -> image pixels, per enlarged box."""
    inp_h, inp_w = input_size
    res_h = heatmap_size[0]
    pt = np.asarray(coords, np.float64)
    ul = np.asarray(ul, np.float64).reshape(-1, 2)
    br = np.asarray(br, np.float64).reshape(-1, 2)
    center = (br - 1 - ul) / 2
    size = br - ul
    size[:, 0] *= inp_h / inp_w
    len_h = size.max(axis=1)
    len_w = len_h * (inp_w / inp_h)
    out = pt * len_h[:, None, None] / res_h
    out[..., 0] -= np.maximum((len_w[:, None] - 1) / 2 - center[:, 0:1], 0)
    out[..., 1] -= np.maximum((len_h[:, None] - 1) / 2 - center[:, 1:2], 0)
    return out + ul[:, None, :]


def crop_persons(image: Any, boxes: Any, config: TopDownConfig, image_color: str = "bgr") -> Crops:
    """Cut each person box out of `image` into a normalised network input.

    Args:
        image: `[H, W, 3]` uint8 image (float in [0, 255] accepted).
        boxes: `[N, 4]` detector boxes (x1, y1, x2, y2) in image pixels; `[0, 4]` gives an empty batch.
        config: the model's TopDownConfig (`TopDownConfig.from_manifest(engine.manifest)`).
        image_color: channel order of `image`: "bgr" (OpenCV's, default) or "rgb".

    Returns:
        Crops with `inputs` float32 `[N, 3, H, W]`.
    """
    import cv2

    where = "crop_persons"
    img = as_image(image, "image", where)
    if img.dtype != np.uint8:  # OpenCV warps uint8 (as upstream) or float32, not int64/float64
        img = img.astype(np.float32)
    b = _as_boxes(boxes, where)
    src = _checks.choice(image_color, "image_color", ("rgb", "bgr"), where)
    ih, iw = img.shape[:2]
    h, w = config.input_size
    n = b.shape[0]
    inputs = np.zeros((n, 3, h, w), np.float32)
    mean = np.asarray(config.mean, np.float32).reshape(3, 1, 1)
    std = None if config.std is None else np.asarray(config.std, np.float32).reshape(3, 1, 1)
    if config.crop == "alphapose_v0":
        # upstream normalises the whole image (network colour order, /255, minus mean), zeroes it
        # outside each box and warps; only the box pixels are ever read, so normalise just those
        mean_c = mean.reshape(3)
        std_c = None if std is None else std.reshape(3)

        def norm(region: np.ndarray) -> np.ndarray:
            x = convert_color(region, src, config.color).astype(np.float32) / np.float32(255)
            x -= mean_c
            if std_c is not None:
                x /= std_c
            return x

        ul = np.zeros((n, 2))
        br = np.zeros((n, 2))
        for i in range(n):
            ul[i], br[i] = _enlarged_box_v0(b[i], iw, ih, config.enlarge)
            inputs[i] = _crop_box_v0(img, norm, ul[i], br[i], h, w)
        return Crops(inputs, b, config, ul=ul, br=br)
    center, scale = box_to_center_scale(b, config.aspect_ratio, config.scale_mult)
    bad = ~((scale > 0).all(axis=1))
    if bad.any():
        raise BadInputError(f"{where}: box {b[np.argmax(bad)].tolist()} has zero width and height; drop empty "
                            f"detections before cropping")
    src_img = np.ascontiguousarray(img)
    mean_c = mean.reshape(3)
    std_c = None if std is None else std.reshape(3)
    for i in range(n):
        trans = get_affine_transform(center[i], scale[i], (h, w))
        crop = cv2.warpAffine(src_img, trans, (w, h), flags=cv2.INTER_LINEAR)  # per channel: order-free
        x = convert_color(crop, src, config.color).astype(np.float32)
        x /= np.float32(255)
        x -= mean_c
        if std_c is not None:
            x /= std_c
        inputs[i] = x.transpose(2, 0, 1)
    return Crops(inputs, b, config, center=center, scale=scale)
