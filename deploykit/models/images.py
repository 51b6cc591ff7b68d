"""Facts shared by the image models (re-ID, pose): the image input template and normalisation records.

The runtime applies `preprocess` from the manifest; these helpers only write the facts down once.
"""

from __future__ import annotations

from typing import Optional, Sequence

from .registry import InputTemplate

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB order, on pixels / 255
IMAGENET_STD = (0.229, 0.224, 0.225)
# Seeded sample values for a normalised image: ImageNet normalisation maps [0, 255] to about [-2.1, 2.6].
NORMALISED_LOW, NORMALISED_HIGH = -2.0, 2.5


def image_input(h: int, w: int, name: str = "images", color: str = "RGB",
                norm: str = "ImageNet mean/std") -> InputTemplate:
    """A `[n, 3, h, w]` float32 normalised image batch (NCHW)."""
    return InputTemplate(name, ("batch", 3, h, w), "float32",
                         f"[n, 3, {h}, {w}] {color} image, /255 then {norm} (NCHW)",
                         low=NORMALISED_LOW, high=NORMALISED_HIGH)


def image_preprocess(h: int, w: int, *, resize: str, color: str = "RGB",
                     mean: Sequence[float] = IMAGENET_MEAN, std: Optional[Sequence[float]] = IMAGENET_STD,
                     **extra) -> dict:
    """The manifest's `preprocess` record for an image model.

    Args:
        h: input height in pixels.
        w: input width in pixels.
        resize: how a crop becomes h x w, e.g. "PIL bilinear, no crop".
        color: channel order the network expects, "RGB" (default) or "BGR".
        mean: subtracted from pixels / 255, in the channel order of `color`; default ImageNet's (RGB).
        std: divisor after the mean; None for mean-only normalisation. Default ImageNet's.
        extra: further method facts (e.g. flip test, box scaling), recorded as given.
    """
    rec = {"kind": "image", "layout": "NCHW", "size_hw": [int(h), int(w)], "color": color, "scale": 1.0 / 255,
           "mean": [float(m) for m in mean], "std": None if std is None else [float(s) for s in std],
           "resize": resize}
    rec.update(extra)
    return rec
