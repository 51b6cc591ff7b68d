"""HRNet pose estimation: Deep High-Resolution Representation Learning for Human Pose Estimation
(Sun, Xiao, Liu, Wang; CVPR 2019, arXiv:1902.09212).

Upstream: leoxiaobin/deep-high-resolution-net.pytorch@6f69e46 `lib/models/pose_hrnet.py` with
`experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml` and `w48_384x288_adam_lr1e-3.yaml`.
Licence: MIT (code). Released checkpoints are plain state dicts (`final_state.pth` style); resume
files `{'state_dict' (module.), 'best_state_dict'}` are unwrapped by the generic loader.
"""

from __future__ import annotations

from ...records import Decoder
from ..backbones.hrnet import HRNet
from ..registry import ModelSpec, register_model
from . import common

UPSTREAM = "leoxiaobin/deep-high-resolution-net.pytorch@6f69e46 lib/models/pose_hrnet.py"
PAPER = "HRNet, CVPR 2019, arXiv:1902.09212"


def _spec(name: str, width: int, h: int, w: int) -> ModelSpec:
    return ModelSpec(
        name=name, family="pose", inputs=(common.pose_input(h, w),), outputs=(common.HEATMAPS,),
        default_config={"width": width, "num_joints": 17, "final_conv_kernel": 1},
        upstream_keys=f"hrnet_w{width}_{h}x{w}.json", upstream=UPSTREAM, paper=PAPER,
        licence=common.HRNET_LICENCE, preprocess=common.topdown_preprocess(h, w, color="RGB"),
        postprocess=common.heatmap_postprocess(Decoder.QUARTER, (h // 4, w // 4), upstream_decoder="hrnet",
                                               flip_test=True,
                                               sigma=2 if h == 256 else 3),
        input_size_keys=())  # fully convolutional: another input size changes no weight


@register_model(_spec("hrnet-w32", 32, 256, 192))
def hrnet_w32(**config) -> HRNet:
    return HRNet(head="pose", **config)


@register_model(_spec("hrnet-w48", 48, 384, 288))
def hrnet_w48(**config) -> HRNet:
    return HRNet(head="pose", **config)
