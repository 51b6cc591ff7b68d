"""Person detections for top-down pose: the box files `deploykit infer --boxes` reads.

Formats (told apart by their JSON shape):

* **COCO detection results**: `[{"image_id", "bbox": [x, y, w, h], "score", "category_id"}, ...]`
  (what Detectron2, mmdet `--format-only` and HRNet's `COCO_val2017_detections_AP_H_56_person.json`
  write). Only `category_id == 1` (person) is used when the field is present. An `image_id` is
  matched to an input by, in order: the `--ann` file's `images[].file_name` for that id; a file
  whose stem is that number (`000000397133.jpg` is id 397133, COCO's naming); a file whose name
  or stem equals it as a string; for a video, the 0-based frame index.
* **Per-image mapping**: `{"img.jpg": [[x1, y1, x2, y2(, score)], ...]}` keyed by file name (or path,
  or stem; for a video frame, `"video.mp4:12"` or the frame index).
* **mmdet-style per-image lists**: a list with one entry per input image, in input order; each entry
  `[[x1, y1, x2, y2(, score)], ...]`, or mmdet's per-class list of such arrays (class 0, person, used).
* **One list** `[[x1, y1, x2, y2(, score)], ...]` when there is a single input image.

Boxes without a score get 1.0. `det_thr` drops boxes scoring below it. Boxes wholly outside the
image, or of zero area once clipped to it, are skipped with one warning line each.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ...errors import BadInputError

log = logging.getLogger(__name__)

PERSON = 1  # COCO category id of person


@dataclasses.dataclass(frozen=True)
class Frame:
    """Where an image came from, for matching detections to it.

    Attributes:
        path: the image file, or the video file.
        index: frame index in the video; None for an image file.
    """

    path: Path
    index: Optional[int] = None

    @property
    def name(self) -> str:
        return self.path.name if self.index is None else f"{self.path.name}:{self.index}"

    def keys(self) -> list:
        """Lookup keys in preference order (strings and ints)."""
        if self.index is not None:
            return [f"{self.path.name}:{self.index}", f"{self.path}:{self.index}", self.index, str(self.index)]
        keys: list = [self.path.name, str(self.path), self.path.stem]
        if self.path.stem.isdigit():
            keys.append(int(self.path.stem))
        return keys


def _bad(src: str, what: str) -> BadInputError:
    return BadInputError(f"--boxes {src}: {what}; give COCO detection results [{{\"image_id\", \"bbox\": [x, y, w, "
                         f"h], \"score\"}}], {{\"img.jpg\": [[x1, y1, x2, y2, score], ...]}} or per-image lists")


def _rows(entry: Any, src: str, where: str) -> np.ndarray:
    """`[[x1, y1, x2, y2(, score)], ...]` (or mmdet's per-class list) -> float64 `[N, 5]`."""
    if isinstance(entry, list) and entry and isinstance(entry[0], list) and entry[0] and isinstance(entry[0][0], list):
        entry = entry[0]  # mmdet: one array per class; class 0 is person
    if isinstance(entry, list) and not entry:
        return np.zeros((0, 5))
    if _has_str(entry):
        raise _bad(src, f"the boxes for {where} are strings ({str(entry)[:60]}); write them as JSON numbers")
    if isinstance(entry, list) and all(isinstance(r, list) and len(r) in (4, 5) for r in entry):
        entry = [list(r) + [1.0] * (5 - len(r)) for r in entry]  # rows with and without a score may mix
    try:
        arr = np.asarray(entry, dtype=np.float64)
    except (TypeError, ValueError):
        raise _bad(src, f"the boxes for {where} are not numbers ({str(entry)[:60]})") from None
    if arr.ndim == 1 and arr.size in (4, 5):
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] not in (4, 5):
        raise _bad(src, f"the boxes for {where} have shape {list(arr.shape)}, expected [N, 4] or [N, 5]")
    if not np.isfinite(arr).all():
        raise _bad(src, f"the boxes for {where} hold NaN or Inf")
    if arr.shape[1] == 4:
        arr = np.concatenate([arr, np.ones((len(arr), 1))], 1)
    return arr


def _has_str(x: Any) -> bool:
    return isinstance(x, str) or (isinstance(x, (list, tuple)) and any(_has_str(v) for v in x))


