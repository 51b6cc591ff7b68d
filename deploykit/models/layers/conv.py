"""Convolution blocks: OpenGait's BasicConv1d/2d/3d, FocalConv2d (GaitPart), GLConv (GaitGL)."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F


def clones(module: nn.Module, n: int) -> nn.ModuleList:
    """`n` independent deep copies of `module` (OpenGait's `clones`)."""
    return nn.ModuleList([copy.deepcopy(module) for _ in range(n)])


class BasicConv1d(nn.Module):
    """Conv1d without bias; key `.conv.weight`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, bias=False, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, c_in, s] -> [n, c_out, s']."""
        return self.conv(x)


class BasicConv2d(nn.Module):
    """Conv2d without bias; key `.conv.weight`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              bias=False, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, c_in, h, w] -> [n, c_out, h', w']."""
        return self.conv(x)


class BasicConv3d(nn.Module):
    """Conv3d (bias off by default); key `.conv3d.weight`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size=(3, 3, 3), stride=(1, 1, 1),
                 padding=(1, 1, 1), bias: bool = False, **kwargs) -> None:
        super().__init__()
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel_size=kernel_size, stride=stride,
                                padding=padding, bias=bias, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, c_in, s, h, w] -> [n, c_out, s', h', w']."""
        return self.conv3d(x)


def _strips(x: torch.Tensor, halving: int, dim: int) -> tuple[torch.Tensor, ...]:
    # 2**halving equal strips along `dim` (H); upstream uses int(h // 2**halving) as the strip size.
    return x.split(int(x.size(dim) // 2 ** halving), dim)


class FocalConv2d(nn.Module):
    """GaitPart's focal convolution: the same conv on each of 2**halving horizontal strips.

    Padding applies per strip, so this is not one conv over the whole map. Key `.conv.weight`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, halving: int, **kwargs) -> None:
        super().__init__()
        self.halving = halving
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, bias=False, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, c_in, h, w] -> [n, c_out, h, w] (with 'same' padding)."""
        if self.halving == 0:
            return self.conv(x)
        return torch.cat([self.conv(z) for z in _strips(x, self.halving, 2)], 2)


class GLConv(nn.Module):
    """GaitGL's global-local 3-D convolution.

    global: Conv3d on the whole clip; local: the same-shaped Conv3d on each of 2**halving H-strips.
    fm_sign False: leaky_relu(g) + leaky_relu(l); True: leaky_relu(cat([g, l], H)) (H doubles).
    """

    def __init__(self, in_channels: int, out_channels: int, halving: int, fm_sign: bool = False,
                 kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=(1, 1, 1), bias: bool = False,
                 **kwargs) -> None:
        super().__init__()
        self.halving = halving
        self.fm_sign = fm_sign
        self.global_conv3d = BasicConv3d(in_channels, out_channels, kernel_size, stride, padding, bias, **kwargs)
        self.local_conv3d = BasicConv3d(in_channels, out_channels, kernel_size, stride, padding, bias, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, c_in, s, h, w] -> [n, c_out, s, h, w], or [n, c_out, s, 2h, w] when fm_sign."""
        gob = self.global_conv3d(x)
        if self.halving == 0:
            lcl = self.local_conv3d(x)
        else:
            lcl = torch.cat([self.local_conv3d(z) for z in _strips(x, self.halving, 3)], 3)
        if not self.fm_sign:
            return F.leaky_relu(gob) + F.leaky_relu(lcl)
        return F.leaky_relu(torch.cat([gob, lcl], dim=3))
