"""`deploykit infer`: files in, JSON out, for any engine artifact. No torch.

Inputs (`runtime/media.py`): image files, folders of images and videos (`FrameRange`: start, stop,
step) for pose and re-ID; silhouette folders, `.npy` `[T, H, W]` arrays and silhouette videos for
gait. Any number of items goes through any engine: `batching.infer_many` chunks for the engine's
batch (padding a static one).

* pose: person boxes per frame from `--boxes` (`pose/detections.py`: COCO detection results,
  per-image mappings or mmdet-style lists, `det_thr`), keypoints per person, AlphaPose pose NMS as
  the manifest records it (`pose/pipeline.py`), and COCO keypoint results (`coco_keypoints`).
* gait: each sequence windowed into engine-sized clips (`gait_windows.py`), the windows' embeddings
  averaged, with what was done reported (`frames_total`, `frames_kept`, `windows`, `padded`).
* re-ID: one embedding per crop (or per `--boxes` box of a frame); PGFA takes `--keypoints`, the
  results of a pose engine on the same crops (`reid_pose.py`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ..errors import BadInputError
from .engine import Engine
from .media import FrameRange, Progress

log = logging.getLogger(__name__)

# COCO skeleton (joint index pairs) for overlays.
COCO_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
                 (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))


def _source_name(frame) -> str:
    return str(frame.path) if frame.index is None else f"{frame.path}:{frame.index}"


def infer_pose(engine: Engine, inputs: Sequence[str], *, boxes=None, ann=None, det_thr: float = 0.0,
               pose_nms: str = "auto", frames: FrameRange = FrameRange(), visualize=None, progress: bool = False,
               **_) -> tuple[list[dict], dict]:
    """Keypoints for every person of every frame; returns (results, extra top-level fields)."""
    from .media import count_images, image_frames
    from .pose import TopDownConfig
    from .pose.detections import Detections, clean_boxes, image_id, whole_image
    from .pose.pipeline import coco_record, estimate, resolve_nms

    cfg = TopDownConfig.from_manifest(engine.manifest)
    nms = resolve_nms(engine.manifest, pose_nms)
    dets = Detections(boxes, ann, det_thr) if boxes is not None else None
    prog = Progress("pose: images", count_images(inputs), enabled=progress)
    results, coco = [], []
    for order, (frame, image) in enumerate(image_frames(inputs, frames)):
        rows = dets.for_frame(frame, order, image.shape) if dets else clean_boxes(whole_image(image.shape),
                                                                                   image.shape, frame.name)
        people = estimate(engine, image, rows, cfg, nms)
        iid = image_id(frame, dets.name_to_id if dets else None)
        results.append({"input": _source_name(frame), "image_id": iid, "people": people})
        coco += [coco_record(iid, p) for p in people]
        if visualize:
            kp = np.asarray([p["keypoints"] for p in people], np.float64).reshape(len(people), -1, 2) \
                if people else np.zeros((0, 17, 2))
            sc = np.asarray([p["scores"] for p in people], np.float64).reshape(len(people), kp.shape[1])
            stem = frame.path.stem if frame.index is None else f"{frame.path.stem}_{frame.index:06d}"
            draw_skeleton(image, kp, sc, Path(visualize) / f"{stem}.pose.png")
        prog.step()
    prog.close()
    return results, {"pose_nms": None if nms is None else "alphapose_parametric", "coco_keypoints": coco}


def draw_skeleton(image: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, out: Path,
                  min_score: float = 0.05) -> None:
    """Write a PNG of `image` (BGR uint8) with each person's COCO skeleton drawn over it (atomically)."""
    import cv2

    from .. import atomic

    canvas = image.copy()
    for kp, sc in zip(keypoints, scores):
        for a, b in COCO_SKELETON:
            if a < len(kp) and b < len(kp) and sc[a] > min_score and sc[b] > min_score:
                cv2.line(canvas, tuple(int(v) for v in kp[a]), tuple(int(v) for v in kp[b]), (0, 255, 255), 2)
        for (x, y), s in zip(kp, sc):
            if s > min_score:
                cv2.circle(canvas, (int(x), int(y)), 3, (0, 0, 255), -1)
    ok, buf = cv2.imencode(".png", canvas)
    if not ok:
        raise BadInputError(f"cannot encode the overlay for {out}")
    atomic.write_bytes(out, buf.tobytes())


def infer_gait(engine: Engine, inputs: Sequence[str], *, frames: FrameRange = FrameRange(),
               window_stride: Optional[int] = None, short: str = "pad", sil_threshold: Optional[float] = None,
               progress: bool = False, **_) -> tuple[list[dict], dict]:
    """One embedding per sequence: the mean over its engine-sized windows (`gait_windows.py`)."""
    from .batching import infer_many
    from .gait_windows import windowed_source

    if len(engine.inputs) != 1:
        raise BadInputError(f"{engine.path.name}: `deploykit infer` takes silhouettes only; "
                            f"{[s.name for s in engine.inputs]} need the Python API (runtime.gait)")
    if short not in ("pad", "refuse"):
        raise BadInputError(f"--short {short!r} is not one of pad, refuse")
    spec = engine.inputs[0]
    prog = Progress("gait: sequences", len(inputs), every=10, min_items=10, enabled=progress)
    results = []
    for src in inputs:
        win = windowed_source(src, engine.manifest.get("preprocess"), spec.shape[1], frames=frames,
                              stride=window_stride, short=short, threshold=sil_threshold)
        if win.padded:
            log.warning("%s: %d usable frames, fewer than the engine's %d; repeated cyclically to fill one window "
                        "(--short refuse to refuse such sequences)", src, win.frames_kept, spec.shape[1])
        out = infer_many(engine, {spec.name: win.clips})
        results.append({"input": str(src), **win.report(),
                        **{k: v.mean(0).tolist() for k, v in out.items()}})
        prog.step()
    prog.close()
    return results, {"combine": "mean over windows"}


