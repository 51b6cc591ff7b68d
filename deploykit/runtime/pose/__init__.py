"""Top-down pose pre/post-processing around a pose engine (no torch).

    >>> from deploykit.runtime import Engine
    >>> from deploykit.runtime.pose import TopDownConfig, crop_persons, decode_heatmaps, pose_nms
    >>> with Engine.load("artifacts/hrnet-w32.onnx") as engine:
    ...     cfg = TopDownConfig.from_manifest(engine.manifest)
    ...     crops = crop_persons(image_bgr, boxes, cfg)              # [N, 3, 256, 192]
    ...     hm = engine.infer({"images": crops.inputs})["heatmaps"]  # [N, 17, 64, 48]
    ...     xy, score = decode_heatmaps(hm, cfg.decoder)              # heatmap pixels
    ...     xy_img = crops.to_image(xy)                               # image pixels
    ...     # or in one call, PRTR and flip test included:
    ...     xy_img, score = decode_outputs(engine.infer({"images": crops.inputs}), crops)

Modules: `transforms` (crops, affine maps, configs and presets), `decode` (heatmaps, DARK, flip
test, PRTR matching), `nms` (AlphaPose parametric pose NMS), `formats` (COCO-17 -> OpenPose-18).
"""

from .decode import (decode_heatmaps, decode_outputs, decode_prtr, flip_average, flip_back, flip_images,
                     get_max_preds)
from .formats import OPENPOSE18_FROM_COCO, coco17_to_openpose18
from .nms import PoseNMSParams, PoseNMSResult, pose_nms
from .transforms import (ALPHAPOSE_MEAN, COCO_FLIP_PAIRS, HALPE26_FLIP_PAIRS, IMAGENET_MEAN, IMAGENET_STD, Crops,
                         TopDownConfig, affine_points, box_to_center_scale, crop_persons, get_affine_transform,
                         transform_box_invert_v0, transform_preds)

__all__ = [
    "ALPHAPOSE_MEAN", "COCO_FLIP_PAIRS", "HALPE26_FLIP_PAIRS", "IMAGENET_MEAN", "IMAGENET_STD", "OPENPOSE18_FROM_COCO",
    "Crops", "PoseNMSParams", "PoseNMSResult", "TopDownConfig", "affine_points", "box_to_center_scale",
    "coco17_to_openpose18", "crop_persons", "decode_heatmaps", "decode_outputs", "decode_prtr", "flip_average",
    "flip_back", "flip_images", "get_affine_transform", "get_max_preds", "pose_nms", "transform_box_invert_v0",
    "transform_preds",
]
