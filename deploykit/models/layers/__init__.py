"""Blocks shared by two or more methods (OpenGait's `modules.py`), grouped by theme.

Key names follow OpenGait exactly (`.conv`, `.conv3d`, `fc_bin`, `bn1d`) so that upstream
checkpoints load with strict=True.
"""

from .conv import BasicConv1d, BasicConv2d, BasicConv3d, FocalConv2d, GLConv, clones
from .part_heads import SeparateBNNecks, SeparateFCs
from .plain import Plain, plain_layers
from .set_pooling import GeMHPP, HorizontalPoolingPyramid, PackSequenceWrapper, SetBlockWrapper, temporal_max

__all__ = ["BasicConv1d", "BasicConv2d", "BasicConv3d", "FocalConv2d", "GLConv", "clones",
           "SeparateBNNecks", "SeparateFCs", "Plain", "plain_layers", "GeMHPP", "HorizontalPoolingPyramid",
           "PackSequenceWrapper", "SetBlockWrapper", "temporal_max"]
