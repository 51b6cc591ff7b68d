"""Facts from upstream projects and number formats, written once (no torch, no numpy).

Every layer imports these: the model specs write them into manifests, the runtime applies them,
calibration and the FP16 tools compare against them. Sources: shared/model_facts/*.md.
"""

from __future__ import annotations

# -- image normalisation (on pixels / 255, RGB channel order) ------------------------------------
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ALPHAPOSE_MEAN = (0.406, 0.457, 0.480)  # subtracted from R, G, B / 255; both AlphaPose versions divide by no std

# -- COCO keypoints -------------------------------------------------------------------------------
COCO_JOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
               "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
               "left_knee", "right_knee", "left_ankle", "right_ankle")
COCO_FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
HALPE26_FLIP_PAIRS = COCO_FLIP_PAIRS + ((20, 21), (22, 23), (24, 25))

# -- INT8 calibration -------------------------------------------------------------------------------
# Default range method. Percentile (99.99) rather than TensorRT's entropy: on the three trained proxies
# (gaitset, hrnet-w32, rga; benchmarks/int8_accuracy.md) percentile ranges pass every INT8 gate with both
# Q/DQ layouts, while entropy ranges fail the U8S8 model on gaitset (centred cosine 0.67) and rga (0.27)
# and the S8S8 model on gaitset (signal NSR 0.209 > 0.2).
DEFAULT_CALIB_METHOD = "percentile"

# -- IEEE half precision ---------------------------------------------------------------------------
FP16_MAX = 65504.0  # largest finite value; above it a tensor becomes inf
FP16_MIN_NORMAL = 2.0 ** -14  # 6.1e-05: below it values are subnormal
FP16_RESOLUTION = 2.0 ** -11  # relative step of the 11-bit significand
FP16_LOSSY = 2.0 ** -17  # below this a subnormal keeps fewer than 8 significant bits
FP16_ZERO = 2.0 ** -25  # rounds to zero
