"""Long gait sequences through a fixed-frame engine: fixed windows, as an online demo runs them.

An engine has a static frame count `s`. A sequence of T pretreated frames (after OpenGait's
pretreatment drops empty frames) becomes windows `[k * stride, k * stride + s)` for k = 0, 1, ..
while they fit, plus one window ending at the last frame when frames would otherwise be left out.
Each window is one engine item (windows are batched with `infer_many`); the sequence's embedding
is the mean of its windows' embeddings (`combine="mean"`), or each window is returned.

A sequence shorter than `s` is, by default, padded by cyclic repetition (0, 1, .., T-1, 0, ..) and
reported as padded: set-pooling models (GaitSet, GaitBase: max over frames) are unchanged by the
repeat, temporal models (GaitPart, GaitGL) see it. `short="refuse"` refuses it instead; re-export
with `--frames T` to run it exactly.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from ..errors import BadInputError
from .gait import Pretreated, cut_and_scale, pretreat_silhouettes, silhouette_record, to_gray


@dataclasses.dataclass(frozen=True)
class Windowed:
    """A sequence cut into engine-sized clips.

    Attributes:
        clips: float32 `[W, s, H, W']`, one engine item per window.
        windows: `[W, 2]` (start, stop) of each window in pretreated-frame indices.
        frames_total: frames in the input; frames_kept: frames left by the pretreatment.
        padded: the sequence was shorter than s and was repeated to fill one window.
    """

    clips: np.ndarray
    windows: np.ndarray
    frames_total: int
    frames_kept: int
    padded: bool

    def report(self) -> dict[str, Any]:
        return {"frames_total": self.frames_total, "frames_kept": self.frames_kept,
                "windows": self.windows.tolist(), "padded": self.padded}


def window_starts(num_frames: int, length: int, stride: Optional[int] = None) -> np.ndarray:
    """Start indices of the windows over `num_frames` (>= length); stride defaults to `length`."""
    n, s = int(num_frames), int(length)
    st = s if stride is None else int(stride)
    if st < 1:
        raise BadInputError(f"--window-stride {stride} must be >= 1")
    starts = list(range(0, n - s + 1, st))
    if starts[-1] + s < n:  # the tail would be left out: one more window ending at the last frame
        starts.append(n - s)
    return np.asarray(starts, np.int64)


def window_sequence(pt: Pretreated, frames_total: int, length: int, preprocess: Optional[Mapping[str, Any]] = None,
                    stride: Optional[int] = None, short: str = "pad", name: str = "sequence") -> Windowed:
    """Cut pretreated frames into windows of `length` and apply the test transform (cutting, /255)."""
    pre = silhouette_record(preprocess)
    t, s = len(pt), int(length)
    if t == 0:
        reasons = sorted(set(pt.dropped.values()))[:2]
        raise BadInputError(f"{name}: every one of its {frames_total} frames was dropped by the pretreatment (e.g. "
                            f"{reasons}); silhouettes must be white (255) on black")
    if t < s:
        if short == "refuse":
            raise BadInputError(f"{name}: {t} usable frames (of {frames_total}) is fewer than the engine's {s}; give "
                                f"a longer sequence, re-export with --frames {t}, or allow padding (--short pad)")
        idx = np.arange(s) % t
        wins, padded = np.array([[0, t]]), True
        frames = pt.frames[idx][None]
    else:
        starts = window_starts(t, s, stride)
        wins, padded = np.stack([starts, starts + s], 1), False
        frames = np.stack([pt.frames[a:a + s] for a in starts])
    w, _, h, wd = frames.shape
    clips = cut_and_scale(frames.reshape(w * s, h, wd), pre.cutting, pre.divisor)
    return Windowed(clips.reshape(w, s, h, clips.shape[-1]), wins, int(frames_total), t, padded)


def read_sequence(src: str | os.PathLike, frames=None, threshold: Optional[float] = None) -> list[np.ndarray]:
    """Raw gray frames of a silhouette source: a folder of PNG masks, a `.npy` `[T, H, W]`, or a video."""
    from .gait import read_frames
    from .media import FrameRange, is_video, read_video

    p = Path(src)
    if p.is_dir():
        return read_frames(p, threshold)[0]
    if p.suffix == ".npy":
        a = np.load(p, allow_pickle=False)
        if a.ndim not in (3, 4):
            raise BadInputError(f"{p}: a silhouette array must be [T, H, W], got shape {list(a.shape)}")
        return list(a)
    if is_video(p):
        return [to_gray(img, f"{p.name} frame {i}", threshold)
                for i, img in read_video(p, frames or FrameRange())]
    raise BadInputError(f"{p}: gait input must be a folder of silhouette PNGs, a .npy [T, H, W] or a silhouette "
                        f"video ({p.suffix or 'no suffix'} given)")


def windowed_source(src: str | os.PathLike, preprocess: Optional[Mapping[str, Any]], length: int, *, frames=None,
                    stride: Optional[int] = None, short: str = "pad", threshold: Optional[float] = None) -> Windowed:
    """`read_sequence` -> `windowed_frames`."""
    raw = read_sequence(src, frames, threshold)
    return windowed_frames(raw, preprocess, length, stride=stride, short=short, threshold=threshold, name=str(src))


def windowed_frames(raw: Any, preprocess: Optional[Mapping[str, Any]], length: int, *, stride: Optional[int] = None,
                    short: str = "pad", threshold: Optional[float] = None, name: str = "sequence") -> Windowed:
    """Raw gray frames (a list, or `[T, H, W]` uint8) -> OpenGait pretreatment -> `window_sequence`.
    `deploykit infer` and the Triton gait pre model both run this."""
    pre = silhouette_record(preprocess)
    pt = pretreat_silhouettes(raw, pre.img_size, stored_as_is=pre.stored_as_is, threshold=threshold)
    return window_sequence(pt, len(raw), length, pre, stride, short, name)