def infer_reid(engine: Engine, inputs: Sequence[str], *, boxes=None, ann=None, det_thr: float = 0.0,
               keypoints=None, frames: FrameRange = FrameRange(), progress: bool = False, **_
               ) -> tuple[list[dict], dict]:
    """One embedding per crop; with `boxes`, per box of each frame. PGFA: pose from `keypoints`."""
    from .batching import infer_many
    from .media import count_images, image_frames
    from .pose.detections import Detections
    from .reid import ReidConfig, box_crops, preprocess_reid
    from .reid_pose import PgfaPose

    cfg = ReidConfig.from_manifest(engine.manifest)
    pgfa = PgfaPose.for_engine(engine, keypoints)
    if pgfa is None and keypoints is not None:
        raise BadInputError(f"--keypoints is for PGFA engines; {engine.manifest['model']['name']} takes no pose")
    dets = Detections(boxes, ann, det_thr) if boxes is not None else None
    prog = Progress("re-ID: images", count_images(inputs), enabled=progress)
    names, crops = [], []
    for order, (frame, image) in enumerate(image_frames(inputs, frames)):
        if dets is None:
            names.append(_source_name(frame))
            crops.append(image)
        else:
            cut = box_crops(image, dets.for_frame(frame, order, image.shape))
            names += [f"{_source_name(frame)}#box{j}" for j in range(len(cut))]
            crops += cut
        prog.step()
    prog.close()
    if not crops:
        return [], {}
    feeds = {engine.inputs[0].name: preprocess_reid(crops, cfg)}
    extra: dict[str, Any] = {}
    if pgfa is not None:
        pose = pgfa.inputs(names, crops)
        feeds.update(pose.feeds)
        extra = {"metric": "pgfa_visibility_weighted", "keypoints_matched": pose.matched}
    elif len(engine.inputs) > 1:
        raise BadInputError(f"{engine.path.name}: inputs {[s.name for s in engine.inputs[1:]]} need the Python API")
    outs = infer_many(engine, feeds)
    res = [{"input": n, **{k: v[i].tolist() for k, v in outs.items()}} for i, n in enumerate(names)]
    if pgfa is not None:
        for r, vis in zip(res, pose.visibility):
            r["visibility"] = vis.tolist()
    return res, extra


_BY_FAMILY: dict[str, Callable[..., tuple[list[dict], dict]]] = {"pose": infer_pose, "gait": infer_gait,
                                                                  "reid": infer_reid}


def infer_files(engine_path: str | os.PathLike, inputs: Sequence[str], *, threads: Optional[int] = None,
                **options) -> dict:
    """Run an engine on files and return a JSON-ready dict `{"model", "family", "results": [...], ...}`.

    Options (by family): `boxes`, `ann`, `det_thr`, `pose_nms` ("auto"/"on"/"off"), `visualize`
    (pose); `keypoints` (PGFA); `frames` (a `FrameRange` for videos); `window_stride`, `short`,
    `sil_threshold` (gait); `progress` (lines on stderr). Options another family takes are refused.
    """
    if not inputs:
        raise BadInputError("no INPUT given; pass images, image folders or videos (pose, re-ID), silhouette "
                            "folders, .npy or silhouette videos (gait)")
    missing = [p for p in inputs if not Path(p).exists()]
    if missing:
        raise BadInputError(f"input(s) not found: {missing[:5]}; check the paths")
    with Engine.load(engine_path, threads=threads) as engine:
        family = engine.manifest["model"]["family"]
        _refuse_foreign(family, options)
        results, extra = _BY_FAMILY[family](engine, inputs, **options)
        return {"model": engine.manifest["model"]["name"], "family": family, **extra, "results": results}


_FAMILY_OPTIONS = {"boxes": ("pose", "reid"), "ann": ("pose", "reid"), "det_thr": ("pose", "reid"),
                   "pose_nms": ("pose",), "visualize": ("pose",), "keypoints": ("reid",),
                   "window_stride": ("gait",), "short": ("gait",), "sil_threshold": ("gait",)}


def _refuse_foreign(family: str, options: Mapping[str, Any]) -> None:
    defaults = {"det_thr": 0.0, "pose_nms": "auto", "short": "pad"}
    for k, v in options.items():
        fams = _FAMILY_OPTIONS.get(k)
        if fams and family not in fams and v is not None and v != defaults.get(k):
            raise BadInputError(f"--{k.replace('_', '-')} is for {'/'.join(fams)} engines; this one is {family}")


def embeddings_from_results(data: Mapping, output: Optional[str] = None) -> tuple[np.ndarray, list[str]]:
    """Embeddings `[N, ...]` and input names from `infer_files` JSON (gait/re-ID)."""
    if data.get("family") not in ("gait", "reid"):
        raise BadInputError(f"results of family {data.get('family')!r} hold no embeddings; use a gait or re-ID engine")
    res = data["results"]
    if not res:
        raise BadInputError("the results file holds no results")
    keys = [k for k in res[0] if k not in ("input", "frames_kept", "frames_total", "windows", "padded",
                                           "visibility", "image_id")]
    key = output or ("embeddings" if "embeddings" in keys else "feat" if "feat" in keys else keys[0])
    if key not in keys:
        raise BadInputError(f"output {output!r} is not in the results; available: {keys}")
    return np.asarray([r[key] for r in res], dtype=np.float32), [r["input"] for r in res]
