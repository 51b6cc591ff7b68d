"""Frames from the inputs `deploykit infer` takes: image files, image folders and videos. No torch.

A video is read with OpenCV in order; `FrameRange(start, stop, step)` keeps frames
`start, start + step, ...` below `stop` (0-based, `stop` None = to the end). A folder gives its image
files sorted by name (not recursive). Frames are BGR uint8, as `cv2.imread` gives them.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from ..errors import BadInputError
from .pose.detections import Frame

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclasses.dataclass(frozen=True)
class FrameRange:
    """Which video frames to use: `range(start, stop, step)`; stop None = to the end."""

    start: int = 0
    stop: Optional[int] = None
    step: int = 1

    def __post_init__(self) -> None:
        if self.step < 1 or self.start < 0 or (self.stop is not None and self.stop <= self.start):
            raise BadInputError(f"frame range start {self.start}, stop {self.stop}, step {self.step}: need step >= 1, "
                                f"start >= 0 and stop > start; e.g. --frame-step 5 --frame-range 0:300")

    @classmethod
    def parse(cls, text: Optional[str], step: int = 1) -> "FrameRange":
        """`"START:STOP"` (either side may be empty) plus a step."""
        if not text:
            return cls(0, None, int(step))
        try:
            a, b = text.split(":")
            return cls(int(a) if a else 0, int(b) if b else None, int(step))
        except ValueError:
            raise BadInputError(f"--frame-range {text!r} is not START:STOP (e.g. 0:300 or 100:)") from None

    def wants(self, i: int) -> bool:
        return i >= self.start and (self.stop is None or i < self.stop) and (i - self.start) % self.step == 0


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def folder_images(folder: str | os.PathLike) -> list[Path]:
    """Image files of a folder, sorted by name."""
    d = Path(folder)
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise BadInputError(f"folder {d} holds no {'/'.join(IMAGE_SUFFIXES)} images; give image files, a folder "
                            f"of them, or a video")
    return files


def read_video(path: str | os.PathLike, frames: FrameRange = FrameRange(), gray: bool = False
               ) -> Iterator[tuple[int, np.ndarray]]:
    """`(frame index, BGR uint8 [H, W, 3] or gray [H, W])` of the wanted frames, in order."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise BadInputError(f"cannot open video {path} (OpenCV has no decoder for it?); convert it to .mp4 (H.264) "
                            f"or extract its frames into a folder")
    try:
        i, got = 0, 0
        while frames.stop is None or i < frames.stop:
            ok, img = cap.read()
            if not ok:
                break
            if frames.wants(i):
                got += 1
                yield i, (cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if gray and img.ndim == 3 else img)
            i += 1
        if not got:
            raise BadInputError(f"video {path}: no frame in {frames} (it has {i} readable frames)")
    finally:
        cap.release()


def image_frames(inputs: Sequence[str], frames: FrameRange = FrameRange()) -> Iterator[tuple[Frame, np.ndarray]]:
    """Every image of `inputs` (files, folders, videos) with where it came from."""
    from .imageops import load_image

    for src in map(Path, inputs):
        if src.is_dir():
            for p in folder_images(src):
                yield Frame(p), load_image(p)
        elif is_video(src):
            for i, img in read_video(src, frames):
                yield Frame(src, i), img
        else:
            yield Frame(src), load_image(src)


def count_images(inputs: Sequence[str]) -> Optional[int]:
    """How many images `image_frames` will give, when known without decoding (no videos)."""
    n = 0
    for src in map(Path, inputs):
        if is_video(src):
            return None
        n += len(folder_images(src)) if src.is_dir() else 1
    return n


class Progress:
    """`label 12/340` lines on stderr, every `every` items and at the end; quiet for fewer than `min_items`.

    One line per update (no carriage returns), so piped or logged output stays readable.
    """

    def __init__(self, label: str, total: Optional[int], every: int = 50, min_items: int = 20,
                 enabled: bool = True) -> None:
        self.label, self.total, self.every, self.done = label, total, max(1, every), 0
        self.enabled = enabled and (total is None or total >= min_items)

    def step(self, n: int = 1) -> None:
        self.done += n
        if self.enabled and self.done % self.every < n:
            self._say()

    def close(self) -> None:
        if self.enabled and self.done % self.every:
            self._say()

    def _say(self) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        print(f"{self.label} {self.done}{of}", file=sys.stderr, flush=True)
