"""U-Net (Ronneberger et al., MICCAI 2015, arXiv:1505.04597) as GaitEdge's segmentation network.

Upstream: ShiqiYu/OpenGait@0efafd4 `opengait/modeling/backbones/u_net.py` (class `U_Net`). Licence:
MIT. Key names follow upstream exactly (`Conv1.conv.0`, `Up4.up.1`, `Conv_1x1`, ...) so GaitEdge
checkpoints load with strict=True.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class ConvBlock(nn.Module):
    """[Conv2d 3x3 (bias), BN, ReLU] x 2; keys `conv.{0,1,3,4}`."""

    def __init__(self, ch_in: int, ch_out: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(ch_in, ch_out, kernel_size=3, stride=1, padding=1, bias=True),
            nn.BatchNorm2d(ch_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch_out, ch_out, kernel_size=3, stride=1, padding=1, bias=True),
            nn.BatchNorm2d(ch_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, ch_in, h, w] -> [n, ch_out, h, w]."""
        return self.conv(x)


class UpConv(nn.Module):
    """Nearest x2 upsampling, Conv2d 3x3 (bias), BN, ReLU; keys `up.{1,2}`."""

    def __init__(self, ch_in: int, ch_out: int) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.Conv2d(ch_in, ch_out, kernel_size=3, stride=1, padding=1, bias=True),
            nn.BatchNorm2d(ch_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, ch_in, h, w] -> [n, ch_out, 2h, 2w]."""
        return self.up(x)


class UNet(nn.Module):
    """Four-level U-Net with widths 16-32-64-128 and a one-channel logit head.

    Args:
        in_channels: input channels; default 3 (RGB).
        freeze_half: stop gradients in the encoder (Conv1..Conv4), as upstream fine-tuning does;
            default True. No effect on outputs.
    """

    def __init__(self, in_channels: int = 3, freeze_half: bool = True) -> None:
        super().__init__()
        self.Maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.Conv1 = ConvBlock(in_channels, 16)
        self.Conv2 = ConvBlock(16, 32)
        self.Conv3 = ConvBlock(32, 64)
        self.Conv4 = ConvBlock(64, 128)
        if freeze_half:
            for block in (self.Conv1, self.Conv2, self.Conv3, self.Conv4):
                block.requires_grad_(False)
        self.Up4 = UpConv(128, 64)
        self.Up_conv4 = ConvBlock(128, 64)
        self.Up3 = UpConv(64, 32)
        self.Up_conv3 = ConvBlock(64, 32)
        self.Up2 = UpConv(32, 16)
        self.Up_conv2 = ConvBlock(32, 16)
        self.Conv_1x1 = nn.Conv2d(16, 1, kernel_size=1, stride=1, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, in_channels, h, w] float32 (h, w divisible by 8) -> logits [n, 1, h, w] float32."""
        x1 = self.Conv1(x)  # [n, 16, h, w]
        x2 = self.Conv2(self.Maxpool(x1))  # [n, 32, h/2, w/2]
        x3 = self.Conv3(self.Maxpool(x2))  # [n, 64, h/4, w/4]
        x4 = self.Conv4(self.Maxpool(x3))  # [n, 128, h/8, w/8]
        d4 = self.Up_conv4(torch.cat((x3, self.Up4(x4)), dim=1))  # [n, 64, h/4, w/4]
        d3 = self.Up_conv3(torch.cat((x2, self.Up3(d4)), dim=1))  # [n, 32, h/2, w/2]
        d2 = self.Up_conv2(torch.cat((x1, self.Up2(d3)), dim=1))  # [n, 16, h, w]
        return self.Conv_1x1(d2)
