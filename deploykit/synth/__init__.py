"""Synthetic tasks with ground truth, for training and judging proxy models (numpy + OpenCV, no torch).

- `walkers` (gait): silhouette clips of identities that differ in body and gait;
- `pose_figures` (pose): rendered persons on clutter with their COCO-17 keypoints;
- `reid_persons` (re-ID): person crops of identities that differ in colours, proportions and
  accessories, from several cameras.

Every generator is deterministic: the same arguments give the same bytes. These are stand-ins
that make accuracy measurable here; they are not a camera's data.
"""

from .gait import CONDITIONS, VIEWS, WalkerIdentity, walkers
from .pose import COCO_KEYPOINTS, heatmap_targets, pose_figures
from .reid import reid_persons

__all__ = ["CONDITIONS", "VIEWS", "COCO_KEYPOINTS", "WalkerIdentity", "heatmap_targets", "pose_figures",
           "reid_persons", "walkers"]
