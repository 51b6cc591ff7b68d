"""Calibration data sources: image folders, videos, .npy/.npz arrays, OpenGait silhouette sequence
folders, and a seeded synthetic source per family for smoke runs.

Every source yields single samples (`{input name: array without the batch axis}`) already
preprocessed the way the runtime preprocesses (the manifest's `preprocess` record, see
preprocess.py); `batches()` groups them into the model's static batch, bounds the sample count and
shows a progress bar. No torch.

    >>> src = open_source("data/crops", manifest)            # an image folder
    >>> for feeds in batches(src, manifest, samples=64): ...  # {"images": [n, 3, 256, 128] float32}
"""

from __future__ import annotations

import abc
import os
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np

from .. import manifest as mf
from ..errors import BadInputError
from ..manifest import TensorSpec
from ..preflight import check_arrays
from . import preprocess as pp

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
DEFAULT_SAMPLES = 64


class SyntheticCalibrationWarning(UserWarning):
    """Calibrating on synthetic data: fine for smoke runs, not for a deployed engine."""


class Source(abc.ABC):
    """A calibration data source for one model (its manifest)."""

    def __init__(self, manifest: Mapping[str, Any]) -> None:
        self.manifest = manifest
        self.specs: list[TensorSpec] = mf.inputs_of(manifest)
        self.family: str = manifest.get("model", {}).get("family", "")
        self.pre: Mapping[str, Any] = manifest.get("preprocess", {})

    @property
    def primary(self) -> TensorSpec:
        return self.specs[0]

    @abc.abstractmethod
    def describe(self) -> str:
        """One line for reports and the manifest."""

    @abc.abstractmethod
    def samples(self) -> Iterator[dict[str, np.ndarray]]:
        """Single preprocessed samples: `{input name: array of spec.shape[1:]}`."""

    def _only_primary(self) -> None:
        if len(self.specs) > 1:
            names = [s.name for s in self.specs[1:]]
            raise BadInputError(f"{self.describe()} fills only input {self.primary.name!r}, but the model also "
                                f"takes {names}; give an .npz with one array per input name instead")

    # -- helpers shared by the sources ------------------------------------------------------------
    def _clip_shape(self) -> tuple[int, int, int]:
        s, h, w = self.primary.shape[1:]
        return s, h, w

    def _clips_from_frames(self, frames: Sequence[np.ndarray], max_clips: int = 4) -> Iterator[np.ndarray]:
        """Raw silhouette frames -> up to `max_clips` consecutive clips of the model's frame count."""
        s, h, w = self._clip_shape()
        img_size = int(self.pre.get("img_size", 64))
        good = [f for f in (pp.pretreat_silhouette(f, img_size) for f in frames) if f is not None]
        if not good:
            return
        if len(good) < s:  # shorter than the static clip: repeat in order (as a cyclic sampler would)
            good = [good[i % len(good)] for i in range(s)]
        for k in range(min(max_clips, len(good) // s)):
            yield pp.silhouette_clip(good[k * s:(k + 1) * s], self.pre, h, w)


def _require_kind(pre: Mapping[str, Any], kind: str, what: str) -> None:
    if pre.get("kind") != kind:
        raise BadInputError(f"{what} needs a model whose manifest preprocess kind is {kind!r}, this one has "
                            f"{pre.get('kind')!r}; use a source that fits the model family")


class ImageFolderSource(Source):
    """Every .jpg/.jpeg/.png/.bmp under a folder (recursive, sorted), resized and normalised.

    For top-down pose models the images should be person crops (no detector box is applied).
    """

    def __init__(self, root: str | os.PathLike, manifest: Mapping[str, Any]) -> None:
        super().__init__(manifest)
        self.root = Path(root)
        _require_kind(self.pre, "image", f"image folder {self.root}")
        self._only_primary()
        self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise BadInputError(f"image folder {self.root} holds no {'/'.join(IMAGE_SUFFIXES)} files; "
                                f"point --calib-data at a folder of images")

    def describe(self) -> str:
        return f"image folder {self.root} ({len(self.files)} files)"

    def samples(self) -> Iterator[dict[str, np.ndarray]]:
        cv2 = pp._cv2()
        for f in self.files:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                warnings.warn(f"skipping {f}: OpenCV cannot decode it")
                continue
            yield {self.primary.name: pp.preprocess_image(img, self.pre, self.family)}


class VideoSource(Source):
    """Frames of a video file (OpenCV): images for re-ID/pose, silhouette clips for gait models.

    Args:
        frame_step: keep every `frame_step`-th frame for image models (default 5); gait clips use
            consecutive frames.
    """

    def __init__(self, path: str | os.PathLike, manifest: Mapping[str, Any], frame_step: int = 5) -> None:
        super().__init__(manifest)
        self.path = Path(path)
        self.frame_step = max(1, int(frame_step))
        self._only_primary()
        if self.pre.get("kind") not in ("image", "silhouette"):
            raise BadInputError(f"video {self.path}: preprocess kind {self.pre.get('kind')!r} is not supported")

    def describe(self) -> str:
        return f"video {self.path}"

    def _frames(self) -> Iterator[np.ndarray]:
        cv2 = pp._cv2()
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise BadInputError(f"OpenCV cannot open video {self.path}; check the file and its codec "
                                f"(opencv-python-headless reads mp4/avi with its bundled FFmpeg)")
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield frame
        finally:
            cap.release()

    def samples(self) -> Iterator[dict[str, np.ndarray]]:
        name = self.primary.name
        if self.pre.get("kind") == "silhouette":
            s = self._clip_shape()[0]
            buf: list[np.ndarray] = []
            for frame in self._frames():
                buf.append(frame)
                if len(buf) == s:
                    for clip in self._clips_from_frames(buf, max_clips=1):
                        yield {name: clip}
                    buf = []
            return
        for k, frame in enumerate(self._frames()):
            if k % self.frame_step == 0:
                yield {name: pp.preprocess_image(frame, self.pre, self.family)}


class SilhouetteSequenceSource(Source):
    """OpenGait-style sequence folders: every folder holding frame images is one sequence.

    Layout: `ROOT/<subject>/<type>/<view>/*.png` (any depth works). Frames are sorted by name and
    pretreated; each sequence gives up to `clips_per_sequence` consecutive clips of the model's
    frame count (default 2); shorter sequences are repeated in order.
    """

    def __init__(self, root: str | os.PathLike, manifest: Mapping[str, Any], clips_per_sequence: int = 2) -> None:
        super().__init__(manifest)
        self.root = Path(root)
        _require_kind(self.pre, "silhouette", f"silhouette sequence folder {self.root}")
        self._only_primary()
        self.clips_per_sequence = max(1, int(clips_per_sequence))
        dirs = {p.parent for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES}
        self.sequences = sorted(dirs)
        if not self.sequences:
            raise BadInputError(f"{self.root} holds no folders of silhouette frames ({'/'.join(IMAGE_SUFFIXES)}); "
                                f"expected ROOT/<subject>/<type>/<view>/*.png")

    def describe(self) -> str:
        return f"silhouette sequences under {self.root} ({len(self.sequences)} sequences)"

    def samples(self) -> Iterator[dict[str, np.ndarray]]:
        cv2 = pp._cv2()
        for seq in self.sequences:
            files = sorted(p for p in seq.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            frames = [f for f in (cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in files) if f is not None]
            for clip in self._clips_from_frames(frames, self.clips_per_sequence):
                yield {self.primary.name: clip}


class ArraySource(Source):
    """Samples from a .npy (the first input) or .npz (one array per input name) file.

    Float arrays shaped `[N, *input shape without batch]` are used as they are (already
    preprocessed). uint8 arrays are raw data and get the preprocessing: `[N, H, W, 3]` RGB images
    for image models, `[N, S, 64, 64]` pretreated silhouette clips for gait models.
    """

    def __init__(self, path: str | os.PathLike, manifest: Mapping[str, Any]) -> None:
        super().__init__(manifest)
        self.path = Path(path)
        try:
            data = np.load(self.path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BadInputError(f"cannot read {self.path} as .npy/.npz ({exc}); save arrays with np.save/np.savez") from None
        if isinstance(data, np.ndarray):
            self._only_primary()
            self.arrays = {self.primary.name: data}
        else:
            # only the model's inputs: a held-out .npz may also hold `labels` (identities, not data)
            self.arrays = {k: data[k] for k in data.files if k in {s.name for s in self.specs}}
            missing = [s.name for s in self.specs if s.name not in self.arrays]
            if missing:
                raise BadInputError(f"{self.path} has arrays {sorted(data.files)}, the model needs {[s.name for s in self.specs]}; "
                                    f"missing {missing}")
        counts = {len(a) for a in self.arrays.values()}
        if len(counts) != 1:
            raise BadInputError(f"{self.path}: arrays have different sample counts {sorted(counts)}; give every input "
                                f"the same N")
        self.n = counts.pop()
        check_arrays(self.path, self.arrays, manifest)  # dtype, NaN and value range, named by file and sample

    def describe(self) -> str:
        return f"arrays {self.path} ({self.n} samples)"

    def _one(self, spec: TensorSpec, a: np.ndarray) -> np.ndarray:
        want = spec.shape[1:]
        if a.dtype == np.uint8 and spec is self.primary:
            if self.pre.get("kind") == "image" and a.ndim == 3 and a.shape[-1] == 3:
                return pp.preprocess_image(np.ascontiguousarray(a[:, :, ::-1]), self.pre, self.family)  # RGB -> BGR for OpenCV
            if self.pre.get("kind") == "silhouette" and a.ndim == 3:
                clips = list(self._clips_from_frames(list(a), max_clips=1))
                if clips:
                    return clips[0]
        if tuple(a.shape) != want:
            raise BadInputError(f"{self.path}: a sample of {spec.name!r} has shape {list(a.shape)} and dtype {a.dtype}, "
                                f"expected {list(want)} {spec.dtype} (preprocessed) or uint8 raw data; see "
                                f"deploykit.calib.sources.ArraySource")
        return a.astype(spec.dtype, copy=False)

    def samples(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(self.n):
            yield {s.name: self._one(s, self.arrays[s.name][i]) for s in self.specs}


class SyntheticSource(Source):
    """Seeded synthetic samples per family: walking-figure silhouettes (gait) or figure-on-clutter
    images (re-ID, pose), through the same preprocessing. For smoke runs and tests only; it warns.

    Args:
        seed: the generator seed (different seeds give disjoint data for held-out checks).
    """

    def __init__(self, manifest: Mapping[str, Any], seed: int = 0, warn: bool = True) -> None:
        super().__init__(manifest)
        self.seed = int(seed)
        if warn:
            warnings.warn("calibrating on SYNTHETIC data: the ranges fit rendered figures, not your cameras; "
                          "use --calib-data with a few hundred real samples for a deployed engine",
                          SyntheticCalibrationWarning, stacklevel=2)

    def describe(self) -> str:
        return f"synthetic {self.family or 'data'} (seed {self.seed})"

    def samples(self) -> Iterator[dict[str, np.ndarray]]:
        from ..synth import draw as synthetic

        rng = np.random.default_rng(self.seed)
        kind = self.pre.get("kind")
        while True:
            if kind == "silhouette":
                s, h, w = self._clip_shape()
                frames = synthetic.walking_silhouettes(rng, s)
                first = next(self._clips_from_frames(frames, max_clips=1), None)
                if first is None:
                    continue
                sample = {self.primary.name: first}
            elif kind == "image":
                sample = {self.primary.name: pp.preprocess_image(synthetic.person_image(rng), self.pre, self.family)}
            else:
                sample = {self.primary.name: rng.uniform(0.0, 1.0, self.primary.shape[1:]).astype(self.primary.dtype)}
            for spec in self.specs[1:]:  # other inputs (e.g. SMPL parameters): seeded small values
                sample[spec.name] = (rng.standard_normal(spec.shape[1:]) * 0.1).astype(spec.dtype)
            yield sample


def open_source(data: Optional[str | os.PathLike], manifest: Mapping[str, Any], *, seed: int = 0) -> Source:
    """Pick the source for `--calib-data`.

    Args:
        data: None or "synthetic" (seeded synthetic, warns), a folder (silhouette sequences for gait
            models, images otherwise), a .npy/.npz file, or a video file.
        manifest: the model's manifest (input specs, family, preprocess).
        seed: seed of the synthetic source; default 0.
    """
    if data is None or str(data) == "synthetic":
        return SyntheticSource(manifest, seed=seed)
    p = Path(data)
    if p.is_dir():
        if manifest.get("preprocess", {}).get("kind") == "silhouette":
            return SilhouetteSequenceSource(p, manifest)
        return ImageFolderSource(p, manifest)
    if not p.exists():
        raise BadInputError(f"--calib-data {p} does not exist; give a folder, a .npy/.npz, a video, or 'synthetic'")
    if p.suffix.lower() in (".npy", ".npz"):
        return ArraySource(p, manifest)
    if p.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(p, manifest)
    raise BadInputError(f"--calib-data {p}: cannot tell what {p.suffix!r} holds; give a folder, a .npy/.npz, "
                        f"a video ({'/'.join(VIDEO_SUFFIXES)}) or 'synthetic'")


def check_calib_data(data: Optional[str | os.PathLike], manifest: Mapping[str, Any]) -> None:
    """Open `--calib-data` as calibration will, before any export or optimisation: a bad file fails first.

    Opening is the check: ArraySource verifies names, sample counts, dtype, NaN and value range.
    """
    if data is None or str(data) == "synthetic":
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        open_source(data, manifest)


def batches(source: Source, samples: int = DEFAULT_SAMPLES, *, progress: bool = True,
            label: str = "calibrating") -> Iterator[dict[str, np.ndarray]]:
    """Group the source's samples into the model's static batch, at most `samples` samples in all.

    Args:
        samples: the bound on samples (rounded down to whole batches, at least one batch); default 64.
        progress: show a rich progress bar on stderr; default True.

    Raises:
        BadInputError: the source gave fewer samples than one batch.
    """
    if int(samples) < 1:
        raise BadInputError(f"--calib-samples {samples} is not allowed; use 1 or more (64 is a good start)")
    batch = source.primary.shape[0]
    n_batches = max(1, int(samples) // batch)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("[cyan]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), disable=not progress, transient=False)
    got = 0
    with bar:
        task = bar.add_task(f"{label} on {source.describe()}", total=n_batches * batch)
        buf: list[dict[str, np.ndarray]] = []
        for sample in source.samples():
            buf.append(sample)
            if len(buf) == batch:
                yield {s.name: np.stack([b[s.name] for b in buf]).astype(s.dtype, copy=False) for s in source.specs}
                got += batch
                bar.update(task, advance=batch)
                buf = []
                if got >= n_batches * batch:
                    return
    if got == 0:
        raise BadInputError(f"{source.describe()} gave fewer than one batch ({batch}) of usable samples; add data")
    if got < int(samples):
        warnings.warn(f"{source.describe()} ran out after {got} samples (asked for {samples})")
