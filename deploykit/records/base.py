"""The records' shared parts: enums with their aliases, field readers that name the field, `_Record`."""

from __future__ import annotations

import dataclasses
import enum
from types import MappingProxyType
from typing import Any, Mapping, Optional, Sequence, Union

from ..errors import BadInputError

RECORDS_SINCE = 2  # the first schema_version whose records carry the typed fields


class Resample(str, enum.Enum):
    """How a crop becomes the network input size."""

    BILINEAR = "bilinear"  # Pillow BILINEAR resize of the whole crop (RGA RectScale)
    BICUBIC = "bicubic"  # Pillow BICUBIC (PGFA `Resize(interpolation=3)`)
    AFFINE_LINEAR = "affine_linear"  # top-down pose: affine warp of the box, bilinear (cv2 INTER_LINEAR)


class ColorOrder(str, enum.Enum):
    RGB = "rgb"
    BGR = "bgr"


class CropMethod(str, enum.Enum):
    CENTER_SCALE = "center_scale"  # HRNet `_xywh2cs` / AlphaPose `_box_to_center_scale`, affine warp
    ALPHAPOSE_V0 = "alphapose_v0"  # old AlphaPose `crop_from_dets`


class Decoder(str, enum.Enum):
    QUARTER = "quarter"  # argmax + quarter-pixel offset (HRNet, current AlphaPose)
    DARK = "dark"
    ALPHAPOSE_V0 = "alphapose_v0"  # old AlphaPose `getPrediction`
    ARGMAX = "argmax"
    PRTR = "prtr"  # keypoint queries, Hungarian matching


class Metric(str, enum.Enum):
    """Embedding metrics; the names of `runtime.match.metrics`' registry (a test keeps them equal)."""

    EUCLIDEAN_PER_PART_MEAN = "euclidean_per_part_mean"
    COSINE_PER_PART_MEAN = "cosine_per_part_mean"
    COSINE = "cosine"
    EUCLIDEAN = "euclidean"
    PGFA = "pgfa"


# Other names for the same member: upstream config names and what schema 1 manifests wrote.
ALIASES: dict[type, dict[str, str]] = {
    Decoder: {"hrnet": "quarter", "alphapose": "quarter", "prtr_hungarian": "prtr"},
    CropMethod: {"center_scale_affine": "center_scale", "alphapose_v0_crop": "alphapose_v0"},
    Metric: {"euc": "euclidean_per_part_mean", "cos": "cosine_per_part_mean", "pgfa_visibility_weighted": "pgfa"},
}


def member(cls: type, value: Any, field: str) -> Any:
    """`value` (a member, its value or an alias; any case) as a member of enum `cls`."""
    if isinstance(value, cls):
        return value
    key = str(value).lower()
    key = ALIASES.get(cls, {}).get(key, key)
    try:
        return cls(key)
    except ValueError:
        raise BadInputError(f"manifest {field}={value!r} is not one of {[m.value for m in cls]}; re-export the "
                            f"model or upgrade deploykit") from None


# -- field readers: each names the field in its error -------------------------------------------
def _missing(field: str) -> BadInputError:
    return BadInputError(f"manifest {field} is missing; schema {RECORDS_SINCE} manifests record it: re-export the model")


def _pos_int(v: Any, field: str, zero_ok: bool = False) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v or v < (0 if zero_ok else 1):
        raise BadInputError(f"manifest {field}={v!r} must be a {'non-negative' if zero_ok else 'positive'} integer")
    return int(v)


def _pos_float(v: Any, field: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or v != v or v == float("inf"):
        raise BadInputError(f"manifest {field}={v!r} must be a positive finite number")
    return float(v)


def _floats(v: Any, n: int, field: str, positive: bool = False) -> tuple[float, ...]:
    try:
        out = tuple(float(x) for x in v)
    except (TypeError, ValueError):
        raise BadInputError(f"manifest {field}={v!r} must be a list of {n} numbers") from None
    if len(out) != n or (positive and min(out) <= 0):
        raise BadInputError(f"manifest {field}={list(out)} must have {n} {'positive ' if positive else ''}entries")
    return out


def _hw(v: Any, field: str) -> tuple[int, int]:
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise BadInputError(f"manifest {field}={v!r} must be [height, width]")
    return _pos_int(v[0], f"{field}[0]"), _pos_int(v[1], f"{field}[1]")


def _pairs(v: Any, field: str) -> tuple[tuple[int, int], ...]:
    try:
        out = tuple((int(a), int(b)) for a, b in v)
    except (TypeError, ValueError):
        raise BadInputError(f"manifest {field}={v!r} must be a list of [a, b] joint index pairs") from None
    if any(a < 0 or b < 0 for a, b in out):
        raise BadInputError(f"manifest {field} has a negative joint index")
    return out


def _bool(v: Any, field: str) -> bool:
    if not isinstance(v, bool):
        raise BadInputError(f"manifest {field}={v!r} must be true or false")
    return v


def _get(d: Mapping[str, Any], key: str, where: str, strict: bool, v1_default: Any) -> Any:
    """`d[key]`; when absent, the schema 1 value (`v1_default`, called if callable), or an error if strict."""
    if key in d:
        return d[key]
    if strict:
        raise _missing(f"{where}.{key}")
    return v1_default() if callable(v1_default) else v1_default


def _extra(d: Mapping[str, Any], known: Sequence[str]) -> Mapping[str, Any]:
    return MappingProxyType({k: v for k, v in d.items() if k not in known})


def _plain(v: Any) -> Any:
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    return v


class _Record:
    """to_json: kind, the typed fields (enums as values, tuples as lists, None-valued optionals left out), extra."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind} if hasattr(self, "kind") else {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("extra", "kind"):
                continue
            if isinstance(v, _Record):
                v = v.to_json()
            elif v is None and f.name not in ("std",):
                continue
            out[f.name] = _plain(v)
        out.update(_plain(dict(getattr(self, "extra", {}))))
        return out




def frozen_extra() -> Mapping[str, Any]:
    return MappingProxyType({})
