"""AlphaPose parametric pose NMS: duplicates merge, distinct people stay, upstream constants and steps."""

import numpy as np
import pytest

from deploykit.errors import BadInputError
from deploykit.runtime.pose import PoseNMSParams, pose_nms

# pPose_nms.py constants
DELTA1, MU, DELTA2, GAMMA, SCORE_T, MATCH_T, ALPHA = 1, 1.7, 2.65, 22.48, 0.3, 5, 0.1


def upstream_pose_nms(bboxes, bbox_scores, pose_preds, pose_scores):
    """Literal numpy transcription of the pytorch-branch `pose_nms` (np.delete loop), without the -0.3."""
    pose_scores = pose_scores.copy()
    pose_scores[pose_scores == 0] = 1e-5
    ori_preds, ori_scores, ori_bbox_scores = pose_preds.copy(), pose_scores.copy(), bbox_scores.copy()
    widths, heights = bboxes[:, 2] - bboxes[:, 0], bboxes[:, 3] - bboxes[:, 1]
    ref_dists = ALPHA * np.maximum(widths, heights)
    human_scores = pose_scores.mean(axis=1)
    human_ids = np.arange(bboxes.shape[0])
    pick, merge_ids = [], []
    while human_scores.shape[0] != 0:
        pick_id = int(np.argmax(human_scores))
        pick.append(human_ids[pick_id])
        ref_dist = ref_dists[human_ids[pick_id]]
        # get_parametric_distance
        dist = np.sqrt(((pose_preds[pick_id][None] - pose_preds) ** 2).sum(2))
        mask = dist <= 1
        score_dists = np.zeros_like(dist)
        pred_scores = np.repeat(pose_scores[pick_id][None], pose_preds.shape[0], 0)
        score_dists[mask] = np.tanh(pred_scores[mask] / DELTA1) * np.tanh(pose_scores[mask] / DELTA1)
        simi = score_dists.sum(1) + MU * np.exp(-dist / DELTA2).sum(1)
        # PCK_match
        num_match = (dist / min(ref_dist, 7) <= 1).sum(1)
        delete_ids = np.arange(human_scores.shape[0])[(simi > GAMMA) | (num_match >= MATCH_T)]
        if delete_ids.shape[0] == 0:
            delete_ids = np.array([pick_id])
        merge_ids.append(human_ids[delete_ids])
        pose_preds = np.delete(pose_preds, delete_ids, axis=0)
        pose_scores = np.delete(pose_scores, delete_ids, axis=0)
        human_ids = np.delete(human_ids, delete_ids)
        human_scores = np.delete(human_scores, delete_ids, axis=0)
    results = []
    for j, p in enumerate(pick):
        if ori_scores[p].max() < SCORE_T:
            continue
        mid = merge_ids[j]
        # p_merge_fast
        dist = np.sqrt(((ori_preds[p][None] - ori_preds[mid]) ** 2).sum(2))
        mask = dist <= min(ref_dists[p], 15)
        masked = ori_scores[mid] * mask
        normed = masked / masked.sum(0)
        merge_pose = (ori_preds[mid] * normed[..., None]).sum(0)
        merge_score = (masked * normed).sum(0)
        if merge_score.max() < SCORE_T:
            continue
        results.append((p, merge_pose, merge_score, merge_score.mean() + ori_bbox_scores[p] + 1.25 * merge_score.max()))
    return results


def person(rng, cx, cy, k=17, spread=40.0):
    return np.stack([cx + rng.uniform(-spread, spread, k), cy + rng.uniform(-2 * spread, 2 * spread, k)], axis=1)


def test_constructed_duplicates_merge_and_distinct_people_stay():
    rng = np.random.default_rng(0)
    people = [person(rng, 100, 150), person(rng, 400, 160), person(rng, 250, 300)]
    kps, scores, boxes, owner = [], [], [], []
    for pid, p in enumerate(people):
        for dup in range(4):  # each person detected four times with sub-pixel jitter
            kps.append(p + rng.uniform(-0.4, 0.4, p.shape))
            scores.append(rng.uniform(0.5, 0.95, 17))
            lo, hi = p.min(0), p.max(0)
            boxes.append([*lo, *hi])
            owner.append(pid)
    kps, scores, boxes, owner = np.array(kps), np.array(scores), np.array(boxes), np.array(owner)
    order = rng.permutation(len(kps))
    kps, scores, boxes, owner = kps[order], scores[order], boxes[order], owner[order]
    res = pose_nms(boxes, rng.uniform(0.5, 1, len(kps)), kps, scores)
    assert len(res) == 3
    for merged, kp in zip(res.merged, res.keypoints):
        assert len(set(owner[merged])) == 1 and len(merged) == 4  # one person's four detections
        truth = people[owner[merged][0]]
        assert np.abs(kp - truth).max() < 0.4  # a score-weighted mean of the jittered copies
    # the merged pose is exactly the score-weighted mean (all duplicates within min(ref_dist, 15))
    m = res.merged[0]
    w = scores[m] / scores[m].sum(0)
    np.testing.assert_allclose(res.keypoints[0], (kps[m] * w[..., None]).sum(0))
    np.testing.assert_allclose(res.keypoint_scores[0], (scores[m] * w).sum(0))


