"""SMPLGait: Gait Recognition in the Wild with Dense 3D Representations and A Benchmark (Zheng,
Liu, Liu, He, Yan, Mei; CVPR 2022, arXiv:2204.02569).

Upstream: ShiqiYu/OpenGait@0efafd4 `opengait/modeling/models/smplgait.py` (modified from
Gait3D/Gait3D-Benchmark), backbone `backbones/plain.py`, config `configs/smplgait/smplgait.yaml`
(Gait3D). Licence: MIT (code).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import BadInputError
from ..layers import HorizontalPoolingPyramid, Plain, SeparateBNNecks, SeparateFCs, SetBlockWrapper, temporal_max
from ..registry import InputTemplate, ModelSpec, register_model
from . import common

SMPL_DIM = 85  # per-frame SMPL vector of Gait3D
GRID = 16  # the SMPL branch makes a 16 x 16 transform per frame (256 = 16 * 16)


class SMPLGait(nn.Module):
    """SMPLGait: a silhouette branch (Plain backbone) whose per-frame maps are multiplied by a 16x16
    transform predicted from the frame's SMPL vector (3D-STN: I + MLP(smpl)), then max over
    frames, HPP and SeparateFCs.

    Upstream zero-pads the backbone map `[16, 11]` on the right to `[16, 16]` before the product
    (computed here without the padding, see `forward`), so the map must be 16 high and at most 16
    wide: 64x44 silhouettes (the backbone halves twice). SeparateBNNecks only gives the
    training logits: the embedding is the SeparateFCs output (pre-neck), as upstream.

    Args:
        layers_cfg: Plain backbone layers (see `layers.Plain`).
        in_channels: silhouette channels; default 1.
        out_channels: embedding width per part; default 256.
        bin_num: HPP strips; default [16, 8, 4, 2, 1] (parts = 31).
        class_num: BNNecks classes (training only); default 3000 (Gait3D).
    """

    def __init__(self, layers_cfg: Sequence[str], in_channels: int = 1, out_channels: int = 256,
                 bin_num: Sequence[int] = (16, 8, 4, 2, 1), class_num: int = 3000) -> None:
        super().__init__()
        backbone = Plain(layers_cfg, in_channels)
        parts = sum(bin_num)
        # Attribute order = upstream state-dict order.
        self.Backbone = SetBlockWrapper(backbone)
        self.FCs = SeparateFCs(parts, backbone.out_channels, out_channels)
        self.BNNecks = SeparateBNNecks(parts, out_channels, class_num)
        self.HPP = HorizontalPoolingPyramid(bin_num)
        self.fc1 = nn.Linear(SMPL_DIM, 128)
        self.fc2 = nn.Linear(128, 256)
        self.fc3 = nn.Linear(256, GRID * GRID)
        self.bn1 = nn.BatchNorm1d(128)
        self.bn2 = nn.BatchNorm1d(256)
        self.bn3 = nn.BatchNorm1d(GRID * GRID)
        self.dropout2 = nn.Dropout(p=0.2)
        self.dropout3 = nn.Dropout(p=0.2)

    def smpl_transform(self, smpls: torch.Tensor) -> torch.Tensor:
        """smpls [n, s, 85] float32 -> per-frame transforms I + G, [n, 1, s, 16, 16] float32."""
        n, s, d = smpls.size()
        x = smpls.reshape(n * s, d)
        x = F.relu(self.bn1(self.fc1(x)))
        x = F.relu(self.bn2(self.dropout2(self.fc2(x))))
        x = F.relu(self.bn3(self.dropout3(self.fc3(x))))  # [n*s, 256]
        eye = torch.eye(GRID, dtype=x.dtype, device=x.device)
        return x.reshape(n, 1, s, GRID, GRID) + eye  # [n, 1, s, 16, 16]

    def forward(self, sils: torch.Tensor, smpls: torch.Tensor) -> torch.Tensor:
        """sils [n, s, 64, 44] float32 in [0, 1], smpls [n, s, 85] float32 -> embeddings [n, 256, 31] float32."""
        trans = self.smpl_transform(smpls)  # [n, 1, s, 16, 16]
        outs = self.Backbone(sils.unsqueeze(1))  # [n, c, s, 16, 11]
        h, w = outs.shape[-2:]
        if h != GRID or w > h:
            raise BadInputError(f"smplgait: silhouettes of {tuple(sils.shape[-2:])} give a {h}x{w} backbone map, but the "
                                f"SMPL transform needs {GRID} rows and at most {GRID} columns; feed 64x44 silhouettes")
        # Upstream zero-pads the map to [16, 16], repeats the transform over c and runs bmm on
        # [n*c*s, 16, 16]. The padded columns meet rows w.. of the transform and add exact zeros, so
        # multiplying the unpadded map by the transform's first w rows (broadcast over c) gives the
        # same products without a padding constant in the graph.
        outs = torch.matmul(outs, trans[..., :w, :])  # [n, c, s, 16, 11] @ [n, 1, s, 11, 16] -> [n, c, s, 16, 16]
        return self.FCs(self.HPP(temporal_max(outs)))  # [n, c, 16, 16] -> [n, c, 31] -> [n, 256, 31]


SMPLS = InputTemplate("smpls", ("batch", "frames", SMPL_DIM), "float32",
                      f"[n, s, {SMPL_DIM}] per-frame SMPL parameter vectors (camera, pose and shape) as "
                      f"stored in Gait3D's SMPL pkl files, unnormalised (upstream transform NoOperation); "
                      f"seeded samples are uniform in [-1, 1]",
                      low=-1.0, high=1.0)


@register_model(ModelSpec(
    name="smplgait", family="gait", upstream_keys="smplgait.json",
    inputs=(common.silhouettes(), SMPLS), outputs=(common.EMBEDDINGS,),
    upstream=f"{common.OPENGAIT} opengait/modeling/models/smplgait.py",
    paper="SMPLGait / Gait3D, CVPR 2022, arXiv:2204.02569", licence=common.OPENGAIT_LICENCE,
    default_frames=common.DEFAULT_FRAMES, min_frames=1,
    preprocess={**common.preprocess(64), "smpls": "as stored, no transform"}, postprocess=common.POSTPROCESS,
    default_config={"layers_cfg": ["BC-64", "BC-64", "M", "BC-128", "BC-128", "M", "BC-256", "BC-256"],
                    "in_channels": 1, "out_channels": 256, "bin_num": [16, 8, 4, 2, 1], "class_num": 3000}))
def smplgait(**config) -> SMPLGait:
    return SMPLGait(**config)
