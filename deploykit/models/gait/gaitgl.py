"""GaitGL: Gait Recognition via Effective Global-Local Feature Representation and Local Temporal
Aggregation (Lin, Zhang, Yu; ICCV 2021, arXiv:2011.01461).

Upstream: ShiqiYu/OpenGait@0efafd4 `opengait/modeling/models/gaitgl.py`, configs
`configs/gaitgl/gaitgl.yaml` (CASIA-B) and `gaitgl_OUMVLP.yaml`. Licence: MIT (code).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..layers import BasicConv3d, GeMHPP, GLConv, SeparateFCs, temporal_max
from ..registry import ModelSpec, register_model
from . import common

BIG_LAYOUT_DATASETS = ("OUMVLP", "GREW")  # upstream picks the deeper layout by dataset_name


def _conv_lrelu(cin: int, cout: int, **kw) -> list[nn.Module]:
    return [BasicConv3d(cin, cout, **kw), nn.LeakyReLU(inplace=True)]


class GaitGL(nn.Module):
    """GaitGL with the upstream Bn head: embedding = Bn(Head0(GeMHPP(max_s(features)))).

    Args:
        channels: conv widths, [32, 64, 128] (CASIA-B) or [32, 64, 128, 256] (OUMVLP/GREW).
        class_num: classes of the training-only Head1 (74 CASIA-B, 5153 OUMVLP).
        dataset_name: "OUMVLP"/"GREW" select the deeper layout, anything else the small one.
    """

    def __init__(self, channels=(32, 64, 128), class_num: int = 74, dataset_name: str = "CASIA-B") -> None:
        super().__init__()
        c = list(channels)
        big = dataset_name in BIG_LAYOUT_DATASETS
        self.conv3d = nn.Sequential(*_conv_lrelu(1, c[0]), *(_conv_lrelu(c[0], c[0]) if big else []))
        self.LTA = nn.Sequential(*_conv_lrelu(c[0], c[0], kernel_size=(3, 1, 1), stride=(3, 1, 1),
                                              padding=(0, 0, 0)))
        if big:
            self.GLConvA0 = nn.Sequential(GLConv(c[0], c[1], halving=1), GLConv(c[1], c[1], halving=1))
            self.GLConvA1 = nn.Sequential(GLConv(c[1], c[2], halving=1), GLConv(c[2], c[2], halving=1))
            self.GLConvB2 = nn.Sequential(GLConv(c[2], c[3], halving=1),
                                          GLConv(c[3], c[3], halving=1, fm_sign=True))
        else:
            self.GLConvA0 = GLConv(c[0], c[1], halving=3)
            self.GLConvA1 = GLConv(c[1], c[2], halving=3)
            self.GLConvB2 = GLConv(c[2], c[2], halving=3, fm_sign=True)
        self.MaxPool0 = nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.HPP = GeMHPP()
        width = c[-1]
        self.Head0 = SeparateFCs(64, width, width)
        self.Bn = nn.BatchNorm1d(width)
        self.Head1 = SeparateFCs(64, width, class_num)  # training logits only; kept for strict loading

    def forward(self, sils: torch.Tensor) -> torch.Tensor:
        """sils [n, s, 64, 44] float32 in [0, 1] -> embeddings [n, c, 64] float32 (post-BN)."""
        x = sils.unsqueeze(1)  # [n, 1, s, h, w]
        s = x.size(2)
        if s < 3:  # LTA folds 3 frames into 1: upstream repeats short clips
            x = x.repeat(1, 1, 3 if s == 1 else 2, 1, 1)
        x = self.LTA(self.conv3d(x))  # [n, c0, s//3, 64, 44]
        x = self.GLConvA1(self.MaxPool0(self.GLConvA0(x)))  # [n, c, s//3, 32, 22]
        x = temporal_max(self.GLConvB2(x))  # [n, c, 64, 22]
        return self.Bn(self.Head0(self.HPP(x)))  # [n, c, 64]


_COMMON = dict(family="gait", inputs=(common.silhouettes(),), outputs=(common.EMBEDDINGS,),
               upstream=f"{common.OPENGAIT} opengait/modeling/models/gaitgl.py",
               paper="GaitGL, ICCV 2021, arXiv:2011.01461", licence=common.OPENGAIT_LICENCE,
               default_frames=common.DEFAULT_FRAMES, min_frames=1, preprocess=common.preprocess(64),
               postprocess=common.POSTPROCESS)


@register_model(ModelSpec(name="gaitgl", upstream_keys="gaitgl.json", **_COMMON,
                          default_config={"channels": [32, 64, 128], "class_num": 74, "dataset_name": "CASIA-B"}))
def gaitgl(**config) -> GaitGL:
    return GaitGL(**config)


@register_model(ModelSpec(name="gaitgl-oumvlp", upstream_keys="gaitgl_oumvlp.json", **_COMMON,
                          default_config={"channels": [32, 64, 128, 256], "class_num": 5153,
                                           "dataset_name": "OUMVLP"}))
def gaitgl_oumvlp(**config) -> GaitGL:
    return GaitGL(**config)
