"""Re-ID pre-processing and PGFA's pose inputs (no torch).

* RGA (`main_imgreid.py`): PIL RGB, `RectScale(256, 128)` = Pillow bilinear resize, ToTensor,
  ImageNet mean/std; no flip embedding by default.
* PGFA (`test.py`): PIL RGB, `Resize((384, 128), interpolation=3)` = Pillow bicubic, ToTensor,
  ImageNet mean/std. Its pose-guided branch needs 18 keypoint heatmaps `[18, 24, 8]`
  (`AlphaPose/generate_heatmap.py`) and, for matching, per-part visibility labels
  (`utils/part_label.py`), both from the old AlphaPose's OpenPose-18 output
  (`deploykit.runtime.pose.coco17_to_openpose18`).

Resizing uses `imageops.pil_resize`, a numpy transcription of Pillow's 8-bit resampling, so the
inputs match what the models were trained on without Pillow installed.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..constants import IMAGENET_MEAN, IMAGENET_STD
from ..errors import BadInputError
from ..records import ImagePreprocess, Resample, preprocess_of
from . import _checks
from .imageops import as_image, convert_color, float_to_l, normalize, pil_resize

PGFA_CONF_THRESH = 0.2  # keypoints with confidence <= 0.2 are ignored (generate_heatmap.py, part_label.py)


@dataclasses.dataclass(frozen=True)
class ReidConfig:
    """Image pre-processing of a re-ID model.

    Attributes:
        size: network input (height, width).
        resample: Pillow filter, "bilinear" (RGA) or "bicubic" (PGFA).
        color: channel order the network expects ("rgb" for both).
        mean, std: per network channel, on pixels / 255.
    """

    size: tuple[int, int]
    resample: str = "bilinear"
    color: str = "rgb"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: Optional[tuple[float, ...]] = IMAGENET_STD

    def __post_init__(self) -> None:
        where = "ReidConfig"
        object.__setattr__(self, "size", _checks.size_hw(self.size, "size", where))
        object.__setattr__(self, "resample", _checks.choice(self.resample, "resample", ("bilinear", "bicubic"), where))
        object.__setattr__(self, "color", _checks.choice(self.color, "color", ("rgb", "bgr"), where))
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        if self.std is not None:
            object.__setattr__(self, "std", tuple(float(s) for s in self.std))

    @classmethod
    def preset(cls, name: str) -> "ReidConfig":
        """"rga" (256x128, bilinear) or "pgfa" (384x128, bicubic)."""
        key = _checks.choice(name, "preset", ("rga", "pgfa"), "ReidConfig.preset")
        return cls((256, 128), "bilinear") if key == "rga" else cls((384, 128), "bicubic")

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> "ReidConfig":
        """From a manifest (or its `preprocess` record): the typed ImagePreprocess record's size, colour
        order, mean/std and resample filter (schema 1 manifests: see `deploykit.records`)."""
        pre = preprocess_of(manifest)
        if not isinstance(pre, ImagePreprocess):
            raise BadInputError("ReidConfig.from_manifest: the preprocess record has no 'size_hw'; is this a re-ID "
                                "model's manifest?")
        if pre.resample not in (Resample.BILINEAR, Resample.BICUBIC):
            raise BadInputError(f"ReidConfig.from_manifest: preprocess.resample={pre.resample.value!r}; a re-ID crop "
                                f"is resized whole (bilinear or bicubic); is this a pose model's manifest?")
        return cls(pre.size_hw, pre.resample.value, pre.color.value, pre.mean, pre.std)


def preprocess_reid(images: Any, config: ReidConfig, image_color: str = "bgr") -> np.ndarray:
    """Person crops -> network input `[N, 3, H, W]` float32.

    Args:
        images: one `[h, w, 3]` uint8 crop, an `[N, h, w, 3]` array, or a list of crops of any sizes.
        config: ReidConfig (`ReidConfig.preset("rga")` or `ReidConfig.from_manifest(engine.manifest)`).
        image_color: channel order of the crops: "bgr" (OpenCV, default) or "rgb".
    """
    where = "preprocess_reid"
    src = _checks.choice(image_color, "image_color", ("rgb", "bgr"), where)
    if isinstance(images, np.ndarray) and images.ndim in (2, 3):
        items = [images]
    else:
        try:
            items = list(images)
        except TypeError:
            raise BadInputError(f"{where}: images must be an image, an [N, H, W, 3] array or a list of "
                                f"images") from None
    h, w = config.size
    out = np.zeros((len(items), 3, h, w), np.float32)
    for i, im in enumerate(items):
        img = as_image(im, f"images[{i}]", where)
        if img.dtype != np.uint8:
            lo, hi = float(img.min()), float(img.max())
            if lo < 0 or hi > 255:
                raise BadInputError(f"{where}: images[{i}] has values in [{lo:g}, {hi:g}]; expected [0, 255]")
            img = np.rint(img).astype(np.uint8)
        img = convert_color(img, src, config.color)
        if img.shape[:2] != (h, w):
            img = pil_resize(img, (h, w), config.resample)
        out[i] = normalize(img, config.mean, config.std)
    return out


def box_crops(image: np.ndarray, rows: Any) -> list[np.ndarray]:
    """The pixels of each box `rows [N, >=4]` (x1, y1, x2, y2, ...) of `image [H, W, 3]`, widened to whole
    pixels and clipped to the image (`deploykit infer --boxes` and the Triton re-ID pre model)."""
    h, w = image.shape[:2]
    r = np.asarray(rows, np.float64)
    out = []
    for x1, y1, x2, y2 in (r[:, :4] if r.size else ()):
        a, b = int(max(0, np.floor(y1))), int(min(h, np.ceil(y2)))
        c, d = int(max(0, np.floor(x1))), int(min(w, np.ceil(x2)))
        out.append(image[a:b, c:d])
    return out


def average_flip(embeddings: Any, embeddings_flipped: Any) -> np.ndarray:
    """Flip-embedding averaging: `(f(x) + f(mirror(x))) / 2` (mirror inputs with `pose.flip_images`)."""
    where = "average_flip"
    a = _checks.array(embeddings, "embeddings", dtype=np.float32, where=where)
    b = _checks.array(embeddings_flipped, "embeddings_flipped", dtype=np.float32, where=where)
    if a.shape != b.shape:
        raise BadInputError(f"{where}: shapes {list(a.shape)} and {list(b.shape)} differ")
    return (a + b) * np.float32(0.5)


# -- PGFA ----------------------------------------------------------------------------------------
def _people(people: Any, where: str) -> Optional[np.ndarray]:
    if people is None:
        return None
    p = _checks.array(people, "people", ndim=(2, 3), dtype=np.float64, where=where)
    if p.ndim == 2:
        p = p[None] if p.size else p.reshape(0, 18, 3)
    if p.shape[1:] != (18, 3):
        raise BadInputError(f"{where}: people has shape {list(p.shape)}; expected [P, 18, 3] OpenPose-18 (x, y, "
                            f"score); convert COCO output with pose.coco17_to_openpose18")
    return p


def pgfa_heatmaps(people: Any, image_size: Sequence[int], out_size: Sequence[int] = (24, 8),
                  threshold: float = PGFA_CONF_THRESH) -> np.ndarray:
    """PGFA's 18 pose heatmaps (`AlphaPose/generate_heatmap.py`).

    The person with the most keypoints above `threshold` is used (first one on ties). A keypoint at
    or below the threshold, or with x or y exactly 0, gives an all-zero map; the others a Gaussian at
    `(int(x), int(y))` on the original image grid with **sigma = H * W / 1000** (upstream calls it
    "variance" and uses it as sigma). Each map is scaled by 255, truncated to 8 bits, resized to
    `out_size` with Pillow's bilinear filter and divided by 255.

    Args:
        people: `[P, 18, 3]` (or `[18, 3]`) OpenPose-18 keypoints (x, y, score) in image pixels of
            the re-ID crop; None (no pose file upstream) gives all ones, as do no people or no
            keypoint above the threshold (where upstream fails).
        image_size: (height, width) of the re-ID crop the keypoints refer to.
        out_size: (24, 8) for a 384x128 input (the backbone map).

    Returns:
        float32 `[18, oh, ow]` in [0, 1].
    """
    where = "pgfa_heatmaps"
    ih, iw = _checks.size_hw(image_size, "image_size", where)
    oh, ow = _checks.size_hw(out_size, "out_size", where)
    p = _people(people, where)
    ones = np.ones((18, oh, ow), np.float32)
    if p is None or p.shape[0] == 0:
        return ones
    counts = (p[:, :, 2] > threshold).sum(axis=1)
    if counts.max() == 0:
        return ones
    chosen = p[int(np.argmax(counts))].copy()  # strict `count > p_count`: the first maximum
    chosen[chosen[:, 2] <= threshold] = 0.0
    sigma = ih * iw / 1000.0
    ys, xs = np.mgrid[0:ih, 0:iw].astype(np.float64)
    out = np.zeros((18, oh, ow), np.float32)
    for j in range(18):
        if not chosen[j].all():  # upstream `final_p[j].all() == 0.`: any zero entry -> empty map
            continue
        cx, cy = np.trunc(chosen[j, 0]), np.trunc(chosen[j, 1])
        dist_sq = (xs - cx) * (xs - cx) + (ys - cy) * (ys - cy)
        g = np.exp(-(dist_sq / 2.0 / sigma / sigma))
        img8 = float_to_l(g * 255)
        out[j] = pil_resize(img8, (oh, ow), "bilinear").astype(np.float32) / np.float32(255)
    return out


def pgfa_part_visibility(people: Any, image_height: float, part_num: int = 3,
                         threshold: float = PGFA_CONF_THRESH) -> np.ndarray:
    """PGFA's part labels (`utils/part_label.py`): which horizontal stripes hold a confident keypoint.

    The person with the most keypoints above `threshold` is used (the *last* one on ties, as
    upstream's `>=`). Fewer than 3 such keypoints, no people, or `people=None` -> all ones. Otherwise
    stripe k is 1 when some keypoint y satisfies `k/P * H < y < (k+1)/P * H` (strict).

    Returns:
        float32 `[part_num]` of 0/1.
    """
    where = "pgfa_part_visibility"
    if not (np.isfinite(image_height) and image_height > 0):
        raise BadInputError(f"{where}: image_height must be > 0, got {image_height}")
    parts = int(part_num)
    if parts < 1:
        raise BadInputError(f"{where}: part_num must be >= 1, got {part_num}")
    p = _people(people, where)
    ones = np.ones(parts, np.float32)
    if p is None or p.shape[0] == 0:
        return ones
    counts = (p[:, :, 2] > threshold).sum(axis=1)
    best = int(len(counts) - 1 - np.argmax(counts[::-1]))  # last maximum
    pts = p[best][p[best][:, 2] > threshold]
    if pts.shape[0] < 3:
        return ones
    y = pts[:, 1]
    k = np.arange(parts, dtype=np.float64)
    lo = k / parts * image_height
    hi = (k + 1.0) / parts * image_height
    return ((y[None, :] > lo[:, None]) & (y[None, :] < hi[:, None])).any(axis=1).astype(np.float32)
