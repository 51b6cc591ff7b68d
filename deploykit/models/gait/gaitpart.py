"""GaitPart: Temporal Part-based Model for Gait Recognition (Fan et al.; CVPR 2020).

Paper: https://openaccess.thecvf.com/content_CVPR_2020/papers/Fan_GaitPart_Temporal_Part-Based_Model_for_Gait_Recognition_CVPR_2020_paper.pdf
Upstream: ShiqiYu/OpenGait@0efafd4 `opengait/modeling/models/gaitpart.py` (backbone
`backbones/plain.py`), configs `configs/gaitpart/gaitpart.yaml` (CASIA-B) and `gaitpart_OUMVLP.yaml`.
Licence: MIT (code).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from ..layers import (BasicConv1d, HorizontalPoolingPyramid, PackSequenceWrapper, Plain, SeparateFCs,
                      SetBlockWrapper, clones)
from ..registry import ModelSpec, register_model
from . import common


class TemporalFeatureAggregator(nn.Module):
    """GaitPart's micro-motion capture module: per-part temporal attention, then max over frames.

    For each part p, two branches (MTB1: Conv1d k3 -> LReLU -> Conv1d k1; MTB2: k3 -> LReLU -> k3,
    each part with its own weights) give sigmoid scores over time; they weight the templates
    avg_pool + max_pool over 3 (MTB1) and 5 (MTB2) frames (stride 1, AvgPool counts the zero
    padding). Output: max over frames of the sum of both weighted templates.

    Args:
        in_channels: feature channels c.
        squeeze: hidden width is c // squeeze; default 4.
        parts_num: horizontal parts p; default 16.
    """

    def __init__(self, in_channels: int, squeeze: int = 4, parts_num: int = 16) -> None:
        super().__init__()
        hidden = int(in_channels // squeeze)
        self.parts_num = parts_num
        conv3x1 = nn.Sequential(BasicConv1d(in_channels, hidden, 3, padding=1), nn.LeakyReLU(inplace=True),
                                BasicConv1d(hidden, in_channels, 1))
        self.conv1d3x1 = clones(conv3x1, parts_num)
        self.avg_pool3x1 = nn.AvgPool1d(3, stride=1, padding=1)
        self.max_pool3x1 = nn.MaxPool1d(3, stride=1, padding=1)
        conv3x3 = nn.Sequential(BasicConv1d(in_channels, hidden, 3, padding=1), nn.LeakyReLU(inplace=True),
                                BasicConv1d(hidden, in_channels, 3, padding=1))
        self.conv1d3x3 = clones(conv3x3, parts_num)
        self.avg_pool3x3 = nn.AvgPool1d(5, stride=1, padding=2)
        self.max_pool3x3 = nn.MaxPool1d(5, stride=1, padding=2)
        # `clones` deep-copies one initialised block; upstream then re-initialises every conv
        # (init_parameters), so each part starts from its own random weights. Do the same.
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                m.reset_parameters()

    @staticmethod
    def _scores(convs: nn.ModuleList, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-part conv branch: p tensors [n, c, s] -> sigmoid scores [p, n, c, s]."""
        return torch.sigmoid(torch.stack([conv(x) for conv, x in zip(convs, parts)], 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [n, c, s, p] float32 -> [n, c, p] float32."""
        n, c, s, p = x.size()
        x = x.permute(3, 0, 1, 2).contiguous()  # [p, n, c, s]
        parts = x.unbind(0)  # p x [n, c, s]
        flat = x.view(p * n, c, s)  # templates share no weights: run them over all parts at once
        t3x1 = (self.avg_pool3x1(flat) + self.max_pool3x1(flat)).view(p, n, c, s)
        t3x3 = (self.avg_pool3x3(flat) + self.max_pool3x3(flat)).view(p, n, c, s)
        feat = t3x1 * self._scores(self.conv1d3x1, parts) + t3x3 * self._scores(self.conv1d3x3, parts)
        return feat.max(-1)[0].permute(1, 2, 0).contiguous()  # [p, n, c] -> [n, c, p]


class GaitPart(nn.Module):
    """GaitPart: Plain backbone with focal convs -> per-frame HPP -> TFA -> SeparateFCs.

    Args:
        layers_cfg: Plain backbone layers (see `layers.Plain`).
        in_channels: silhouette channels; default 1.
        out_channels: embedding width per part.
        bin_num: HPP strips; default [16] (parts = 16).
    """

    def __init__(self, layers_cfg: Sequence[str], in_channels: int = 1, out_channels: int = 128,
                 bin_num: Sequence[int] = (16,)) -> None:
        super().__init__()
        backbone = Plain(layers_cfg, in_channels)
        width = backbone.out_channels
        parts = sum(bin_num)
        # Attribute order = upstream state-dict order: Backbone, Head, TFA.
        self.Backbone = SetBlockWrapper(backbone)
        self.Head = SeparateFCs(parts, width, out_channels)
        self.HPP = SetBlockWrapper(HorizontalPoolingPyramid(bin_num))
        self.TFA = PackSequenceWrapper(TemporalFeatureAggregator(in_channels=width, parts_num=parts))

    def forward(self, sils: torch.Tensor) -> torch.Tensor:
        """sils [n, s, 64, 44] float32 in [0, 1] -> embeddings [n, out_channels, 16] float32."""
        out = self.Backbone(sils.unsqueeze(1))  # [n, c, s, 16, 11]
        out = self.HPP(out)  # [n, c, s, p]
        return self.Head(self.TFA(out))  # [n, c, p] -> [n, out_channels, p]


_COMMON = dict(family="gait", inputs=(common.silhouettes(),), outputs=(common.EMBEDDINGS,),
               upstream=f"{common.OPENGAIT} opengait/modeling/models/gaitpart.py",
               paper="GaitPart, CVPR 2020", licence=common.OPENGAIT_LICENCE,
               default_frames=common.DEFAULT_FRAMES, min_frames=1, preprocess=common.preprocess(64),
               postprocess=common.POSTPROCESS)


@register_model(ModelSpec(name="gaitpart", upstream_keys="gaitpart.json", **_COMMON, default_config={
    "layers_cfg": ["BC-32", "BC-32", "M", "FC-64-2", "FC-64-2", "M", "FC-128-3", "FC-128-3"],
    "in_channels": 1, "out_channels": 128, "bin_num": [16]}))
def gaitpart(**config) -> GaitPart:
    return GaitPart(**config)


@register_model(ModelSpec(name="gaitpart-oumvlp", upstream_keys="gaitpart_oumvlp.json", **_COMMON, default_config={
    "layers_cfg": ["BC-32", "BC-32", "M", "BC-64", "BC-64", "M", "FC-128-3", "FC-128-3", "FC-256-3", "FC-256-3"],
    "in_channels": 1, "out_channels": 256, "bin_num": [16]}))
def gaitpart_oumvlp(**config) -> GaitPart:
    return GaitPart(**config)