def test_matches_the_upstream_transcription_on_random_crowds():
    rng = np.random.default_rng(1)
    for trial in range(30):
        n_people = rng.integers(1, 5)
        kps, scores, boxes = [], [], []
        for _ in range(n_people):
            base = person(rng, rng.uniform(50, 600), rng.uniform(80, 400), spread=rng.uniform(5, 60))
            for _ in range(rng.integers(1, 5)):
                kps.append(base + rng.normal(0, rng.choice([0.3, 2.0, 8.0]), base.shape))
                scores.append(np.clip(rng.uniform(-0.05, 1.0, 17), 0, 1))
                boxes.append([*kps[-1].min(0), *kps[-1].max(0)])
        kps, scores, boxes = np.array(kps), np.array(scores), np.array(boxes)
        bs = rng.uniform(0, 1, len(kps))
        ref = upstream_pose_nms(boxes, bs, kps, scores)
        got = pose_nms(boxes, bs, kps, scores)
        assert [r[0] for r in ref] == got.picks.tolist(), trial
        for (p, pose, sc, prop), kp, ks, pr in zip(ref, got.keypoints, got.keypoint_scores, got.proposal_scores):
            np.testing.assert_allclose(kp, pose, atol=1e-9)
            np.testing.assert_allclose(ks, sc, atol=1e-12)
            np.testing.assert_allclose(pr, prop, atol=1e-12)


def test_pytorch_variant_shifts_by_minus_0_3_only():
    rng = np.random.default_rng(2)
    kp = person(rng, 200, 200)[None]
    args = ([[0, 0, 100, 200]], [0.9], kp, np.full((1, 17), 0.8))
    new, old = pose_nms(*args), pose_nms(*args, variant="pytorch")
    np.testing.assert_allclose(old.keypoints, new.keypoints - 0.3)
    np.testing.assert_allclose(old.proposal_scores, new.proposal_scores)
    np.testing.assert_allclose(new.proposal_scores, [0.8 + 0.9 + 1.25 * 0.8])
    with pytest.raises(BadInputError, match="variant"):
        pose_nms(*args, variant="v2")


def test_low_scores_are_dropped_and_pck_alone_merges():
    rng = np.random.default_rng(3)
    p = person(rng, 100, 100)
    low = pose_nms([[0, 0, 100, 200]], [1.0], p[None], np.full((1, 17), 0.29))
    assert len(low) == 0  # max keypoint score < 0.3
    # second pose: 5 joints within min(ref_dist, 7) = 7 px, the rest far away -> merged by PCK_match
    q = p + 100.0
    q[:5] = p[:5] + 3.0
    res = pose_nms([[0, 0, 100, 200]] * 2, [1.0, 1.0], np.stack([p, q]), np.stack([np.full(17, 0.9), np.full(17, 0.5)]))
    assert len(res) == 1 and res.merged[0].tolist() == [0, 1]
    q[:5] = p[:5] + 7.5  # now only 0 joints within 7 px
    res = pose_nms([[0, 0, 100, 200]] * 2, [1.0, 1.0], np.stack([p, q]), np.stack([np.full(17, 0.9), np.full(17, 0.5)]))
    assert len(res) == 2


def test_params_and_shapes():
    rng = np.random.default_rng(4)
    p = person(rng, 100, 100)
    kp = np.stack([p, p + 0.2])
    sc = np.full((2, 17), 0.9)
    assert len(pose_nms([[0, 0, 50, 50]] * 2, [1, 1], kp, sc)) == 1
    never = PoseNMSParams(gamma=1e9, match_thresh=100)
    assert len(pose_nms([[0, 0, 50, 50]] * 2, [1, 1], kp, sc, params=never)) == 2
    res = pose_nms(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 17, 2)), np.zeros((0, 17)))
    assert len(res) == 0 and res.keypoints.shape == (0, 17, 2)
    r3 = pose_nms([[0, 0, 50, 50]] * 2, [[1], [1]], kp, sc[..., None])  # [N, 1] and [N, K, 1] accepted
    assert len(r3) == 1
    with pytest.raises(BadInputError, match="do not agree"):
        pose_nms([[0, 0, 50, 50]], [1, 1], kp, sc)
    with pytest.raises(BadInputError, match="x2 < x1"):
        pose_nms([[50, 0, 0, 50]] * 2, [1, 1], kp, sc)
    with pytest.raises(BadInputError, match="whole-body"):
        pose_nms(np.zeros((1, 4)), [1], np.zeros((1, 133, 2)), np.ones((1, 133)))
    with pytest.raises(BadInputError, match="NaN"):
        pose_nms([[0, 0, 50, 50]] * 2, [1, 1], np.full((2, 17, 2), np.nan), sc)
