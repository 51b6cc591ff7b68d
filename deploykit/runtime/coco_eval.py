"""COCO keypoint evaluation: a pose engine's people as COCO results, scored by pycocotools (extra `[eval]`).

`score_keypoints(ann_file, results)` is pycocotools' own OKS evaluation (`COCOeval(..., "keypoints")`)
of a results list or file, so the numbers are exactly what `cocoapi` reports. `predict_keypoints`
runs a top-down engine over the annotation's images with ground-truth person boxes or a detection
results file and returns COCO keypoint results (`image_id`, `category_id` 1, `keypoints`
[x, y, score]*K, `score` = box score x mean keypoint score).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..errors import BadInputError, require

STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def _load_json(path: Any, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{what} {path} cannot be read as JSON ({type(exc).__name__}); give a COCO-format "
                            f"file") from None


def score_keypoints(ann_file: Any, results: Any, image_ids: Optional[Sequence[int]] = None) -> dict[str, float]:
    """pycocotools' OKS AP/AR of `results` (a list of COCO keypoint results, or a JSON file of one).

    Args:
        ann_file: COCO `person_keypoints_*.json`.
        results: the results list or a path to it.
        image_ids: restrict to these images (default None: every image of the annotation).

    Returns:
        `{"AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"}` (pycocotools' stats).
    """
    require("pycocotools", "eval")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    res = _load_json(results, "results") if isinstance(results, (str, Path)) else list(results)
    if not res:
        raise BadInputError("no keypoint results to score (every image was skipped); check the boxes and images")
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and table
        gt = COCO(str(ann_file))
        dt = gt.loadRes(res)
        ev = COCOeval(gt, dt, "keypoints")
        if image_ids is not None:
            ev.params.imgIds = list(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: float(v) for k, v in zip(STATS, ev.stats)}


def _boxes(ann: dict, dets: Optional[Any], det_thr: float) -> dict[int, np.ndarray]:
    """Per image id, `[N, 5]` person boxes (x1, y1, x2, y2, score) from GT (score 1) or detections."""
    out: dict[int, list] = {}
    if dets is None:
        for a in ann.get("annotations", []):
            x, y, w, h = a["bbox"]
            if a.get("category_id", 1) == 1 and not a.get("iscrowd", 0) and w > 0 and h > 0:
                out.setdefault(a["image_id"], []).append([x, y, x + w, y + h, 1.0])
    else:
        data = _load_json(dets, "--dets") if isinstance(dets, (str, Path)) else dets
        if not isinstance(data, list) or any(not isinstance(d, dict) or "bbox" not in d for d in data):
            raise BadInputError("--dets must be COCO detection results: [{\"image_id\", \"bbox\": [x, y, w, h], "
                                "\"score\", \"category_id\"}, ...]")
        for d in data:
            x, y, w, h = d["bbox"]
            if d.get("category_id", 1) == 1 and d.get("score", 1.0) >= det_thr and w > 0 and h > 0:
                out.setdefault(d["image_id"], []).append([x, y, x + w, y + h, d.get("score", 1.0)])
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def _run(engine, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run `[N, ...]` through an engine of static batch B in padded chunks."""
    b = engine.inputs[0].shape[0]
    name = engine.inputs[0].name
    parts = []
    for s in range(0, len(x), b):
        chunk = x[s:s + b]
        real = len(chunk)
        if real < b:  # static batch: pad by repeating the last crop, drop it after
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], b - real, 0)], 0)
        out = engine.infer({name: np.ascontiguousarray(chunk, np.float32)})
        parts.append({k: v[:real] for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def predict_keypoints(engine_path: Any, ann_file: Any, images: Any, *, dets: Optional[Any] = None,
                      det_thr: float = 0.0, flip: bool = False, threads: Optional[int] = None,
                      progress: Optional[Callable[[int, int], None]] = None) -> tuple[list[dict], dict[str, int]]:
    """COCO keypoint results of a pose engine on the annotation's images.

    Args:
        dets: detection results (file or list); default None = ground-truth person boxes.
        det_thr: drop detections scoring below this (default 0).
        flip: flip test (default False), as the manifest's flip pairs and shift say.
        progress: called with (images done, images total).

    Returns:
        (results, counts) with counts `{"images", "images_with_people", "people", "skipped_no_box"}`.
    """
    from .engine import Engine
    from .imageops import load_image
    from .pose import TopDownConfig, crop_persons, decode_outputs, flip_images

    ann = _load_json(ann_file, "--ann")
    if not isinstance(ann, dict) or "images" not in ann:
        raise BadInputError(f"--ann {ann_file} has no 'images'; give a COCO person_keypoints_*.json")
    boxes = _boxes(ann, dets, det_thr)
    root = Path(images)
    missing = [im["file_name"] for im in ann["images"] if not (root / im["file_name"]).is_file()]
    if missing:
        raise BadInputError(f"{len(missing)} image(s) of the annotation are not in {root} (e.g. {missing[0]}); "
                            f"pass the folder that holds them with --images")
    results, counts = [], {"images": len(ann["images"]), "images_with_people": 0, "people": 0, "skipped_no_box": 0}
    with Engine.load(engine_path, threads=threads) as engine:
        cfg = TopDownConfig.from_manifest(engine.manifest)
        for i, im in enumerate(ann["images"]):
            bx = boxes.get(im["id"])
            if bx is None or not len(bx):
                counts["skipped_no_box"] += 1
            else:
                crops = crop_persons(load_image(root / im["file_name"]), bx[:, :4], cfg)
                out = _run(engine, crops.inputs)
                flipped = _run(engine, flip_images(crops.inputs)) if flip else None
                kps, scores = decode_outputs(out, crops, flipped)
                for box, k, s in zip(bx, kps, scores):
                    trip = np.concatenate([k, s[:, None]], 1)  # [K, 3] x, y, score
                    results.append({"image_id": im["id"], "category_id": 1,
                                    "keypoints": [round(float(v), 3) for v in trip.ravel()],
                                    "score": float(box[4] * s.mean())})
                counts["images_with_people"] += 1
                counts["people"] += len(bx)
            if progress:
                progress(i + 1, len(ann["images"]))
    return results, counts
