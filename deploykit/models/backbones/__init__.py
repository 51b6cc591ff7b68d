"""Backbones written here (no torchvision): ResNet, SE-ResNet, ResNet-9, HRNet."""
