"""ResNet written here with torchvision's module layout and key names (there is no torchvision).

Deep Residual Learning for Image Recognition (He et al., CVPR 2016, arXiv:1512.03385), in
torchvision's "v1.5" form: the Bottleneck strides on its 3x3 conv (`conv2`), not on `conv1`.
Layout follows pytorch/vision `torchvision/models/resnet.py` (BSD-3-Clause), so an upstream state dict
(`conv1, bn1, layer1..4.{i}.conv{1,2,3}/bn{1,2,3}/downsample.{0,1}, fc`) loads with strict=True.

Used by: RGA and PGFA (BatchNorm2d, last stride 1), PRTR (`FrozenBatchNorm2d`, no `fc`), ResNet-9 of
GaitBase (`resnet9.py`, BasicBlock), and as the template of AlphaPose's SE-ResNet.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Type, Union

import torch
import torch.nn as nn

NormLayer = Callable[[int], nn.Module]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding = dilation, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation, groups=groups,
                     bias=False, dilation=dilation)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters, as DETR/PRTR build their backbones.

    State: buffers `weight`, `bias`, `running_mean`, `running_var` (no `num_batches_tracked`; one
    found in a checkpoint is dropped on load, as DETR does). eps = 1e-5.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, c, h, w] -> [n, c, h, w]: x * scale + shift with per-channel constants."""
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual (ResNet-18/34, ResNet-9); stride on `conv1`."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, inplanes, h, w] -> [n, planes, h/stride, w/stride]."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided, torchvision v1.5) -> 1x1 with a residual; output planes * 4 channels."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = norm_layer(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = norm_layer(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, inplanes, h, w] -> [n, 4 * planes, h/stride, w/stride]."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


Block = Type[Union[BasicBlock, Bottleneck]]


def make_layer(block: Block, inplanes: int, planes: int, blocks: int, stride: int = 1,
               norm_layer: NormLayer = nn.BatchNorm2d) -> nn.Sequential:
    """A ResNet stage as torchvision's `_make_layer` builds it (downsample = [conv1x1, norm]).

    The first block gets the stride and a downsample when the stride is not 1 or the channel count
    changes; the other `blocks - 1` keep the shape.
    """
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(conv1x1(inplanes, planes * block.expansion, stride),
                                   norm_layer(planes * block.expansion))
    layers = [block(inplanes, planes, stride, downsample, norm_layer=norm_layer)]
    layers += [block(planes * block.expansion, planes, norm_layer=norm_layer) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class ResNet(nn.Module):
    """torchvision's ResNet: stem (7x7/2 conv, norm, ReLU, 3x3/2 max pool), layer1..4, optional fc.

    Args:
        block: `BasicBlock` or `Bottleneck`.
        layers: blocks per stage, e.g. [3, 4, 6, 3] (ResNet-50) or [3, 4, 23, 3] (ResNet-101).
        last_stride: stride of layer4; 2 (torchvision), 1 for re-ID (RGA, PGFA: output stride 16).
        num_classes: width of the `fc` classifier; None omits `avgpool`/`fc` (a feature backbone,
            as PRTR's IntermediateLayerGetter keeps it). Default 1000 (the ImageNet head PGFA keeps).
        norm_layer: `nn.BatchNorm2d` (default) or `FrozenBatchNorm2d`.
        in_channels: image channels; default 3.
    """

    def __init__(self, block: Block, layers: Sequence[int], last_stride: int = 2,
                 num_classes: Optional[int] = 1000, norm_layer: NormLayer = nn.BatchNorm2d,
                 in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for i, (planes, n, stride) in enumerate(zip((64, 128, 256, 512), layers, (1, 2, 2, last_stride))):
            setattr(self, f"layer{i + 1}", make_layer(block, inplanes, planes, n, stride, norm_layer))
            inplanes = planes * block.expansion
        self.out_channels = inplanes
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(inplanes, num_classes)
        else:
            self.fc = None

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """[n, 3, h, w] -> [n, 64, h/4, w/4]."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[n, 3, h, w] float32 -> layer4 map [n, 512 * expansion, h/(16 * last_stride), w/(16 * last_stride)]."""
        x = self.forward_stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, 3, h, w] -> logits [n, num_classes], or the layer4 map when there is no `fc`."""
        x = self.forward_features(x)
        if self.fc is None:
            return x
        return self.fc(torch.flatten(self.avgpool(x), 1))  # [n, c, 1, 1] -> [n, c] -> [n, classes]


def resnet50(**kwargs) -> ResNet:
    """ResNet-50 (Bottleneck, [3, 4, 6, 3]); kwargs as `ResNet`."""
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


def resnet101(**kwargs) -> ResNet:
    """ResNet-101 (Bottleneck, [3, 4, 23, 3]); kwargs as `ResNet`."""
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)
