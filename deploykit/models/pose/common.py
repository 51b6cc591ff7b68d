"""Facts shared by the top-down pose models: COCO joints, flip pairs, crop and decoder records.

Values from shared/model_facts/reid_pose_facts.md sections 1-3 (AlphaPose, HRNet, PRTR). The runtime
applies these records from the manifest; nothing here runs at inference.
"""

from __future__ import annotations

from typing import Optional, Sequence

from ..images import IMAGENET_MEAN, IMAGENET_STD, image_input, image_preprocess
from ..registry import InputTemplate, OutputTemplate

COCO_JOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
               "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
               "left_knee", "right_knee", "left_ankle", "right_ankle")
COCO_FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
ALPHAPOSE_MEAN = (0.406, 0.457, 0.480)  # subtracted from R, G, B / 255; AlphaPose divides by no std

ALPHAPOSE_LICENCE = ("AlphaPose code and weights: SJTU academic/non-profit non-commercial research licence "
                     "(commercial use needs a licence from SJTU MVIG)")
HRNET_LICENCE = ("deep-high-resolution-net.pytorch code: MIT. Released COCO weights: research use; COCO "
                 "annotations CC BY 4.0, images under Flickr terms")
PRTR_LICENCE = ("PRTR code: Apache-2.0 (derived from DETR, Apache-2.0, and HRNet, MIT). Released COCO weights: "
                "research use; COCO annotations CC BY 4.0")

# AlphaPose's parametric pose NMS constants (pPose_nms.py), used by both FastPose generations.
POSE_NMS = {"kind": "alphapose_parametric", "delta1": 1.0, "mu": 1.7, "delta2": 2.65, "gamma": 22.48,
            "score_thresh": 0.3, "match_thresh": 5, "alpha": 0.1, "area_thresh": 0.0,
            "score_dist_px": 1.0, "pck_ref_cap": 7.0, "merge_ref_cap": 15.0}

HEATMAPS = OutputTemplate("heatmaps", "[n, J, h/4, w/4] per-joint heatmaps (COCO order); argmax per channel "
                                      "is the joint, its value the score")


def alphapose_input(h: int, w: int) -> InputTemplate:
    """`[n, 3, h, w]` RGB / 255 minus AlphaPose's mean (no std): values in about [-0.48, 0.6]."""
    return InputTemplate("images", ("batch", 3, h, w), "float32",
                         f"[n, 3, {h}, {w}] RGB image, /255 then minus (0.406, 0.457, 0.480), no std (NCHW)",
                         low=-0.48, high=0.6)


def pose_input(h: int, w: int, color: str = "RGB") -> InputTemplate:
    """`[n, 3, h, w]` image, /255 then ImageNet mean/std applied to the channels in `color` order."""
    return image_input(h, w, color=color)


def center_scale_crop(pixel_std: float, scale_mult: float = 1.25) -> dict:
    """HRNet-style top-down crop: box -> center/scale at the input aspect -> affine warp (bilinear)."""
    return {"method": "center_scale_affine", "aspect": "input w/h (box padded to it)", "scale_mult": scale_mult,
            "pixel_std": pixel_std, "interpolation": "linear", "rotation": 0}


def alphapose_preprocess(h: int, w: int, *, old: bool) -> dict:
    """The AlphaPose crop and mean-only normalisation (old `crop_from_dets` or new `test_transform`)."""
    crop = ({"method": "alphapose_v0_crop", "enlarge": 0.3, "clip_to_image": True, "min_size": 5,
             "aspect": "pad to input w/h", "zero_outside_box": True, "interpolation": "linear"}
            if old else center_scale_crop(pixel_std=1.0))
    return image_preprocess(h, w, resize="top-down crop (see crop)", color="RGB", mean=ALPHAPOSE_MEAN, std=None,
                            crop=crop)


def topdown_preprocess(h: int, w: int, color: str = "RGB", note: Optional[str] = None) -> dict:
    """HRNet/PRTR: ImageNet mean/std on the `color` channels, `_xywh2cs` box x1.25 with pixel_std 200."""
    extra = {"crop": center_scale_crop(pixel_std=200.0)}
    if note:
        extra["note"] = note
    return image_preprocess(h, w, resize="top-down crop (see crop)", color=color, mean=IMAGENET_MEAN,
                            std=IMAGENET_STD, **extra)


def heatmap_postprocess(decoder: str, heatmap_hw: Sequence[int], *, channels: int = 17, flip_shift: bool = True,
                        **extra) -> dict:
    """The manifest's `postprocess` for a heatmap model.

    Args:
        decoder: "alphapose_v0" (argmax, quarter offset where 0 < p < size-1, then +0.2 px),
            "alphapose" (quarter offset where 1 < p < size-1, no shift) or "hrnet" (quarter offset
            where 1 < round(p) < size-1); all back-project through the inverse crop transform.
        heatmap_hw: heatmap [h, w] (stride 4).
        channels: output channels that are COCO joints; default 17.
        flip_shift: flip test shifts the flipped heatmap by +1 px in x before averaging; default True.
        extra: further decoder facts (pose NMS, output shift), recorded as given.
    """
    rec = {"kind": "heatmap", "decoder": decoder, "stride": 4, "heatmap_hw": [int(v) for v in heatmap_hw],
           "channels": channels, "joints": list(COCO_JOINTS), "flip_pairs": [list(p) for p in COCO_FLIP_PAIRS],
           "flip_shift": flip_shift, "score": "heatmap max at the argmax"}
    rec.update(extra)
    return rec
