"""GLN: Gait Lateral Network, Learning Discriminative and Compact Representations for Gait
Recognition (Hou, Cao, Liu, Huang; ECCV 2020).

Paper: http://home.ustc.edu.cn/~saihui/papers/eccv2020_gln.pdf
Upstream: ShiqiYu/OpenGait@0efafd4 `opengait/modeling/models/gln.py`, configs
`configs/gln/gln_phase1.yaml` (lateral pre-training) and `gln_phase2.yaml` (with the compact
block). Input 128x88 on CASIA-B (model zoo "Input Size 128x88"). Licence: MIT (code).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import BadInputError
from ..layers import HorizontalPoolingPyramid, SeparateFCs, SetBlockWrapper, plain_layers, temporal_max
from ..registry import ModelSpec, register_model
from . import common


def _conv(cin: int, cout: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size, stride=1, padding=kernel_size // 2, bias=False)


class GLN(nn.Module):
    """GLN: GaitSet-like silhouette/set encoder, a lateral (FPN-style) decoder and per-scale HPP.

    The inference embedding is the SeparateFCs output in both phases (upstream returns it as
    `inference_feat`). The phase-2 compact block (`encoder_bn`, `reduce_*`) feeds only the
    training losses; it is built so that phase-2 checkpoints load strictly, and `compact_block`
    computes it for completeness.

    Args:
        in_channels: [input, stage0, stage1, stage2] widths; default [1, 32, 64, 128].
        hidden_dim: Head output width (and the compact block's reduce dim); default 256.
        lateral_dim: lateral/smooth conv width (= Head input width); default 256.
        bin_num: HPP strips per scale; default [16, 8, 4, 2, 1] (parts = 3 x 31 = 93).
        lateral_pretraining: True = phase 1 (no compact block); default False (phase 2).
        class_num: classes of the compact block's classifier; default 74 (CASIA-B).
        dropout: compact block dropout; default 0.9.
    """

    def __init__(self, in_channels: Sequence[int] = (1, 32, 64, 128), hidden_dim: int = 256,
                 lateral_dim: int = 256, bin_num: Sequence[int] = (16, 8, 4, 2, 1),
                 lateral_pretraining: bool = False, class_num: int = 74, dropout: float = 0.9) -> None:
        super().__init__()
        c = [int(v) for v in in_channels]
        if len(c) != 4:
            raise BadInputError(f"gln: in_channels {c} has {len(c)} widths; give 4: [input, stage0, stage1, stage2]")
        stage1 = ([f"BC-{c[2]}", f"BC-{c[2]}"], c[1])
        stage2 = ([f"BC-{c[3]}", f"BC-{c[3]}"], c[2])
        # Attribute order = upstream state-dict order.
        self.sil_stage_0 = SetBlockWrapper(plain_layers([f"BC-{c[1]}", f"BC-{c[1]}"], c[0]))
        self.sil_stage_1 = SetBlockWrapper(plain_layers(*stage1, first_kernel=3))
        self.sil_stage_2 = SetBlockWrapper(plain_layers(*stage2, first_kernel=3))
        # Upstream deep-copies sil_stage_1/2 and then re-initialises every conv (init_parameters):
        # same structure, own weights, no `forward_block.` prefix. Fresh stages give just that.
        self.set_stage_1 = plain_layers(*stage1, first_kernel=3)
        self.set_stage_2 = plain_layers(*stage2, first_kernel=3)
        self.MaxP_sil = SetBlockWrapper(nn.MaxPool2d(kernel_size=2, stride=2))
        self.MaxP_set = nn.MaxPool2d(kernel_size=2, stride=2)
        self.lateral_layer1 = _conv(c[1] * 2, lateral_dim, 1)
        self.lateral_layer2 = _conv(c[2] * 2, lateral_dim, 1)
        self.lateral_layer3 = _conv(c[3] * 2, lateral_dim, 1)
        self.smooth_layer1 = _conv(lateral_dim, lateral_dim, 3)
        self.smooth_layer2 = _conv(lateral_dim, lateral_dim, 3)
        self.smooth_layer3 = _conv(lateral_dim, lateral_dim, 3)
        # Upstream builds this HPP with its default bins, which equal bin_num in every GLN config.
        self.HPP = HorizontalPoolingPyramid(bin_num)
        parts = 3 * sum(self.HPP.bin_num)
        self.Head = SeparateFCs(parts, lateral_dim, hidden_dim)
        self.pretrain = bool(lateral_pretraining)
        if not self.pretrain:  # compact block: training only, present in phase-2 checkpoints
            flat = parts * hidden_dim
            self.encoder_bn = nn.BatchNorm1d(flat)
            self.encoder_bn.bias.requires_grad_(False)
            self.reduce_dp = nn.Dropout(p=dropout)
            self.reduce_ac = nn.ReLU(inplace=True)
            self.reduce_fc = nn.Linear(flat, hidden_dim, bias=False)
            self.reduce_bn = nn.BatchNorm1d(hidden_dim)
            self.reduce_bn.bias.requires_grad_(False)
            self.reduce_cls = nn.Linear(hidden_dim, class_num, bias=False)

    @staticmethod
    def _upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Nearest x2 upsampling of x [n, c, h, w], plus y [n, c, 2h, 2w]."""
        return F.interpolate(x, scale_factor=2, mode="nearest") + y

    def forward(self, sils: torch.Tensor) -> torch.Tensor:
        """sils [n, s, 128, 88] float32 in [0, 1] -> embeddings [n, hidden_dim, 93] float32."""
        sil_0 = self.sil_stage_0(sils.unsqueeze(1))  # [n, c1, s, 128, 88]
        set_0 = temporal_max(sil_0)  # [n, c1, 128, 88]
        sil_1_in = self.MaxP_sil(sil_0)  # [n, c1, s, 64, 44]
        sil_1 = self.sil_stage_1(sil_1_in)  # [n, c2, s, 64, 44]
        sil_2 = self.sil_stage_2(self.MaxP_sil(sil_1))  # [n, c3, s, 32, 22]
        set_1_sil = temporal_max(sil_1)
        set_1 = self.set_stage_1(temporal_max(sil_1_in)) + set_1_sil  # [n, c2, 64, 44]
        set_2_sil = temporal_max(sil_2)
        set_2 = self.set_stage_2(self.MaxP_set(set_1)) + set_2_sil  # [n, c3, 32, 22]

        set1 = torch.cat((set_0, set_0), dim=1)  # [n, 2*c1, 128, 88]
        set2 = torch.cat((set_1_sil, set_1), dim=1)  # [n, 2*c2, 64, 44]
        set3 = torch.cat((set_2_sil, set_2), dim=1)  # [n, 2*c3, 32, 22]
        set3 = self.lateral_layer3(set3)  # [n, lateral_dim, 32, 22]
        set2 = self._upsample_add(set3, self.lateral_layer2(set2))  # [n, lateral_dim, 64, 44]
        set1 = self._upsample_add(set2, self.lateral_layer1(set1))  # [n, lateral_dim, 128, 88]
        set3, set2, set1 = self.smooth_layer3(set3), self.smooth_layer2(set2), self.smooth_layer1(set1)
        feature = torch.cat([self.HPP(set1), self.HPP(set2), self.HPP(set3)], -1)  # [n, lateral_dim, 93]
        return self.Head(feature)  # [n, hidden_dim, 93]

    def compact_block(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Phase-2 training branch: embeddings [n, c, p] -> (reduce [n, 1, d], bn reduce [n, 1, d],
        logits [n, 1, class_num]). Not part of the inference graph.

        Raises:
            RuntimeError: the model was built for phase 1 (no compact block).
        """
        if self.pretrain:
            raise RuntimeError("GLN: this is the phase-1 (lateral_pretraining) model; it has no compact block")
        n = feature.size(0)
        bn = self.encoder_bn(feature.reshape(n, -1))  # [n, c*p]
        reduce = self.reduce_fc(self.reduce_ac(self.reduce_dp(bn)))  # [n, d]
        bn_reduce = self.reduce_bn(reduce)
        logits = self.reduce_cls(bn_reduce)
        return reduce.unsqueeze(1), bn_reduce.unsqueeze(1), logits.unsqueeze(1)


_COMMON = dict(family="gait", inputs=(common.silhouettes(128, 88),), outputs=(common.EMBEDDINGS,),
               upstream=f"{common.OPENGAIT} opengait/modeling/models/gln.py",
               paper="GLN, ECCV 2020", licence=common.OPENGAIT_LICENCE,
               default_frames=common.DEFAULT_FRAMES, min_frames=1, preprocess=common.preprocess(128),
               postprocess=common.POSTPROCESS)
_CONFIG = {"in_channels": [1, 32, 64, 128], "hidden_dim": 256, "lateral_dim": 256,
           "bin_num": [16, 8, 4, 2, 1], "class_num": 74, "dropout": 0.9}


@register_model(ModelSpec(name="gln", upstream_keys="gln.json", **_COMMON,
                          default_config={**_CONFIG, "lateral_pretraining": False}))
def gln(**config) -> GLN:
    return GLN(**config)


@register_model(ModelSpec(name="gln-phase1", upstream_keys="gln_phase1.json", **_COMMON,
                          default_config={**_CONFIG, "lateral_pretraining": True}))
def gln_phase1(**config) -> GLN:
    return GLN(**config)
