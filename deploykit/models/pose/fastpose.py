"""FastPose: AlphaPose's single-person pose estimator (RMPE: Regional Multi-Person Pose Estimation, Fang et al.,
ICCV 2017, arXiv:1612.00137; AlphaPose, Fang et al., TPAMI 2022, arXiv:2211.03375).

Upstream: MVIG-SJTU/AlphaPose, branch `pytorch` [ded84d4] `SPPE/src/models/FastPose.py` (the old
`duc_se.pth`: SE-ResNet-101, 33 channels, 320x256) and master [c60106d] `alphapose/models/fastpose.py`
with `configs/coco/resnet/256x192_res50_lr1e-3_1x.yaml` (SE-ResNet-50, 17 joints, 256x192).
Licence: AlphaPose's academic/non-commercial licence, code and weights.

Graph: SE-ResNet -> PixelShuffle(2) -> DUC(512, 1024) -> DUC(256, 512) -> Conv3x3(128 -> J). The
PixelShuffles export as ONNX DepthToSpace (CRD); they stay so here (the patch stage handles them).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from ...records import Decoder
from ..backbones.se_resnet import se_resnet
from ..registry import ModelSpec, register_model
from . import common

OLD_UPSTREAM = "MVIG-SJTU/AlphaPose@ded84d4 (branch pytorch) SPPE/src/models/FastPose.py"
NEW_UPSTREAM = "MVIG-SJTU/AlphaPose@c60106d alphapose/models/fastpose.py"
PAPER = "RMPE, ICCV 2017, arXiv:1612.00137; AlphaPose, TPAMI 2022, arXiv:2211.03375"


class DUC(nn.Module):
    """Dense upsampling convolution: Conv3x3 (no bias) -> BN -> ReLU -> PixelShuffle(2); out = planes / 4.

    Keys `conv.weight`, `bn.*` as upstream.
    """

    def __init__(self, inplanes: int, planes: int, upscale_factor: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(inplanes, planes, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, inplanes, h, w] -> [n, planes / 4, 2h, 2w]."""
        return self.pixel_shuffle(self.relu(self.bn(self.conv(x))))


class FastPose(nn.Module):
    """FastPose (key prefix `preact.` for the SE-ResNet, `suffle1` is upstream's spelling).

    Args:
        num_layers: SE-ResNet depth, 101 (old `duc_se.pth`) or 50 (current COCO config).
        num_joints: conv_out channels: 33 for the old model (COCO 17 then MPII 16), 17 for COCO.
        output_joints: channels returned, the first ones of conv_out; None returns all. The old
            inference (`InferenNet_fast`) keeps the first 17 (`out.narrow(1, 0, 17)`).
    """

    conv_dim = 128

    def __init__(self, num_layers: int = 101, num_joints: int = 33, output_joints: Optional[int] = 17) -> None:
        super().__init__()
        if output_joints is not None and not 1 <= output_joints <= num_joints:
            raise ValueError(f"FastPose: output_joints {output_joints} must be in 1..num_joints ({num_joints})")
        self.output_joints = output_joints
        self.preact = se_resnet(num_layers)
        self.suffle1 = nn.PixelShuffle(2)
        self.duc1 = DUC(512, 1024)
        self.duc2 = DUC(256, 512)
        self.conv_out = nn.Conv2d(self.conv_dim, num_joints, kernel_size=3, stride=1, padding=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images [n, 3, h, w] float32 (mean-only normalised RGB) -> heatmaps [n, J, h/4, w/4] float32."""
        x = self.suffle1(self.preact(images))  # [n, 2048, h/32, w/32] -> [n, 512, h/16, w/16]
        x = self.conv_out(self.duc2(self.duc1(x)))  # -> [n, 256, h/8, w/8] -> [n, 128, h/4, w/4] -> [n, J, ...]
        return x if self.output_joints is None else x[:, : self.output_joints]


def _spec(name: str, *, old: bool, h: int, w: int, upstream_keys: str, config: dict) -> ModelSpec:
    note = ({"note": "first 17 of 33 conv_out channels are COCO; preds += 0.2 px after the quarter offset, "
                     "keypoints -0.3 px after pose NMS"} if old else {})
    return ModelSpec(
        name=name, family="pose", inputs=(common.alphapose_input(h, w),), outputs=(common.HEATMAPS,),
        default_config=config, upstream_keys=upstream_keys, upstream=OLD_UPSTREAM if old else NEW_UPSTREAM,
        paper=PAPER, licence=common.ALPHAPOSE_LICENCE,
        preprocess=common.alphapose_preprocess(h, w, old=old),
        postprocess=common.heatmap_postprocess(Decoder.ALPHAPOSE_V0 if old else Decoder.QUARTER, (h // 4, w // 4),
                                               upstream_decoder="alphapose_v0" if old else "alphapose",
                                               flip_shift=not old, pose_nms=common.pose_nms(old), **note),
        input_size_keys=())  # fully convolutional (SE-ResNet, PixelShuffle, DUC): another size changes no weight


@register_model(_spec("fastpose", old=True, h=320, w=256, upstream_keys="alphapose_fastpose_se101.json",
                      config={"num_layers": 101, "num_joints": 33, "output_joints": 17}))
def fastpose(**config) -> FastPose:
    return FastPose(**config)


@register_model(_spec("fastpose-res50", old=False, h=256, w=192,
                      upstream_keys="alphapose_fastpose_res50_256x192.json",
                      config={"num_layers": 50, "num_joints": 17, "output_joints": None}))
def fastpose_res50(**config) -> FastPose:
    return FastPose(**config)
