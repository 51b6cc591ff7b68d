"""Facts shared by the image models (re-ID, pose): the image input template and normalisation records.

The runtime applies `preprocess` from the manifest; these helpers only write the facts down once.
"""

from __future__ import annotations

from typing import Optional, Sequence

from ..constants import IMAGENET_MEAN, IMAGENET_STD
from ..records import ColorOrder, Crop, ImagePreprocess, Resample
from .registry import InputTemplate

# Seeded sample values for a normalised image: ImageNet normalisation maps [0, 255] to about [-2.1, 2.6].
NORMALISED_LOW, NORMALISED_HIGH = -2.0, 2.5


def image_input(h: int, w: int, name: str = "images", color: str = "RGB",
                norm: str = "ImageNet mean/std") -> InputTemplate:
    """A `[n, 3, h, w]` float32 normalised image batch (NCHW)."""
    return InputTemplate(name, ("batch", 3, h, w), "float32",
                         f"[n, 3, {h}, {w}] {color} image, /255 then {norm} (NCHW)",
                         low=NORMALISED_LOW, high=NORMALISED_HIGH)


def image_preprocess(h: int, w: int, *, resample: Resample, resize: str, color: str = "RGB",
                     mean: Sequence[float] = IMAGENET_MEAN, std: Optional[Sequence[float]] = IMAGENET_STD,
                     crop: Optional[Crop] = None, **extra) -> dict:
    """The manifest's `preprocess` record for an image model (`records.ImagePreprocess.to_json()`).

    Args:
        h: input height in pixels.
        w: input width in pixels.
        resample: how a crop becomes h x w (the runtime applies this).
        resize: the upstream transform in words, for the reader, e.g. "PIL bilinear, no crop".
        color: channel order the network expects, "RGB" (default) or "BGR".
        mean: subtracted from pixels / 255, in the channel order of `color`; default ImageNet's (RGB).
        std: divisor after the mean; None for mean-only normalisation. Default ImageNet's.
        crop: the top-down person crop (pose models).
        extra: further method facts (e.g. flip test, box scaling), recorded as given.
    """
    return ImagePreprocess((int(h), int(w)), ColorOrder(color.lower()), tuple(mean),
                           None if std is None else tuple(std), 1.0 / 255, resample, crop,
                           {"resize": resize, **extra}).to_json()
