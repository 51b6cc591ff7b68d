"""Gait pre-processing as OpenGait does it: silhouette pretreatment, cutting, sampling, extra inputs.

Pretreatment (`datasets/pretreatment.py imgs2pickle`, per grayscale frame):

1. drop the frame when `img.sum() <= 10000` (about 39 white pixels);
2. keep the rows between the first and the last row with foreground;
3. resize to height `img_size` (64; 128 for GLN on CASIA-B) keeping the ratio, width
   `int(img_size * w / h)`, `cv2.INTER_CUBIC`;
4. x-center = first column where the cumulative column sum exceeds half the total; drop the frame
   when that is column 0 or missing (upstream's `if not x_center`);
5. take `img_size` columns centred there, padding `img_size // 2` zero columns on both sides first
   when the window leaves the image; store uint8 `[T, img_size, img_size]`.

Then the test transform `BaseSilCuttingTransform`: remove `int(W // 64) * 10` columns each side
(64 -> 44, 128 -> 88) and divide by 255, giving float32 in [0, 1]. The test sampler is
`all_ordered`: every frame in order, optionally only the first `frames_all_limit`.

Extra inputs: SMPLGait takes the per-frame 85-d SMPL vector (`smpls [n, s, 85]`, no transform);
GaitEdge takes `ratios [n, s]` (box width / height), `rgbs [n, s, 3, 128, 128]` normalised by
`(x - 255 * mean) / (255 * std)` (ImageNet) and `sils [n, s, 128, 128]` / 255.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from ..constants import IMAGENET_MEAN, IMAGENET_STD
from ..errors import BadInputError
from ..records import SilhouettePreprocess, preprocess_of
from . import _checks

log = logging.getLogger(__name__)

MIN_FRAME_SUM = 10000  # upstream: `if img.sum() <= 10000: continue`

Source = Union[str, os.PathLike, np.ndarray, Sequence[np.ndarray]]


@dataclasses.dataclass
class Pretreated:
    """Pretreated silhouettes of one sequence.

    Attributes:
        frames: uint8 `[T, S, S]` (S = img_size), the kept frames in order.
        kept: `[T]` index of each kept frame in the input sequence (align SMPL or RGB data with it).
        dropped: `{input index: reason}` for every frame that was left out.
        img_size: S.
    """

    frames: np.ndarray
    kept: np.ndarray
    dropped: dict[int, str]
    img_size: int

    def __len__(self) -> int:
        return int(self.frames.shape[0])


def pretreat_frame(img: np.ndarray, img_size: int = 64) -> tuple[Optional[np.ndarray], str]:
    """One grayscale uint8 frame -> uint8 `[img_size, img_size]`, or (None, reason) when upstream drops it."""
    import cv2

    total = int(img.sum(dtype=np.int64))
    if total <= MIN_FRAME_SUM:
        return None, f"sum {total} <= {MIN_FRAME_SUM} (no silhouette)"
    rows = np.flatnonzero(img.sum(axis=1, dtype=np.int64) != 0)
    img = img[rows[0]: rows[-1] + 1, :]
    new_w = int(img_size * (img.shape[1] / img.shape[0]))
    if new_w < 1:
        return None, f"silhouette {img.shape[1]} px wide and {img.shape[0]} px tall resizes to width 0"
    img = cv2.resize(img, (new_w, img_size), interpolation=cv2.INTER_CUBIC)
    if img.ndim != 2:  # cv2 drops a trailing singleton; never expected here
        img = img.reshape(img_size, new_w)
    col = img.sum(axis=0, dtype=np.int64).cumsum()
    half = img.sum(dtype=np.int64) / 2
    above = np.flatnonzero(col > half)
    x_center = int(above[0]) if above.size else None
    if not x_center:  # upstream: `if not x_center` also drops a center at column 0
        return None, "no x-center (the silhouette vanished after resizing, or centres at column 0)"
    half_width = img_size // 2
    left, right = x_center - half_width, x_center + half_width
    if left <= 0 or right >= img.shape[1]:
        left += half_width
        right += half_width
        pad = np.zeros((img.shape[0], half_width), img.dtype)
        img = np.concatenate([pad, img, pad], axis=1)
    return img[:, left:right].astype(np.uint8), ""


def _to_uint8(a: np.ndarray, index: int, value_range: float) -> np.ndarray:
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if a.dtype == np.uint8 and value_range == 255:
        return a
    lo, hi = float(a.min()), float(a.max())
    if lo < 0 or hi > value_range:
        raise BadInputError(f"pretreat_silhouettes: frame {index} has values in [{lo:g}, {hi:g}]; silhouettes must "
                            f"be in [0, {value_range:g}] (pass value_range=1 for [0, 1] masks)")
    return np.rint(a.astype(np.float64) * (255.0 / value_range)).astype(np.uint8)


COLOUR_SPREAD = 32  # channel difference above which a pixel is coloured (video compression stays below)


def to_gray(a: np.ndarray, name: str, threshold: Optional[float] = None) -> np.ndarray:
    """A `[H, W, 3]` BGR (or `[H, W, 1]`) silhouette frame -> `[H, W]` gray uint8, refusing real colour.

    A gray image saved as RGB (channels equal, up to video compression) becomes one channel. A
    coloured frame (e.g. a red background, which gray conversion turns into 76, not 0) is refused
    unless `threshold` is given: then its gray value > threshold becomes 255, the rest 0.
    """
    import cv2

    if a.ndim == 2:
        return a
    if a.shape[2] == 1:
        return a[..., 0]
    bgr = np.ascontiguousarray(a[..., :3])
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if threshold is not None:
        return np.where(gray > threshold, 255, 0).astype(np.uint8)
    c = bgr.astype(np.int16)
    spread = np.maximum(np.abs(c[..., 0] - c[..., 1]), np.abs(c[..., 1] - c[..., 2]))
    coloured = float((spread > COLOUR_SPREAD).mean())
    if coloured > 0.01:
        raise BadInputError(f"silhouette {name} is a colour image ({coloured:.0%} of its pixels coloured); silhouettes "
                            f"are white-on-black masks: convert it, or pass --sil-threshold T (threshold=T) to take "
                            f"gray > T as the person")
    return gray


def _as_gray_uint8(frame: Any, index: int, value_range: float, threshold: Optional[float] = None) -> np.ndarray:
    where = "pretreat_silhouettes"
    a = _checks.array(frame, f"frame {index}", ndim=(2, 3), where=where)
    if a.ndim == 3 and a.shape[2] not in (1, 3, 4):
        raise BadInputError(f"{where}: frame {index} has shape {list(a.shape)}; expected [H, W] grayscale")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise BadInputError(f"{where}: frame {index} has shape {list(a.shape)}; it is empty")
    a = _to_uint8(a, index, value_range)
    return to_gray(a, f"frame {index}", threshold)


def read_frames(folder: Union[str, os.PathLike], threshold: Optional[float] = None
                ) -> tuple[list[np.ndarray], list[str]]:
    """Gray frames of a folder: its `*.png` files sorted by name, without `gei.png` (as upstream).

    Colour files are refused (or thresholded with `threshold`), see `to_gray`.
    """
    import cv2

    d = Path(folder)
    if not d.is_dir():
        raise BadInputError(f"silhouette folder {d} does not exist or is not a folder")
    paths = sorted(p for p in d.glob("*.png") if p.name != "gei.png")
    if not paths:
        raise BadInputError(f"{d} holds no .png silhouettes")
    frames = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise BadInputError(f"cannot read silhouette {p} (not an image OpenCV reads)")
        if img.dtype != np.uint8:
            raise BadInputError(f"silhouette {p} is {img.dtype}; 8-bit masks are expected")
        frames.append(to_gray(img, str(p), threshold))
    return frames, [p.name for p in paths]


def pretreat_silhouettes(source: Source, img_size: int = 64, *, value_range: float = 255,
                         stored_as_is: bool = False, threshold: Optional[float] = None) -> Pretreated:
    """OpenGait pretreatment of one sequence.

    Args:
        source: a folder of PNG silhouettes (sorted by name), a `[T, H, W]` array, or a list of
            `[H, W]` frames (sizes may differ). uint8 in [0, 255] as upstream reads them; bool
            masks and other numeric arrays in [0, value_range] are accepted.
        img_size: 64 (default) or 128 (GLN on CASIA-B); any size >= 2 works.
        value_range: the white value of non-uint8 input (1 for [0, 1] masks).
        stored_as_is: GREW: frames are already `img_size` square and are kept unchanged.
        threshold: binarise colour frames at gray > threshold; None (default) refuses colour frames.

    Returns:
        Pretreated with uint8 frames `[T, img_size, img_size]` (T may be 0: check `dropped`).
    """
    where = "pretreat_silhouettes"
    size = int(img_size)
    if size < 2:
        raise BadInputError(f"{where}: img_size must be >= 2, got {img_size}")
    if not value_range > 0:
        raise BadInputError(f"{where}: value_range must be > 0, got {value_range}")
    if isinstance(source, (str, os.PathLike)):
        frames, _ = read_frames(source, threshold)
    elif isinstance(source, np.ndarray):
        if source.ndim not in (3, 4):
            raise BadInputError(f"{where}: a silhouette array must be [T, H, W], got shape {list(source.shape)}")
        frames = list(source)
    else:
        try:
            frames = list(source)
        except TypeError:
            raise BadInputError(f"{where}: source must be a folder, a [T, H, W] array or a list of frames, "
                                f"got {type(source).__name__}") from None
    out, kept, dropped = [], [], {}
    for i, fr in enumerate(frames):
        g = _as_gray_uint8(fr, i, value_range, threshold)
        if stored_as_is:
            if g.shape != (size, size):
                raise BadInputError(f"{where}: stored_as_is needs {size}x{size} frames, frame {i} is "
                                    f"{g.shape[0]}x{g.shape[1]}")
            res, why = g, ""
        else:
            res, why = pretreat_frame(g, size)
        if res is None:
            dropped[i] = why
            continue
        out.append(res)
        kept.append(i)
    if dropped:
        log.info("pretreatment dropped %d of %d frames", len(dropped), len(frames))
    arr = np.stack(out) if out else np.zeros((0, size, size), np.uint8)
    return Pretreated(arr, np.asarray(kept, np.int64), dropped, size)


def cut_and_scale(frames: Any, cutting: Optional[int] = None, divisor: float = 255.0) -> np.ndarray:
    """`BaseSilCuttingTransform`: drop `cutting` columns each side (default `int(W // 64) * 10`), / divisor.

    Args:
        frames: `[T, H, W]` pretreated silhouettes (uint8).
        cutting: columns removed on each side; None = upstream's `int(W // 64) * 10`.
        divisor: 255.

    Returns:
        float32 `[T, H, W - 2 * cutting]`.
    """
    where = "cut_and_scale"
    x = _checks.array(frames, "frames", ndim=3, where=where)
    c = int(x.shape[-1] // 64) * 10 if cutting is None else int(cutting)
    if c < 0 or 2 * c >= x.shape[-1]:
        raise BadInputError(f"{where}: cutting {c} px each side leaves nothing of width {x.shape[-1]}")
    if c:
        x = x[..., c:-c]
    return (x.astype(np.float32) / np.float32(divisor)).astype(np.float32)


def sample_frames(num_frames: int, limit: Optional[int] = None) -> np.ndarray:
    """OpenGait's test sampler `all_ordered`: indices of every frame in order, the first `limit` if set."""
    n = int(num_frames)
    if n < 0:
        raise BadInputError(f"sample_frames: num_frames must be >= 0, got {num_frames}")
    if limit is not None and int(limit) < 1:
        raise BadInputError(f"sample_frames: limit must be >= 1 (frames_all_limit), got {limit}")
    return np.arange(n if limit is None else min(n, int(limit)))


