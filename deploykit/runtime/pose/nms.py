"""AlphaPose parametric pose NMS (`pPose_nms.py`), in numpy.

Constants and steps are upstream's (reid_pose_facts.md 1e). The two AlphaPose generations run the
same body NMS; they differ only in the output:

* ``variant="master"`` (default; current AlphaPose `alphapose/utils/pPose_nms.py pose_nms_body` +
  `writer.py`): merged keypoints as computed.
* ``variant="pytorch"`` (the old `pytorch` branch, also vendored by PGFA): merged keypoints
  **minus 0.3 px**.

Both report `proposal_score = mean(score) + box_score + 1.25 * max(score)`.

Deviations, only where upstream misbehaves: the pick always joins its own cluster (upstream picks
the same pose twice when a skeleton has fewer than `match_thresh` joints and it does not reach
`gamma` with itself); PCK_match is `dist <= min(ref_dist, 7)`, equal to upstream's
`dist / min(ref_dist, 7) <= 1` except for a zero-size box, where upstream divides by zero; and a
joint whose masked scores sum to zero keeps the pick's value instead of becoming NaN. The
133/136-keypoint whole-body NMS (`pose_nms_fullbody`) is not implemented.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np

from ...errors import BadInputError
from ...records import PoseNMS
from .. import _checks


# The constants are the manifest's typed record (`postprocess.pose_nms`): the model spec writes it,
# `pipeline.nms_params` reads it, and this function runs with exactly those values.
PoseNMSParams = PoseNMS


@dataclasses.dataclass
class PoseNMSResult:
    """Kept poses, in pick order (highest mean keypoint score first).

    Attributes:
        keypoints: `[M, K, 2]` merged (x, y).
        keypoint_scores: `[M, K]` merged scores.
        proposal_scores: `[M]` mean(score) + box_score + 1.25 max(score).
        boxes: `[M, 4]` the picked detections' boxes.
        box_scores: `[M]` their detector scores.
        picks: `[M]` index of each kept pose in the input.
        merged: for each kept pose, the input indices merged into it.
    """

    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    proposal_scores: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray
    picks: np.ndarray
    merged: list[np.ndarray]

    def __len__(self) -> int:
        return int(self.picks.shape[0])


def pose_nms(boxes: Any, box_scores: Any, keypoints: Any, keypoint_scores: Any, *,
             variant: str = "master", params: Optional[PoseNMSParams] = None) -> PoseNMSResult:
    """AlphaPose parametric pose NMS.

    Args:
        boxes: `[N, 4]` detector boxes (x1, y1, x2, y2); their size sets `ref_dist`.
        box_scores: `[N]` (or `[N, 1]`) detector scores.
        keypoints: `[N, K, 2]` (x, y) in image pixels.
        keypoint_scores: `[N, K]` (or `[N, K, 1]`).
        variant: "master" (default, current AlphaPose) or "pytorch" (old branch: keypoints - 0.3);
            only sets the output shift when `params.output_shift_px` is None.
        params: constants (the manifest's `postprocess.pose_nms`); default upstream's.

    Returns:
        PoseNMSResult (empty when N == 0).
    """
    where = "pose_nms"
    var = _checks.choice(variant, "variant", ("master", "pytorch"), where)
    prm = params or PoseNMSParams()
    b = _checks.array(boxes, "boxes", ndim=2, dtype=np.float64, where=where)
    bs = _checks.array(box_scores, "box_scores", ndim=(1, 2), dtype=np.float64, where=where).reshape(-1)
    kp = _checks.array(keypoints, "keypoints", ndim=3, dtype=np.float64, where=where)
    ks = _checks.array(keypoint_scores, "keypoint_scores", ndim=(2, 3), dtype=np.float64, where=where)
    if ks.ndim == 3:
        if ks.shape[2] != 1:
            raise BadInputError(f"{where}: keypoint_scores has shape {list(ks.shape)}; expected [N, K] or [N, K, 1]")
        ks = ks[..., 0]
    n = kp.shape[0]
    if b.shape != (n, 4) or bs.shape != (n,) or kp.shape[2:] != (2,) or ks.shape != kp.shape[:2]:
        raise BadInputError(f"{where}: shapes do not agree: boxes {list(b.shape)} (want [N, 4]), box_scores "
                            f"{list(bs.shape)} (want [N]), keypoints {list(kp.shape)} (want [N, K, 2]), "
                            f"keypoint_scores {list(ks.shape)} (want [N, K])")
    k = kp.shape[1]
    if k in (133, 136):
        raise BadInputError(f"{where}: {k} keypoints is AlphaPose's whole-body layout, whose NMS "
                            f"(pose_nms_fullbody) is not implemented; this is the body NMS")
    if n and ((b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any()):
        raise BadInputError(f"{where}: a box has x2 < x1 or y2 < y1; boxes are (x1, y1, x2, y2)")
    empty = PoseNMSResult(np.zeros((0, k, 2)), np.zeros((0, k)), np.zeros(0), np.zeros((0, 4)), np.zeros(0),
                          np.zeros(0, np.int64), [])
    if n == 0 or k == 0:
        return empty

    shift = prm.output_shift_px if prm.output_shift_px is not None else (-0.3 if var == "pytorch" else 0.0)
    ks = np.where(ks == 0, 1e-5, ks)
    ref_dists = prm.alpha * np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    human_scores = ks.mean(axis=1)

    remaining = np.ones(n, bool)
    picks: list[int] = []
    clusters: list[np.ndarray] = []
    while remaining.any():
        ids = np.flatnonzero(remaining)
        pick = int(ids[np.argmax(human_scores[ids])])  # first of equal maxima, as torch.argmax
        dist = np.sqrt(((kp[pick][None] - kp[ids]) ** 2).sum(-1))  # [M, K]
        # get_parametric_distance: score term only within 1 px (hard-coded upstream)
        score_term = np.where(dist <= prm.score_dist_px,
                              np.tanh(ks[pick][None] / prm.delta1) * np.tanh(ks[ids] / prm.delta1), 0.0)
        simi = score_term.sum(1) + prm.mu * np.exp(-dist / prm.delta2).sum(1)
        # PCK_match: dist / min(ref_dist, 7) <= 1
        num_match = (dist <= min(ref_dists[pick], prm.pck_ref_cap)).sum(1)
        delete = (simi > prm.gamma) | (num_match >= prm.match_thresh) | (ids == pick)
        picks.append(pick)
        clusters.append(ids[delete])
        remaining[ids[delete]] = False

    out_kp, out_ks, out_prop, keep = [], [], [], []
    for j, pick in enumerate(picks):
        if ks[pick].max() < prm.score_thresh:
            continue
        members = clusters[j]
        # p_merge_fast: score-weighted mean of the joints within min(ref_dist, 15) of the pick's
        d = np.sqrt(((kp[pick][None] - kp[members]) ** 2).sum(-1))
        masked = ks[members] * (d <= min(ref_dists[pick], prm.merge_ref_cap))
        total = masked.sum(0)
        ok = total != 0
        normed = masked / np.where(ok, total, 1.0)
        merged_pose = np.where(ok[:, None], (kp[members] * normed[..., None]).sum(0), kp[pick])
        merged_score = np.where(ok, (masked * normed).sum(0), ks[pick])
        if merged_score.max() < prm.score_thresh:
            continue
        span = merged_pose.max(0) - merged_pose.min(0)
        if 1.5 ** 2 * span[0] * span[1] < prm.area_thresh:
            continue
        out_kp.append(merged_pose + shift)
        out_ks.append(merged_score)
        out_prop.append(merged_score.mean() + bs[pick] + 1.25 * merged_score.max())
        keep.append(j)
    if not keep:
        return empty
    pk = np.array([picks[j] for j in keep], np.int64)
    return PoseNMSResult(np.stack(out_kp), np.stack(out_ks), np.array(out_prop), b[pk], bs[pk], pk,
                         [clusters[j] for j in keep])
