"""Facts shared by the top-down pose models: COCO joints, flip pairs, crop and decoder records.

Values from shared/model_facts/reid_pose_facts.md sections 1-3 (AlphaPose, HRNet, PRTR). The runtime
applies these records from the manifest; nothing here runs at inference.
"""

from __future__ import annotations

from typing import Optional, Sequence

from ...constants import ALPHAPOSE_MEAN, COCO_FLIP_PAIRS, COCO_JOINTS, IMAGENET_MEAN, IMAGENET_STD
from ...records import Crop, CropMethod, Decoder, HeatmapPostprocess, PoseNMS, Resample
from ..images import image_input, image_preprocess
from ..registry import InputTemplate, OutputTemplate

ALPHAPOSE_LICENCE = ("AlphaPose code and weights: SJTU academic/non-profit non-commercial research licence "
                     "(commercial use needs a licence from SJTU MVIG)")
HRNET_LICENCE = ("deep-high-resolution-net.pytorch code: MIT. Released COCO weights: research use; COCO "
                 "annotations CC BY 4.0, images under Flickr terms")
PRTR_LICENCE = ("PRTR code: Apache-2.0 (derived from DETR, Apache-2.0, and HRNet, MIT). Released COCO weights: "
                "research use; COCO annotations CC BY 4.0")



def pose_nms(old: bool) -> PoseNMS:
    """AlphaPose's parametric pose NMS (`pPose_nms.py`, upstream's constants are PoseNMS's defaults):
    the old generation moves the merged keypoints by -0.3 px, the current one does not."""
    return PoseNMS(output_shift_px=-0.3 if old else 0.0)

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


def center_scale_crop(pixel_std: float, scale_mult: float = 1.25) -> Crop:
    """HRNet-style top-down crop: box -> center/scale at the input aspect -> affine warp (bilinear)."""
    return Crop(CropMethod.CENTER_SCALE, scale_mult, pixel_std,
                extra={"aspect": "input w/h (box padded to it)", "rotation": 0})


def alphapose_preprocess(h: int, w: int, *, old: bool) -> dict:
    """The AlphaPose crop and mean-only normalisation (old `crop_from_dets` or new `test_transform`)."""
    crop = (Crop(CropMethod.ALPHAPOSE_V0, enlarge=0.3, pixel_std=1.0,
                 extra={"clip_to_image": True, "min_size": 5, "aspect": "pad to input w/h", "zero_outside_box": True})
            if old else center_scale_crop(pixel_std=1.0))
    return image_preprocess(h, w, resample=Resample.AFFINE_LINEAR, resize="top-down crop (see crop)", color="RGB",
                            mean=ALPHAPOSE_MEAN, std=None, crop=crop)


def topdown_preprocess(h: int, w: int, color: str = "RGB", note: Optional[str] = None) -> dict:
    """HRNet/PRTR: ImageNet mean/std on the `color` channels, `_xywh2cs` box x1.25 with pixel_std 200."""
    extra = {"note": note} if note else {}
    return image_preprocess(h, w, resample=Resample.AFFINE_LINEAR, resize="top-down crop (see crop)", color=color,
                            mean=IMAGENET_MEAN, std=IMAGENET_STD, crop=center_scale_crop(pixel_std=200.0), **extra)


def heatmap_postprocess(decoder: Decoder, heatmap_hw: Sequence[int], *, upstream_decoder: str, channels: int = 17,
                        flip_shift: bool = True, flip_test: bool = False, pose_nms: Optional[PoseNMS] = None,
                        **extra) -> dict:
    """The manifest's `postprocess` for a heatmap model (`records.HeatmapPostprocess.to_json()`).

    Args:
        decoder: the runtime's decoder: Decoder.ALPHAPOSE_V0 (argmax, quarter offset where
            0 < p < size-1, then +0.2 px) or Decoder.QUARTER (quarter offset); both back-project
            through the inverse crop transform.
        heatmap_hw: heatmap [h, w] (stride 4).
        upstream_decoder: upstream's name for it ("hrnet", "alphapose", "alphapose_v0"), for the reader.
        channels: output channels that are COCO joints; default 17.
        flip_shift: flip test shifts the flipped heatmap by +1 px in x before averaging; default True.
        flip_test: upstream evaluates with the flip test.
        pose_nms: the pose NMS the runtime runs on this model's people (FastPose), None for none.
        extra: further decoder facts (sigma, notes), recorded as given.
    """
    return HeatmapPostprocess(decoder, (int(heatmap_hw[0]), int(heatmap_hw[1])), 4, channels, COCO_FLIP_PAIRS,
                              flip_shift, flip_test, pose_nms,
                              {"upstream_decoder": upstream_decoder, "joints": list(COCO_JOINTS),
                               "score": "heatmap max at the argmax", **extra}).to_json()
