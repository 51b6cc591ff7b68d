"""OpenGait's ResNet-9 (GaitBase's backbone): a small torchvision-style ResNet on silhouettes.

Upstream: ShiqiYu/OpenGait@0efafd4 `opengait/modeling/backbones/resnet.py` class `ResNet9` (MIT), which
subclasses torchvision's ResNet and replaces its stem by a 3x3 BasicConv2d (key `conv1.conv.weight`).
Here it reuses `resnet.BasicBlock` and `resnet.make_layer`, so keys equal upstream's: `conv1.conv`,
`bn1`, `layer{1..4}.{i}.{conv1,bn1,conv2,bn2,downsample.0,downsample.1}` and no `fc`.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from ..layers import BasicConv2d
from .resnet import BasicBlock, Bottleneck, make_layer

BLOCKS = {"BasicBlock": BasicBlock, "Bottleneck": Bottleneck}


class ResNet9(nn.Module):
    """Stem BasicConv2d 3x3/1 + BN + ReLU (+ optional 3x3/2 max pool), then four ResNet stages.

    Args:
        block: "BasicBlock" (every GaitBase config) or "Bottleneck".
        channels: stage widths; GaitBase [64, 128, 256, 512]; default (upstream's) [32, 64, 128, 256].
        in_channel: input channels; 1 for silhouettes (default).
        layers: blocks per stage; GaitBase [1, 1, 1, 1]; default [1, 2, 2, 1]. A 0 makes the stage an
            identity (no keys), as upstream.
        strides: stage strides; default [1, 2, 2, 1].
        maxpool: apply the 3x3/2 max pool after the stem; GaitBase False; default True.
    """

    def __init__(self, block: str = "BasicBlock", channels: Sequence[int] = (32, 64, 128, 256),
                 in_channel: int = 1, layers: Sequence[int] = (1, 2, 2, 1), strides: Sequence[int] = (1, 2, 2, 1),
                 maxpool: bool = True) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"ResNet9: block {block!r} is not one of {sorted(BLOCKS)}")
        blk = BLOCKS[block]
        self.maxpool_flag = maxpool
        self.conv1 = BasicConv2d(in_channel, channels[0], 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(channels[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = channels[0]
        for i, (planes, n, stride) in enumerate(zip(channels, layers, strides)):
            if n >= 1:
                setattr(self, f"layer{i + 1}", make_layer(blk, inplanes, planes, n, stride))
                inplanes = planes * blk.expansion
            else:
                setattr(self, f"layer{i + 1}", nn.Identity())
        self.out_channels = inplanes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, in_channel, h, w] -> [n, out_channels, h / prod(strides), w / prod(strides)] (/2 more with maxpool)."""
        x = self.relu(self.bn1(self.conv1(x)))
        if self.maxpool_flag:
            x = self.maxpool(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
