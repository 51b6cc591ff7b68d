"""One image's people: boxes -> crops -> engine (any number of boxes) -> keypoints -> pose NMS.

Pose NMS is AlphaPose's parametric NMS with the constants the manifest records
(`postprocess.pose_nms`, FastPose models); models that record none (HRNet, PRTR) get no NMS unless
asked, with upstream's defaults. A person's score is NMS's `proposal_score` when NMS ran, else
HRNet's rescoring: box score x mean of the keypoint scores above 0.2 (`in_vis_thre`).

COCO keypoint results (what pycocotools' `loadRes` reads): `{"image_id", "category_id": 1,
"keypoints": [x, y, v] * K, "score"}` with v the keypoint score, as HRNet and AlphaPose write it.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from ...errors import BadInputError
from .nms import PoseNMSParams, pose_nms
from .transforms import Crops, TopDownConfig, crop_persons

VIS_THRESH = 0.2  # HRNet TEST.IN_VIS_THRE: keypoints that count towards the rescored person score


def nms_params(manifest: Mapping[str, Any]) -> Optional[PoseNMSParams]:
    """The manifest's `postprocess.pose_nms` record (unknown keys refused), or None when it records none."""
    rec = (manifest.get("postprocess") or {}).get("pose_nms")
    return PoseNMSParams.from_json(rec) if rec else None


def resolve_nms(manifest: Mapping[str, Any], mode: str = "auto") -> Optional[PoseNMSParams]:
    """"auto": the manifest's NMS if it records one; "on": that or upstream's defaults; "off": none."""
    if mode not in ("auto", "on", "off"):
        raise BadInputError(f"pose NMS mode {mode!r} is not one of auto, on, off")
    if mode == "off":
        return None
    params = nms_params(manifest)
    return params if params is not None or mode == "auto" else PoseNMSParams()


def estimate(engine, image: np.ndarray, rows: np.ndarray, cfg: TopDownConfig,
             nms: Optional[PoseNMSParams] = None) -> list[dict]:
    """People of one BGR image from its boxes `rows [N, 5]` (x1, y1, x2, y2, score), in one engine pass
    for a dynamic engine of max >= N (else chunks via `infer_many`)."""
    from ..batching import infer_many

    if len(rows) == 0:
        return []
    crops = crop_persons(image, rows[:, :4], cfg)
    return finish(infer_many(engine, {engine.inputs[0].name: crops.inputs}), crops, rows, nms)


def finish(outs: Mapping[str, np.ndarray], crops: Crops, rows: np.ndarray,
           nms: Optional[PoseNMSParams] = None) -> list[dict]:
    """The engine's outputs for `crops` (of `rows [N, 5]`) -> people: decoding, then pose NMS or rescoring.
    `estimate` runs it in-process; the Triton ensemble's post model runs it on the served engine's outputs."""
    from .decode import decode_outputs

    if len(rows) == 0:
        return []
    kps, scores = decode_outputs(outs, crops)
    if nms is not None:
        res = pose_nms(rows[:, :4], rows[:, 4], kps, scores, variant=crops.config.nms_variant, params=nms)
        return [_person(res.boxes[i], res.box_scores[i], res.keypoints[i], res.keypoint_scores[i],
                        res.proposal_scores[i]) for i in range(len(res))]
    people = []
    for box, bs, k, s in zip(rows[:, :4], rows[:, 4], kps, scores):
        vis = s[s > VIS_THRESH]
        people.append(_person(box, bs, k, s, bs * (vis.mean() if vis.size else 0.0)))
    return people


def crop_geometry(crops: Crops) -> np.ndarray:
    """`[N, 4]` float64: what maps a crop's coordinates back to the image (center + scale, or the v0
    crop's ul + br corners); with `crops_from_geometry` it carries a Crops between two processes."""
    if crops.config.crop == "alphapose_v0":
        return np.concatenate([crops.ul, crops.br], 1).astype(np.float64)
    return np.concatenate([crops.center, crops.scale], 1).astype(np.float64)


def crops_from_geometry(geometry: np.ndarray, rows: np.ndarray, cfg: TopDownConfig) -> Crops:
    """A Crops (without its pixels: `inputs` is `[N, 0, 0, 0]`) from `crop_geometry`'s `[N, 4]`."""
    g = np.asarray(geometry, np.float64).reshape(-1, 4)
    if len(g) != len(rows):
        raise BadInputError(f"crop geometry has {len(g)} rows for {len(rows)} boxes; pass both from one pre step")
    empty = np.zeros((len(g), 0, 0, 0), np.float32)
    if cfg.crop == "alphapose_v0":
        return Crops(empty, np.asarray(rows, np.float64)[:, :4], cfg, ul=g[:, :2], br=g[:, 2:])
    return Crops(empty, np.asarray(rows, np.float64)[:, :4], cfg, center=g[:, :2], scale=g[:, 2:])


def _person(box, box_score, keypoints, scores, score) -> dict:
    return {"box": np.round(box, 2).tolist(), "box_score": round(float(box_score), 5),
            "keypoints": np.round(keypoints, 2).tolist(), "scores": np.round(scores, 4).tolist(),
            "score": round(float(score), 5)}


def coco_record(image_id: Any, person: Mapping[str, Any]) -> dict:
    """One COCO keypoint result from a person of `estimate`."""
    kp = np.asarray(person["keypoints"], np.float64)
    sc = np.asarray(person["scores"], np.float64)
    flat = np.concatenate([kp, sc[:, None]], 1).reshape(-1)
    return {"image_id": image_id, "category_id": 1, "keypoints": np.round(flat, 3).tolist(),
            "score": person["score"]}