def fit_frames(num_frames: int, length: int, policy: str = "first") -> np.ndarray:
    """Frame indices that fill an engine with a static `length` frames.

    OpenGait runs the whole sequence; an engine has a fixed frame count, so a sequence must be cut or
    repeated. Longer sequences: "first" keeps the first `length` (as `frames_all_limit`),
    "uniform" takes `length` evenly spaced frames in order. Shorter ones are repeated cyclically
    (0, 1, .., T-1, 0, 1, ..), which leaves set-pooling models (GaitSet, GaitBase: max over frames)
    unchanged; models with temporal convolutions (GaitPart, GaitGL) see the repeat. Re-export with
    `--frames T` to run a sequence exactly.
    """
    where = "fit_frames"
    n, s = int(num_frames), int(length)
    p = _checks.choice(policy, "policy", ("first", "uniform"), where)
    if n < 1:
        raise BadInputError(f"{where}: the sequence has no frames (all dropped by pretreatment?)")
    if s < 1:
        raise BadInputError(f"{where}: length must be >= 1, got {length}")
    if n >= s:
        return np.arange(s) if p == "first" else np.floor(np.arange(s) * (n / s)).astype(np.int64)
    return np.arange(s) % n


def silhouette_record(preprocess: Any) -> SilhouettePreprocess:
    """The typed silhouette record of a manifest, its `preprocess` record (dict or record), or None
    (OpenGait's defaults: 64 px, upstream cutting, /255)."""
    rec = preprocess_of(preprocess) if preprocess else None
    if rec is None:
        return SilhouettePreprocess()
    if not isinstance(rec, SilhouettePreprocess):
        raise BadInputError(f"the preprocess record is of kind {rec.kind!r}, not a silhouette record; is this a "
                            f"gait model's manifest?")
    return rec


