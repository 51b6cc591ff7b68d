"""GaitBase: the ResNet-9 baseline of OpenGait (Fan et al., "OpenGait: Revisiting Gait Recognition
Toward Better Practicality", CVPR 2023, arXiv:2211.06597).

Upstream: ShiqiYu/OpenGait@0efafd4 `opengait/modeling/models/baseline.py` (class `Baseline`) with
`backbones/resnet.py` ResNet9; configs `configs/gaitbase/gaitbase_da_casiab.yaml` (CASIA-B, 74 classes),
`gaitbase_oumvlp.yaml` (5153), `gaitbase_da_gait3d.yaml` (3000), `gaitbase_da_grew.yaml` (20000); the
variants differ only in the training-only BNNeck class count. Licence: MIT (code).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..backbones import ResNet9
from ..layers import HorizontalPoolingPyramid, SeparateBNNecks, SeparateFCs, SetBlockWrapper, temporal_max
from ..registry import ModelSpec, register_model
from . import common


class GaitBase(nn.Module):
    """SetBlockWrapper(ResNet9) -> max over frames -> HPP [16] -> SeparateFCs; embedding = FCs output.

    Args:
        channels: ResNet-9 stage widths; default [64, 128, 256, 512] (every ResNet9 config).
        layers: blocks per stage; default [1, 1, 1, 1].
        strides: stage strides; default [1, 2, 2, 1] (64x44 -> 16x11).
        parts: horizontal bins of the pyramid and parts of the heads; default 16.
        embed_dim: SeparateFCs output width; default 256.
        class_num: classes of the training-only BNNecks; 74 (CASIA-B, default), 5153 (OUMVLP),
            3000 (Gait3D), 20000 (GREW). Kept so upstream checkpoints load with strict=True.
    """

    def __init__(self, channels=(64, 128, 256, 512), layers=(1, 1, 1, 1), strides=(1, 2, 2, 1),
                 parts: int = 16, embed_dim: int = 256, class_num: int = 74) -> None:
        super().__init__()
        backbone = ResNet9("BasicBlock", channels, in_channel=1, layers=layers, strides=strides, maxpool=False)
        self.Backbone = SetBlockWrapper(backbone)
        self.FCs = SeparateFCs(parts, backbone.out_channels, embed_dim)
        self.BNNecks = SeparateBNNecks(parts, embed_dim, class_num)  # training logits only
        self.HPP = HorizontalPoolingPyramid([parts])

    def forward(self, sils: torch.Tensor) -> torch.Tensor:
        """sils [n, s, 64, 44] float32 in [0, 1] -> embeddings [n, 256, 16] float32 (pre-BNNeck)."""
        x = self.Backbone(sils.unsqueeze(1))  # [n, 1, s, 64, 44] -> [n, 512, s, 16, 11]
        x = temporal_max(x)  # [n, 512, 16, 11]
        return self.FCs(self.HPP(x))  # [n, 512, 16] -> [n, 256, 16]


_COMMON = dict(family="gait", inputs=(common.silhouettes(),), outputs=(common.EMBEDDINGS,),
               upstream=f"{common.OPENGAIT} opengait/modeling/models/baseline.py",
               paper="OpenGait/GaitBase, CVPR 2023, arXiv:2211.06597", licence=common.OPENGAIT_LICENCE,
               default_frames=common.DEFAULT_FRAMES, min_frames=1, preprocess=common.preprocess(64),
               postprocess=common.POSTPROCESS)


@register_model(ModelSpec(name="gaitbase", upstream_keys="gaitbase.json", **_COMMON,
                          default_config={"class_num": 74}))
def gaitbase(**config) -> GaitBase:
    return GaitBase(**config)


@register_model(ModelSpec(name="gaitbase-oumvlp", upstream_keys="gaitbase_oumvlp.json", **_COMMON,
                          default_config={"class_num": 5153}))
def gaitbase_oumvlp(**config) -> GaitBase:
    return GaitBase(**config)


@register_model(ModelSpec(name="gaitbase-gait3d", upstream_keys="gaitbase_gait3d.json", **_COMMON,
                          default_config={"class_num": 3000}))
def gaitbase_gait3d(**config) -> GaitBase:
    return GaitBase(**config)


@register_model(ModelSpec(name="gaitbase-grew", upstream_keys="gaitbase_grew.json", **_COMMON,
                          default_config={"class_num": 20000}))
def gaitbase_grew(**config) -> GaitBase:
    return GaitBase(**config)