class Detections:
    """Person boxes per input frame, read once from a file.

    Args:
        path: the JSON file (formats above).
        ann: a COCO annotation file whose `images` map `image_id` to `file_name`.
        det_thr: keep boxes with score >= det_thr; default 0 (all).
    """

    def __init__(self, path: str | os.PathLike, ann: Optional[str | os.PathLike] = None, det_thr: float = 0.0) -> None:
        self.src = str(path)
        self.det_thr = float(det_thr)
        data = _load_json(path, "--boxes")
        self._by_key: dict = {}
        self._by_order: Optional[list] = None
        self._single: Optional[np.ndarray] = None
        id_to_name = _ann_names(ann) if ann is not None else {}
        self.name_to_id = {v: k for k, v in id_to_name.items()}
        if isinstance(data, dict):
            self._by_key = {k: _rows(v, self.src, repr(k)) for k, v in data.items()}
        elif isinstance(data, list) and data and all(isinstance(d, dict) for d in data):
            self._coco(data, id_to_name)
        elif isinstance(data, list) and data and all(isinstance(e, list) for e in data) and \
                any(e and isinstance(e[0], list) for e in data):
            self._by_order = [_rows(e, self.src, f"image {i}") for i, e in enumerate(data)]
        elif isinstance(data, list):
            self._single = _rows(data, self.src, "the single image")
        else:
            raise _bad(self.src, f"the file holds a JSON {type(data).__name__}")

    def _coco(self, data: list, id_to_name: dict) -> None:
        groups: dict = {}
        for i, d in enumerate(data):
            if "bbox" not in d or "image_id" not in d:
                raise _bad(self.src, f"entry {i} lacks 'bbox' or 'image_id' ({sorted(d)[:5]})")
            if d.get("category_id", PERSON) != PERSON:
                continue
            box = _rows([d["bbox"]], self.src, f"entry {i}")[0, :4]
            x, y, w, h = box
            key = id_to_name.get(d["image_id"], d["image_id"])
            groups.setdefault(key, []).append([x, y, x + w, y + h, float(d.get("score", 1.0))])
        self._by_key = {k: np.asarray(v, np.float64) for k, v in groups.items()}

    def for_frame(self, frame: Frame, order: int, shape: Sequence[int]) -> np.ndarray:
        """Boxes `[N, 5]` (x1, y1, x2, y2, score) for the `order`-th input frame of image `shape`."""
        if self._single is not None:
            if order:
                raise _bad(self.src, "one list of boxes is for a single image, and several were given; key the "
                                     "boxes by file name")
            rows = self._single
        elif self._by_order is not None:
            if order >= len(self._by_order):
                raise _bad(self.src, f"it lists boxes for {len(self._by_order)} images, and image {order + 1} "
                                     f"({frame.name}) has none")
            rows = self._by_order[order]
        else:
            rows = next((self._by_key[k] for k in frame.keys() if k in self._by_key), None)
            if rows is None:
                rows = np.zeros((0, 5))  # a detector that found nobody writes no entry
                log.info("--boxes %s has no entry for %s: no people", self.src, frame.name)
        return clean_boxes(rows[rows[:, 4] >= self.det_thr], shape, frame.name)


def clean_boxes(rows: np.ndarray, shape: Sequence[int], name: str) -> np.ndarray:
    """Drop boxes wholly outside an image of `shape`, or empty, with a warning each; x2 < x1 is an error."""
    h, w = shape[:2]
    if len(rows) and ((rows[:, 2] < rows[:, 0]).any() or (rows[:, 3] < rows[:, 1]).any()):
        i = int(np.argmax((rows[:, 2] < rows[:, 0]) | (rows[:, 3] < rows[:, 1])))
        raise BadInputError(f"{name}: box {rows[i, :4].round(1).tolist()} has x2 < x1 or y2 < y1; boxes are "
                            f"(x1, y1, x2, y2) corners (COCO's [x, y, w, h] only in detection-result lists)")
    keep = []
    for i, (x1, y1, x2, y2, _) in enumerate(rows):
        cw, ch = min(x2, w) - max(x1, 0), min(y2, h) - max(y1, 0)
        if cw <= 0 or ch <= 0:
            what = "is wholly outside" if (x2 < 0 or y2 < 0 or x1 >= w or y1 >= h) else "has no area inside"
            log.warning("%s: box %s %s the %dx%d image; skipped", name, [round(float(v), 1) for v in (x1, y1, x2, y2)],
                        what, w, h)
            continue
        keep.append(i)
    return rows[keep]


def _load_json(path: str | os.PathLike, flag: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{flag} {path}: cannot read it as JSON ({str(exc).splitlines()[0]}); check the file") \
            from None


def _ann_names(ann: str | os.PathLike) -> dict:
    """COCO annotation file -> {image id: file name}."""
    data = _load_json(ann, "--ann")
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list) or not all(isinstance(i, dict) and "id" in i and "file_name" in i for i in images):
        raise BadInputError(f"--ann {ann}: no COCO 'images' list of {{'id', 'file_name'}}; give the annotation file "
                            f"(e.g. person_keypoints_val2017.json)")
    return {i["id"]: Path(i["file_name"]).name for i in images}


def image_id(frame: Frame, name_to_id: Optional[dict] = None) -> Any:
    """The COCO `image_id` written for a frame: the --ann id of its file name, else the video frame
    index, else the number its stem is (COCO naming), else its file name."""
    if name_to_id and frame.index is None and frame.path.name in name_to_id:
        return name_to_id[frame.path.name]
    if frame.index is not None:
        return frame.index
    return int(frame.path.stem) if frame.path.stem.isdigit() else frame.path.name


def whole_image(shape: Sequence[int]) -> np.ndarray:
    """The default box `[1, 5]` when no --boxes is given: the whole image, score 1."""
    h, w = shape[:2]
    return np.array([[0.0, 0.0, w - 1.0, h - 1.0, 1.0]])
