"""GaitSet: Regarding Gait as a Set for Cross-View Gait Recognition (Chao, He, Zhang, Feng;
AAAI 2019, arXiv:1811.06186).

Upstream: ShiqiYu/OpenGait@0efafd4 `opengait/modeling/models/gaitset.py`, configs
`configs/gaitset/gaitset.yaml` (CASIA-B) and `gaitset_OUMVLP.yaml`. Licence: MIT (code).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from ...errors import BadInputError
from ..layers import HorizontalPoolingPyramid, SeparateFCs, SetBlockWrapper, plain_layers, temporal_max
from ..registry import ModelSpec, register_model
from . import common


class GaitSet(nn.Module):
    """GaitSet: frame-level conv blocks, set pooling (max over frames) and a global branch.

    The global branch (`gl_block2/3`) is a copy of set_block2/3 with its own weights, applied to
    frame-pooled maps; both branches go through the HPP and one SeparateFCs head.

    Args:
        in_channels: [input, block1, block2, block3] widths; [1, 32, 64, 128] (CASIA-B) or
            [1, 64, 128, 256] (OUMVLP/GREW/CASIA-E).
        out_channels: embedding width per part; default 256.
        bin_num: HPP strip counts; default [16, 8, 4, 2, 1] (parts = 2 x 31 = 62).
    """

    def __init__(self, in_channels: Sequence[int] = (1, 32, 64, 128), out_channels: int = 256,
                 bin_num: Sequence[int] = (16, 8, 4, 2, 1)) -> None:
        super().__init__()
        c = [int(v) for v in in_channels]
        if len(c) != 4:
            raise BadInputError(f"gaitset: in_channels {c} has {len(c)} widths; give 4: [input, block1, block2, block3]")
        block2 = ([f"BC-{c[2]}", f"BC-{c[2]}", "M"], c[1])
        block3 = ([f"BC-{c[3]}", f"BC-{c[3]}"], c[2])
        # Attribute order = upstream state-dict order: set_block1..3, gl_block2..3, Head.
        self.set_block1 = SetBlockWrapper(plain_layers([f"BC-{c[1]}", f"BC-{c[1]}", "M"], c[0]))
        self.set_block2 = SetBlockWrapper(plain_layers(*block2, first_kernel=3))
        self.set_block3 = SetBlockWrapper(plain_layers(*block3, first_kernel=3))
        # Upstream deep-copies set_block2/3 and then re-initialises every conv (init_parameters):
        # same structure, own weights, no `forward_block.` prefix. Fresh blocks give just that.
        self.gl_block2 = plain_layers(*block2, first_kernel=3)
        self.gl_block3 = plain_layers(*block3, first_kernel=3)
        self.HPP = HorizontalPoolingPyramid(bin_num)
        self.Head = SeparateFCs(2 * sum(self.HPP.bin_num), c[3], out_channels)

    def forward(self, sils: torch.Tensor) -> torch.Tensor:
        """sils [n, s, 64, 44] float32 in [0, 1] -> embeddings [n, out_channels, 62] float32."""
        outs = self.set_block1(sils.unsqueeze(1))  # [n, c1, s, 32, 22]
        gl = self.gl_block2(temporal_max(outs))  # [n, c2, 16, 11]
        outs = self.set_block2(outs)  # [n, c2, s, 16, 11]
        gl = self.gl_block3(gl + temporal_max(outs))  # [n, c3, 16, 11]
        outs = temporal_max(self.set_block3(outs))  # [n, c3, 16, 11]
        gl = gl + outs
        feature = torch.cat([self.HPP(outs), self.HPP(gl)], -1)  # [n, c3, 62]
        return self.Head(feature)  # [n, out_channels, 62]


_COMMON = dict(family="gait", inputs=(common.silhouettes(),), outputs=(common.EMBEDDINGS,),
               upstream=f"{common.OPENGAIT} opengait/modeling/models/gaitset.py",
               paper="GaitSet, AAAI 2019, arXiv:1811.06186", licence=common.OPENGAIT_LICENCE,
               default_frames=common.DEFAULT_FRAMES, min_frames=1, preprocess=common.preprocess(64),
               postprocess=common.POSTPROCESS)
_BINS = [16, 8, 4, 2, 1]


@register_model(ModelSpec(name="gaitset", upstream_keys="gaitset.json", **_COMMON,
                          default_config={"in_channels": [1, 32, 64, 128], "out_channels": 256, "bin_num": _BINS}))
def gaitset(**config) -> GaitSet:
    return GaitSet(**config)


@register_model(ModelSpec(name="gaitset-oumvlp", upstream_keys="gaitset_oumvlp.json", **_COMMON,
                          default_config={"in_channels": [1, 64, 128, 256], "out_channels": 256, "bin_num": _BINS}))
def gaitset_oumvlp(**config) -> GaitSet:
    return GaitSet(**config)
