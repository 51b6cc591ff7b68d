"""Image helpers for the runtime: reading, colour order, normalisation and a Pillow-exact resize.

The re-ID models were trained on images resized by Pillow (RGA: `RectScale`, bilinear; PGFA:
`transforms.Resize(interpolation=3)`, bicubic). Pillow's resize is a separable convolution with
antialiasing and fixed-point arithmetic, and OpenCV's resize is not the same (it does not widen the
filter when shrinking). `pil_resize` reproduces Pillow's 8-bit algorithm (coefficients, 22-bit
fixed point, horizontal pass first, clipping) in numpy, so Pillow is not a runtime dependency;
tests compare it with Pillow when Pillow is installed.

Pillow 13 (python-pillow/Pillow#9549) starts with the vertical pass when the height shrinks much
more than the width, which moves some pixels by a level or more; `pil_resize` keeps the
horizontal-first order of every Pillow the upstream models were trained with (<= 12).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import BadInputError
from . import _checks

_PRECISION_BITS = 32 - 8 - 2  # Pillow's Resample.c, 8 bits per channel


def _bilinear(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _bicubic(x: np.ndarray) -> np.ndarray:
    a = -0.5
    x = np.abs(x)
    return np.where(x < 1.0, ((a + 2.0) * x - (a + 3.0)) * x * x + 1,
                    np.where(x < 2.0, (((x - 5) * x + 8) * x - 4) * a, 0.0))


_FILTERS = {"bilinear": (_bilinear, 1.0), "bicubic": (_bicubic, 2.0)}


@functools.lru_cache(maxsize=64)
def _pil_coeffs(in_size: int, out_size: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`: per output pixel, the first input tap
    and `ksize` integer weights (22-bit fixed point). Returns (taps [out, ksize], weights [out, ksize])."""
    filt, support0 = _FILTERS[kind]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = support0 * filterscale
    ksize = int(np.ceil(support)) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    xmin = np.maximum((center - support + 0.5).astype(np.int64), 0)  # C (int) truncation, then clamp
    xmax = np.minimum((center + support + 0.5).astype(np.int64), in_size)
    taps = xmin[:, None] + np.arange(ksize)[None, :]
    valid = taps < xmax[:, None]
    w = np.where(valid, filt((taps - center[:, None] + 0.5) / filterscale), 0.0)
    ww = w.sum(axis=1, keepdims=True)
    w = np.where(ww != 0.0, w / np.where(ww != 0.0, ww, 1.0), w)
    scaled = w * (1 << _PRECISION_BITS)
    k = np.where(w < 0, np.trunc(scaled - 0.5), np.trunc(scaled + 0.5)).astype(np.int64)
    taps, k = np.minimum(taps, in_size - 1), np.where(valid, k, 0)
    taps.flags.writeable = False  # cached: shared between calls
    k.flags.writeable = False
    return taps, k


def _pil_pass(img: np.ndarray, coeffs: tuple[np.ndarray, np.ndarray], axis: int) -> np.ndarray:
    """One 8-bit convolution pass along `axis` (0 = rows/vertical, 1 = columns/horizontal).

    Pillow accumulates `pixel * int_weight` in 32-bit ints from 2**21 and shifts right by 22. The
    taps are gathered and summed in int64 here, which is exact.
    """
    taps, k = coeffs
    x = np.moveaxis(img, axis, -1)
    acc = np.einsum("...ok,ok->...o", x[..., taps].astype(np.int64), k) + (1 << (_PRECISION_BITS - 1))
    out = np.clip(acc >> _PRECISION_BITS, 0, 255)  # clip8: floor shift, saturate
    return np.moveaxis(out.astype(np.uint8), -1, axis)


def pil_resize(image: np.ndarray, size_hw: Sequence[int], resample: str = "bilinear") -> np.ndarray:
    """Resize a uint8 image exactly as Pillow's `Image.resize((w, h), BILINEAR|BICUBIC)` does.

    Args:
        image: uint8 `[H, W]` or `[H, W, C]`.
        size_hw: output (height, width).
        resample: "bilinear" or "bicubic".

    Returns:
        uint8 `[h, w]` or `[h, w, C]`.
    """
    where = "pil_resize"
    img = _checks.array(image, "image", ndim=(2, 3), where=where)
    if img.dtype != np.uint8:
        raise BadInputError(f"{where}: image has dtype {img.dtype}; Pillow's 8-bit resize needs uint8 "
                            f"(convert with np.clip(x, 0, 255).astype(np.uint8))")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise BadInputError(f"{where}: image has shape {list(img.shape)}; it needs at least one pixel")
    h, w = _checks.size_hw(size_hw, "size_hw", where)
    kind = _checks.choice(resample, "resample", tuple(_FILTERS), where)
    out = img
    if w != img.shape[1]:  # Pillow: horizontal pass first
        out = _pil_pass(out, _pil_coeffs(img.shape[1], w, kind), axis=1)
    if h != img.shape[0]:
        out = _pil_pass(out, _pil_coeffs(img.shape[0], h, kind), axis=0)
    return np.ascontiguousarray(out)


def float_to_l(values: np.ndarray) -> np.ndarray:
    """Pillow's float ('F') to 8-bit ('L') conversion: float32, truncate toward zero, clip to [0, 255]."""
    v = np.asarray(values, dtype=np.float32)
    return np.clip(np.trunc(np.nan_to_num(v, nan=0.0)), 0, 255).astype(np.uint8)


def convert_color(image: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Reorder the channels of an `[..., 3]` image between "rgb" and "bgr" (a no-op when equal)."""
    s = _checks.choice(src, "src", ("rgb", "bgr"), "convert_color")
    d = _checks.choice(dst, "dst", ("rgb", "bgr"), "convert_color")
    return image if s == d else image[..., ::-1]


def as_image(image, name: str = "image", where: str = "") -> np.ndarray:
    """Validate an `[H, W, 3]` uint8 (or float in [0, 255]) colour image; gray `[H, W]` is repeated to 3."""
    img = _checks.array(image, name, ndim=(2, 3), where=where)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] != 3:
        raise BadInputError(f"{where + ': ' if where else ''}{name} has shape {list(img.shape)}; expected "
                            f"[H, W, 3] (a colour image, channels last)")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise BadInputError(f"{where + ': ' if where else ''}{name} has shape {list(img.shape)}; it is empty")
    if img.dtype == np.bool_:
        img = img.astype(np.uint8) * 255
    return img


def normalize(image_hwc: np.ndarray, mean: Sequence[float], std: Sequence[float] | None,
              scale: float = 1.0 / 255) -> np.ndarray:
    """`(image * scale - mean) / std` per channel, as float32 `[3, H, W]` (std None: mean only)."""
    x = image_hwc.astype(np.float32) * np.float32(scale)
    x = x - np.asarray(mean, np.float32)
    if std is not None:
        x = x / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def load_image(path: str | os.PathLike, color: str = "bgr") -> np.ndarray:
    """Read an image file as uint8 `[H, W, 3]` in `color` order ("bgr" as OpenCV reads, or "rgb")."""
    import cv2

    p = Path(path)
    img = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if img is None:
        raise BadInputError(f"cannot read image {p} (missing, or not an image format OpenCV reads)")
    return np.ascontiguousarray(convert_color(img, "bgr", color))
