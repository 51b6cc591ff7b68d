"""Keypoint layouts: COCO-17 to the 18-point OpenPose order of AlphaPose's `--format open` output."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import BadInputError
from .. import _checks

# pPose_nms.py write_json: indexarr = [0,51,18,24,30,15,21,27,36,42,48,33,39,45,6,3,12,9] / 3, with
# index 17 (51 / 3) the appended neck = mean of the shoulders (5, 6).
OPENPOSE18_FROM_COCO = (0, 17, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)


def coco17_to_openpose18(keypoints: Any, scores: Any) -> np.ndarray:
    """COCO `[..., 17, 2]` keypoints and `[..., 17]` scores -> `[..., 18, 3]` (x, y, score), OpenPose order.

    The neck is the mean of the two shoulders (x, y and score), as AlphaPose writes it; this is the
    layout PGFA's heatmaps and part labels read.
    """
    where = "coco17_to_openpose18"
    kp = _checks.array(keypoints, "keypoints", dtype=np.float64, where=where)
    sc = _checks.array(scores, "scores", dtype=np.float64, where=where)
    if kp.ndim < 2 or kp.shape[-2:] != (17, 2) or sc.shape != kp.shape[:-1]:
        raise BadInputError(f"{where}: keypoints {list(kp.shape)} / scores {list(sc.shape)}; expected "
                            f"[..., 17, 2] and [..., 17]")
    full = np.concatenate([kp, sc[..., None]], axis=-1)  # [..., 17, 3]
    neck = (full[..., 5, :] + full[..., 6, :]) / 2
    full = np.concatenate([full, neck[..., None, :]], axis=-2)  # [..., 18, 3], neck at 17
    return full[..., list(OPENPOSE18_FROM_COCO), :]