def silhouette_clip(source: Source, preprocess: Optional[Mapping[str, Any]] = None, *,
                    frames: Optional[int] = None, limit: Optional[int] = None, policy: str = "first",
                    value_range: float = 255) -> tuple[np.ndarray, Pretreated]:
    """Raw silhouettes -> the engine's `sils` input `[1, s, H, W]` float32.

    Args:
        source: folder, array or list of frames (see `pretreat_silhouettes`).
        preprocess: the manifest's `preprocess` record (`img_size`, `cutting`, `divisor`), e.g.
            `engine.manifest["preprocess"]`; default 64 px, 10 px cutting, /255.
        frames: the engine's static frame count (`engine.inputs[0].shape[1]`); None keeps all.
        limit: `frames_all_limit` (first N frames) before fitting; default the record's `frames_limit`.
        policy: how to fit `frames`: "first" or "uniform" (see `fit_frames`).
        value_range: white value of non-uint8 input.

    Returns:
        (clip `[1, s, H, W]` float32, the Pretreated record for frame bookkeeping).
    """
    pre = silhouette_record(preprocess)
    pt = pretreat_silhouettes(source, pre.img_size, value_range=value_range, stored_as_is=pre.stored_as_is)
    if len(pt) == 0:
        reasons = sorted(set(pt.dropped.values()))[:3]
        raise BadInputError(f"silhouette_clip: every frame was dropped by the pretreatment ({len(pt.dropped)} "
                            f"frames; e.g. {reasons}); silhouettes must be white (255) on black")
    if limit is None and pre.frames_limit:
        limit = pre.frames_limit
    idx = sample_frames(len(pt), limit)
    if frames is not None:
        idx = idx[fit_frames(len(idx), frames, policy)]
    clip = cut_and_scale(pt.frames[idx], pre.cutting, pre.divisor)
    return clip[None], dataclasses.replace(pt, frames=pt.frames[idx], kept=pt.kept[idx])


