"""OpenGait's `Plain` backbone (GaitPart, SMPLGait) and its layer builder (also GaitSet, GLN blocks).

Upstream: ShiqiYu/OpenGait@0efafd4 `opengait/modeling/backbones/plain.py`.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from ...errors import BadInputError
from .conv import BasicConv2d, FocalConv2d


def _conv(cfg: str, in_c: int, kernel_size: int, padding: int) -> tuple[nn.Module, int]:
    """One conv from "BC-<out>" or "FC-<out>-<halving>"; returns (module, out channels)."""
    kind, *args = str(cfg).split("-")
    if not all(a.isdigit() for a in args):
        args = []  # not integers: reported below
    if kind == "BC" and len(args) == 1:
        out_c = int(args[0])
        return BasicConv2d(in_c, out_c, kernel_size, stride=1, padding=padding), out_c
    if kind == "FC" and len(args) == 2:
        out_c = int(args[0])
        return FocalConv2d(in_c, out_c, kernel_size, halving=int(args[1]), stride=1, padding=padding), out_c
    raise BadInputError(f"Plain backbone: layer {cfg!r} is not one of 'BC-<out>', 'FC-<out>-<halving>' or 'M'; "
                        f"fix layers_cfg")


def plain_layers(layers_cfg: Sequence[str], in_channels: int = 1, first_kernel: int = 5) -> nn.Sequential:
    """The layer stack of a Plain backbone, as an nn.Sequential (keys `N.conv.weight`).

    GaitSet's set blocks and GLN's stages are such stacks too (e.g. ["BC-64", "BC-64", "M"] with
    first_kernel 3), so they share this builder and keep upstream's Sequential indices.

    Args:
        layers_cfg: "BC-c" = BasicConv2d to c channels, "FC-c-h" = FocalConv2d to c channels on
            2**h horizontal strips, "M" = MaxPool2d(2, 2); the first entry must be a conv.
        in_channels: input channels; default 1 (silhouettes).
        first_kernel: kernel of the first conv; default 5. Later convs use 3; padding is kernel // 2.

    Raises:
        BadInputError: an entry that is none of the three forms, or a stack that starts with "M".
    """
    cfgs = list(layers_cfg)
    if not cfgs or cfgs[0] == "M":
        raise BadInputError(f"Plain backbone: layers_cfg {cfgs} does not start with a conv; put a 'BC-<out>' "
                            f"or 'FC-<out>-<halving>' first")
    first, in_c = _conv(cfgs[0], in_channels, first_kernel, first_kernel // 2)
    layers: list[nn.Module] = [first, nn.LeakyReLU(inplace=True)]
    for cfg in cfgs[1:]:
        if cfg == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            conv, in_c = _conv(cfg, in_c, 3, 1)
            layers += [conv, nn.LeakyReLU(inplace=True)]
    return nn.Sequential(*layers)


class Plain(nn.Module):
    """OpenGait's Plain backbone: `plain_layers(layers_cfg, in_channels)` under key prefix `feature.`.

    The first conv has kernel 5 / padding 2, the others kernel 3 / padding 1; every conv is
    followed by LeakyReLU(0.01).

    Args:
        layers_cfg: e.g. ["BC-32", "BC-32", "M", "FC-64-2", "FC-64-2", "M", "FC-128-3", "FC-128-3"].
        in_channels: input channels; default 1 (silhouettes).

    Attributes:
        out_channels: channels of the last conv (the backbone's output width).
    """

    def __init__(self, layers_cfg: Sequence[str], in_channels: int = 1) -> None:
        super().__init__()
        self.feature = plain_layers(layers_cfg, in_channels)
        self.out_channels = [m for m in self.feature if hasattr(m, "conv")][-1].conv.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, c_in, h, w] float32 -> [n, c_out, h / 2**#M, w / 2**#M] float32."""
        return self.feature(x)
