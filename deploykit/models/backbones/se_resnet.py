"""SE-ResNet as AlphaPose builds it: a torchvision-layout ResNet with SE only in each stage's first block.

Upstream: MVIG-SJTU/AlphaPose, branch `pytorch` `SPPE/src/models/layers/SE_Resnet.py` + `SE_module.py`
(the old FastPose, `duc_se.pth`) and master `alphapose/models/layers/SE_Resnet.py` (current FastPose);
both build the same graph. Licence: AlphaPose is free for non-commercial use only (see its LICENSE).

Differences from a plain ResNet (facts: shared/model_facts/reid_pose_facts.md section 1a):
- the block that gets a `downsample` (the first of every stage, layer1 included since 64 != 256)
  also gets an `se` SELayer(4 * planes, reduction=1), applied after `bn3`, before the residual add;
- no `avgpool`/`fc`: the backbone returns the layer4 map (stride 32).
Keys: `conv1, bn1, layerN.i.{conv1,bn1,conv2,bn2,conv3,bn3}`, then `layerN.0.se.fc.{0,2}` and
`layerN.0.downsample.{0,1}` in that order, as upstream registers them.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from .resnet import Bottleneck, NormLayer, ResNet


class SELayer(nn.Module):
    """Squeeze-and-excitation: global average pool -> Linear -> ReLU -> Linear -> Sigmoid -> x * gate.

    Args:
        channels: input channels C.
        reduction: hidden width is C // reduction; AlphaPose uses 1 (Linear C -> C). Default 1.
    """

    def __init__(self, channels: int, reduction: int = 1) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(inplace=True),
                                nn.Linear(channels // reduction, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, c, h, w] -> [n, c, h, w] float32, each channel scaled by its gate in (0, 1)."""
        gate = self.fc(self.avg_pool(x).flatten(1))  # [n, c, 1, 1] -> [n, c]
        return x * gate[:, :, None, None]  # [n, c] -> [n, c, 1, 1]


class SEBottleneck(Bottleneck):
    """torchvision's Bottleneck plus an `se` gate when the block has a `downsample` (AlphaPose's rule).

    AlphaPose passes `reduction=True` exactly to the block it gives a downsample, so the SE flag is
    derived from `downsample` here; that lets the shared `make_layer`/`ResNet` build SE-ResNets.
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__(inplanes, planes, stride, None, norm_layer)
        self.se = SELayer(planes * self.expansion) if downsample is not None else None
        self.downsample = downsample  # registered after `se`, as upstream orders its keys

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, inplanes, h, w] -> [n, 4 * planes, h/stride, w/stride]."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        return self.relu(out + identity)


SE_RESNET_LAYERS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def se_resnet(depth: int = 101, norm_layer: NormLayer = nn.BatchNorm2d) -> ResNet:
    """AlphaPose's `SEResnet(f"resnet{depth}")`: [n, 3, h, w] -> [n, 2048, h/32, w/32].

    Args:
        depth: 50, 101 (default) or 152.
        norm_layer: default nn.BatchNorm2d (eps 1e-5; upstream's momentum does not matter at eval).

    Raises:
        ValueError: a depth AlphaPose does not build with Bottleneck blocks.
    """
    if depth not in SE_RESNET_LAYERS:
        raise ValueError(f"SE-ResNet depth {depth} is not one of {sorted(SE_RESNET_LAYERS)}")
    return ResNet(SEBottleneck, SE_RESNET_LAYERS[depth], num_classes=None, norm_layer=norm_layer)