def smplgait_inputs(sils: np.ndarray, smpls: Any, kept: Optional[np.ndarray] = None) -> dict[str, np.ndarray]:
    """SMPLGait feeds: `sils [1, s, 64, 44]` and `smpls [1, s, 85]` (no transform, as upstream).

    Args:
        sils: the clip from `silhouette_clip` (`[1, s, 64, 44]` or `[s, 64, 44]`).
        smpls: `[T0, 85]` SMPL vectors of the *raw* sequence (one per input frame).
        kept: the `Pretreated.kept` indices of the clip's frames, to align the SMPL rows; None when
            `smpls` already has one row per clip frame.
    """
    where = "smplgait_inputs"
    s = _checks.array(sils, "sils", ndim=(3, 4), dtype=np.float32, where=where)
    if s.ndim == 3:
        s = s[None]
    p = _checks.array(smpls, "smpls", ndim=2, dtype=np.float32, where=where)
    if p.shape[1] != 85:
        raise BadInputError(f"{where}: smpls has shape {list(p.shape)}; expected [T, 85] (SMPL pose, shape, camera)")
    if kept is not None:
        k = np.asarray(kept, np.int64)
        if k.size and (k.min() < 0 or k.max() >= p.shape[0]):
            raise BadInputError(f"{where}: kept frame indices reach {int(k.max())} but smpls has {p.shape[0]} rows")
        p = p[k]
    if p.shape[0] != s.shape[1]:
        raise BadInputError(f"{where}: {p.shape[0]} SMPL rows for {s.shape[1]} silhouette frames; pass kept= from "
                            f"the pretreatment to align them")
    return {"sils": s, "smpls": np.ascontiguousarray(p[None])}


