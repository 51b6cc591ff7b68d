"""Backbones written here (no torchvision): ResNet, SE-ResNet, ResNet-9, HRNet."""

from .resnet import (BasicBlock, Bottleneck, FrozenBatchNorm2d, ResNet, conv1x1, conv3x3, make_layer,
                     resnet50, resnet101)
from .resnet9 import ResNet9

__all__ = ["BasicBlock", "Bottleneck", "FrozenBatchNorm2d", "ResNet", "ResNet9", "conv1x1", "conv3x3",
           "make_layer", "resnet50", "resnet101"]
