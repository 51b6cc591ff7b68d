"""Preprocessing records: image (re-ID, pose) and silhouette (gait) inputs."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Union

from ..constants import IMAGENET_MEAN, IMAGENET_STD
from ..errors import BadInputError
from .base import (RECORDS_SINCE, ColorOrder, CropMethod, Resample, _bool, _extra, _floats, _get, _hw, _pos_float,
                   _pos_int, _Record, frozen_extra, member)


# -- preprocessing ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Crop(_Record):
    """Top-down crop of a person box (pose models).

    Attributes:
        method: CropMethod.
        scale_mult: box padded to the input aspect, then both sides times this (center_scale).
        pixel_std: HRNet's scale unit (200); AlphaPose's center/scale crop uses 1.
        enlarge: old AlphaPose's box enlargement (alphapose_v0).
    """

    method: CropMethod = CropMethod.CENTER_SCALE
    scale_mult: float = 1.25
    pixel_std: float = 200.0
    enlarge: float = 0.3
    extra: Mapping[str, Any] = dataclasses.field(default_factory=frozen_extra)

    @classmethod
    def from_json(cls, d: Any, where: str = "preprocess.crop", strict: bool = False) -> "Crop":
        if not isinstance(d, Mapping):
            raise BadInputError(f"manifest {where}={d!r} must be an object")
        method = member(CropMethod, _get(d, "method", where, True, None), f"{where}.method")
        return cls(method, _pos_float(d.get("scale_mult", 1.25), f"{where}.scale_mult"),
                   _pos_float(d.get("pixel_std", 200.0 if method is CropMethod.CENTER_SCALE else 1.0),
                              f"{where}.pixel_std"),
                   _pos_float(d.get("enlarge", 0.3), f"{where}.enlarge"),
                   _extra(d, ("method", "scale_mult", "pixel_std", "enlarge")))


@dataclasses.dataclass(frozen=True)
class ImagePreprocess(_Record):
    """An image model's input: `[n, 3, H, W]` float32, `(pixels * scale - mean) / std` per channel.

    Attributes:
        size_hw: network input (height, width).
        color: channel order the network expects.
        mean, std: per network channel (in `color` order), after `scale`; std None = mean only.
        scale: 1/255.
        resample: how a crop becomes `size_hw` (Resample).
        crop: the top-down person crop (pose), None for re-ID crops resized whole.
    """

    size_hw: tuple[int, int]
    color: ColorOrder = ColorOrder.RGB
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: Optional[tuple[float, ...]] = IMAGENET_STD
    scale: float = 1.0 / 255
    resample: Resample = Resample.BILINEAR
    crop: Optional[Crop] = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=frozen_extra)
    kind: str = "image"
    layout: str = "NCHW"

    _KNOWN = ("kind", "layout", "size_hw", "color", "mean", "std", "scale", "resample", "crop")

    @classmethod
    def from_json(cls, d: Mapping[str, Any], where: str = "preprocess", strict: bool = False) -> "ImagePreprocess":
        if "size_hw" not in d:
            raise BadInputError(f"manifest {where} has no 'size_hw'; is this an image model's manifest?")
        crop = Crop.from_json(d["crop"], f"{where}.crop", strict) if d.get("crop") else None
        std = _get(d, "std", where, strict, IMAGENET_STD)
        return cls(_hw(d["size_hw"], f"{where}.size_hw"),
                   member(ColorOrder, _get(d, "color", where, strict, "rgb"), f"{where}.color"),
                   _floats(_get(d, "mean", where, strict, IMAGENET_MEAN), 3, f"{where}.mean"),
                   None if std is None else _floats(std, 3, f"{where}.std", positive=True),
                   _pos_float(_get(d, "scale", where, strict, 1.0 / 255), f"{where}.scale"),
                   member(Resample, _get(d, "resample", where, strict, lambda: _v1_resample(d)), f"{where}.resample"),
                   crop, _extra(d, cls._KNOWN))


def _v1_resample(d: Mapping[str, Any]) -> Resample:
    """Schema 1 said it in prose (`resize`: "PIL Resize((384, 128), BICUBIC)"); a crop meant the affine warp."""
    if d.get("crop"):
        return Resample.AFFINE_LINEAR
    return Resample.BICUBIC if "bicubic" in str(d.get("resize", "")).lower() else Resample.BILINEAR


@dataclasses.dataclass(frozen=True)
class SilhouettePreprocess(_Record):
    """A gait model's silhouettes: OpenGait pretreatment to `img_size`, cut `cutting` px each side, / divisor.

    Attributes:
        img_size: pretreated frame height (and width before cutting).
        cutting: columns removed each side; None = upstream's `int(W // 64) * 10`.
        divisor: 255.
        sampler: OpenGait's test sampler ("all_ordered").
        frames_limit: `frames_all_limit` (first N frames), None for all.
        stored_as_is: frames are stored pretreated (GREW) and kept unchanged.
        kind: "silhouette", or "gaitedge" (silhouettes plus RGB crops and box ratios, in `extra`).
    """

    img_size: int = 64
    cutting: Optional[int] = None
    divisor: float = 255.0
    sampler: str = "all_ordered"
    frames_limit: Optional[int] = None
    stored_as_is: bool = False
    extra: Mapping[str, Any] = dataclasses.field(default_factory=frozen_extra)
    kind: str = "silhouette"

    _KNOWN = ("kind", "img_size", "cutting", "divisor", "sampler", "frames_limit", "stored_as_is")

    @classmethod
    def from_json(cls, d: Mapping[str, Any], where: str = "preprocess",
                  strict: bool = False) -> "SilhouettePreprocess":
        kind = d.get("kind", "silhouette")
        if kind not in ("silhouette", "gaitedge"):
            raise BadInputError(f"manifest {where}.kind={kind!r} is not 'silhouette' or 'gaitedge'")
        sils = d.get("sils") if isinstance(d.get("sils"), Mapping) else {}  # schema 1 GaitEdge kept them here
        cutting = _get(d, "cutting", where, strict, sils.get("cutting"))
        limit = d.get("frames_limit")
        return cls(_pos_int(_get(d, "img_size", where, strict, 64), f"{where}.img_size"),
                   None if cutting is None else _pos_int(cutting, f"{where}.cutting", zero_ok=True),
                   _pos_float(_get(d, "divisor", where, strict, sils.get("divisor", 255.0)), f"{where}.divisor"),
                   str(_get(d, "sampler", where, strict, "all_ordered")),
                   None if limit is None else _pos_int(limit, f"{where}.frames_limit"),
                   _bool(d.get("stored_as_is", False), f"{where}.stored_as_is"), _extra(d, cls._KNOWN), kind)


Preprocess = Union[ImagePreprocess, SilhouettePreprocess]


def strict_for(manifest: Mapping[str, Any]) -> bool:
    """Whether `manifest` is of a schema whose records must carry the typed fields (a bare record: no)."""
    v = manifest.get("schema_version")
    return isinstance(v, int) and not isinstance(v, bool) and v >= RECORDS_SINCE


def preprocess_of(manifest: Mapping[str, Any]) -> Optional[Preprocess]:
    """The typed `preprocess` record of a manifest (or a dict holding it, or the record itself); None if empty."""
    if isinstance(manifest, _Record):
        return manifest
    d = manifest.get("preprocess", manifest)
    if isinstance(d, _Record):
        return d
    if not isinstance(d, Mapping):
        raise BadInputError(f"manifest preprocess={d!r} must be an object; re-export the model")
    if not d or d is manifest and "size_hw" not in d and "img_size" not in d and "kind" not in d:
        return None
    strict = strict_for(manifest)
    kind = d.get("kind", "image" if "size_hw" in d else "silhouette")
    if kind == "image":
        return ImagePreprocess.from_json(d, strict=strict)
    if kind in ("silhouette", "gaitedge"):
        return SilhouettePreprocess.from_json(d, strict=strict)
    raise BadInputError(f"manifest preprocess.kind={kind!r} is not one of ['image', 'silhouette', 'gaitedge']; "
                        f"upgrade deploykit or re-export the model")