def gaitedge_inputs(rgbs: Any, sils: Any, ratios: Any = None, boxes: Any = None,
                    limit: Optional[int] = 512) -> dict[str, np.ndarray]:
    """GaitEdge feeds from 128x128 person crops (CASIA-B* layout).

    Args:
        rgbs: `[T, 3, 128, 128]` or `[T, 128, 128, 3]` RGB crops, values in [0, 255].
        sils: `[T, 128, 128]` binary silhouettes of the same crops, values in [0, 255].
        ratios: `[T]` width / height of each frame's person box in the original image.
        boxes: `[T, 4]` (x1, y1, x2, y2) person boxes to compute `ratios` from, if not given.
        limit: `frames_all_limit` (512 in the GaitEdge config); None keeps every frame.

    Returns:
        `{"ratios": [1, s], "rgbs": [1, s, 3, 128, 128], "sils": [1, s, 128, 128]}` float32,
        with BaseRgbTransform (ImageNet mean/std times 255) and BaseSilTransform (/255).
    """
    where = "gaitedge_inputs"
    r = _checks.array(rgbs, "rgbs", ndim=4, dtype=np.float32, where=where)
    if r.shape[1:] == (128, 128, 3):
        r = r.transpose(0, 3, 1, 2)
    if r.shape[1:] != (3, 128, 128):
        raise BadInputError(f"{where}: rgbs has shape {list(r.shape)}; expected [T, 3, 128, 128] or [T, 128, 128, 3]")
    s = _checks.array(sils, "sils", ndim=3, dtype=np.float32, where=where)
    if s.shape[1:] != (128, 128) or s.shape[0] != r.shape[0]:
        raise BadInputError(f"{where}: sils has shape {list(s.shape)}; expected [{r.shape[0]}, 128, 128]")
    if ratios is None:
        if boxes is None:
            raise BadInputError(f"{where}: pass ratios (box width / height per frame) or boxes; GaitAlign needs "
                                f"the original aspect ratio, which a 128x128 crop no longer has")
        b = _checks.array(boxes, "boxes", ndim=2, dtype=np.float64, where=where)
        if b.shape != (r.shape[0], 4):
            raise BadInputError(f"{where}: boxes has shape {list(b.shape)}; expected [{r.shape[0]}, 4]")
        hgt = b[:, 3] - b[:, 1]
        if (hgt <= 0).any() or (b[:, 2] - b[:, 0] <= 0).any():
            raise BadInputError(f"{where}: a box has no width or height")
        q = ((b[:, 2] - b[:, 0]) / hgt).astype(np.float32)
    else:
        q = _checks.array(ratios, "ratios", ndim=1, dtype=np.float32, where=where)
        if q.shape[0] != r.shape[0]:
            raise BadInputError(f"{where}: {q.shape[0]} ratios for {r.shape[0]} frames")
        if (q <= 0).any():
            raise BadInputError(f"{where}: ratios must be > 0 (width / height)")
    if r.shape[0] == 0:
        raise BadInputError(f"{where}: no frames")
    n = r.shape[0] if limit is None else min(r.shape[0], int(limit))
    mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1) * 255
    std = np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1) * 255
    return {"ratios": np.ascontiguousarray(q[None, :n]),
            "rgbs": np.ascontiguousarray(((r[:n] - mean) / std)[None]).astype(np.float32),
            "sils": np.ascontiguousarray((s[:n] / np.float32(255))[None]).astype(np.float32)}
