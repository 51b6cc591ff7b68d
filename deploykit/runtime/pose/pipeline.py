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
from .transforms import TopDownConfig, crop_persons

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
    from .decode import decode_outputs

    if len(rows) == 0:
        return []
    crops = crop_persons(image, rows[:, :4], cfg)
    outs = infer_many(engine, {engine.inputs[0].name: crops.inputs})
    kps, scores = decode_outputs(outs, crops)
    if nms is not None:
        res = pose_nms(rows[:, :4], rows[:, 4], kps, scores, variant=cfg.nms_variant, params=nms)
        return [_person(res.boxes[i], res.box_scores[i], res.keypoints[i], res.keypoint_scores[i],
                        res.proposal_scores[i]) for i in range(len(res))]
    people = []
    for box, bs, k, s in zip(rows[:, :4], rows[:, 4], kps, scores):
        vis = s[s > VIS_THRESH]
        people.append(_person(box, bs, k, s, bs * (vis.mean() if vis.size else 0.0)))
    return people


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
