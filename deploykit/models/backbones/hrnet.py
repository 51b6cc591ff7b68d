"""HRNet (Deep High-Resolution Representation Learning for Human Pose Estimation, Sun et al., CVPR 2019,
arXiv:1902.09212) with its two heads: the pose head and the classification-style head PRTR uses.

Upstream: leoxiaobin/deep-high-resolution-net.pytorch@6f69e46 `lib/models/pose_hrnet.py` (pose net,
MIT licence) and mlpc-ucsd/PRTR@64970b8 `two_stage/lib/models/hrnet.py` (HRNet-Image-Classification's
head, MIT licence). Blocks are torchvision's BasicBlock/Bottleneck (`resnet.py`), as upstream's are.

- trunk: stem (two 3x3/2 convs), layer1 (4 Bottlenecks, 64 -> 256), then stages 2-4 with 2/3/4
  branches of width C * 2**k (C = 32 or 48), 1/4/3 modules, 4 BasicBlocks per branch, fuse = sum.
- head "pose": the last stage-4 module outputs only the stride-4 branch; `final_layer` Conv1x1
  (bias) -> `num_joints` heatmaps at stride 4.
- head "cls": every branch is kept; `incre_modules` (one Bottleneck to 128/256/512/1024 channels),
  `downsamp_modules` (Conv3x3/2 with bias + BN + ReLU) fold them into stride 32, then `final_layer`
  Conv1x1 1024 -> 2048 + BN + ReLU.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from .resnet import BasicBlock, Bottleneck, make_layer

# Stage layout per width: (modules, branches) for stages 2, 3, 4; 4 BasicBlocks per branch.
STAGES = ((1, 2), (4, 3), (3, 4))
BLOCKS_PER_BRANCH = 4
CLS_HEAD_CHANNELS = (32, 64, 128, 256)  # Bottleneck planes of the incre modules (x4 = 128 .. 1024)


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, relu: bool, bias: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=bias), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches, then every output resolution sums all branches (fuse method SUM).

    Keys: `branches.{b}.{i}.*` (BasicBlocks) and `fuse_layers.{i}.{j}.*`: for j > i a Conv1x1 + BN +
    nearest Upsample x2**(j-i); for j < i a chain of i-j Conv3x3/2 + BN (+ ReLU except the last).

    Args:
        channels: width of each branch, e.g. [32, 64, 128].
        num_blocks: BasicBlocks per branch; default 4.
        multi_scale_output: False keeps only the highest-resolution output (pose head's last module).
    """

    def __init__(self, channels: Sequence[int], num_blocks: int = BLOCKS_PER_BRANCH,
                 multi_scale_output: bool = True) -> None:
        super().__init__()
        c = list(channels)
        self.branches = nn.ModuleList(make_layer(BasicBlock, ci, ci, num_blocks) for ci in c)
        n = len(c)
        self.fuse_layers = nn.ModuleList()
        for i in range(n if multi_scale_output else 1):
            row = nn.ModuleList()
            for j in range(n):
                if j > i:
                    row.append(nn.Sequential(*_conv_bn(c[j], c[i], 1, 1, relu=False),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                elif j == i:
                    row.append(None)
                else:
                    steps = [_conv_bn(c[j], c[j], 3, 2, relu=True) for _ in range(i - j - 1)]
                    row.append(nn.Sequential(*steps, _conv_bn(c[j], c[i], 3, 2, relu=False)))
            self.fuse_layers.append(row)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Branch maps [n, c_k, h/2**k, w/2**k] -> fused maps of the same shapes (or only k = 0)."""
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, len(xs)):
                y = y + (xs[j] if i == j else row[j](xs[j]))
            out.append(self.relu(y))
        return out


def _transition(prev: Sequence[int], cur: Sequence[int]) -> nn.ModuleList:
    """Between stages: adapt widths of kept branches (Conv3x3 + BN + ReLU, or None), add new
    lower-resolution branches from the last one (Conv3x3/2 chain)."""
    layers = nn.ModuleList()
    for i, ci in enumerate(cur):
        if i < len(prev):
            layers.append(_conv_bn(prev[i], ci, 3, 1, relu=True) if ci != prev[i] else None)
        else:
            steps = [_conv_bn(prev[-1], ci if k == i - len(prev) else prev[-1], 3, 2, relu=True)
                     for k in range(i + 1 - len(prev))]
            layers.append(nn.Sequential(*steps))
    return layers


class HRNet(nn.Module):
    """HRNet trunk with the pose head (leoxiaobin `PoseHighResolutionNet`) or the cls head (PRTR).

    Args:
        width: C, the stride-4 branch width: 32 (W32) or 48 (W48). Default 32.
        head: "pose" (default) or "cls".
        num_joints: heatmap channels of the pose head; default 17 (COCO).
        final_conv_kernel: kernel of the pose head's final conv (1 or 3); default 1.
    """

    def __init__(self, width: int = 32, head: str = "pose", num_joints: int = 17,
                 final_conv_kernel: int = 1) -> None:
        super().__init__()
        if head not in ("pose", "cls"):
            raise ValueError(f"HRNet head {head!r} is not one of 'pose', 'cls'")
        self.head = head
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_layer(Bottleneck, 64, 64, 4)
        prev = [64 * Bottleneck.expansion]
        for s, (modules, branches) in enumerate(STAGES, start=2):
            cur = [width * 2 ** k for k in range(branches)]
            setattr(self, f"transition{s - 1}", _transition(prev, cur))
            last_single = head == "pose" and s == 4
            setattr(self, f"stage{s}", nn.Sequential(*(
                HighResolutionModule(cur, multi_scale_output=not (last_single and m == modules - 1))
                for m in range(modules))))
            prev = cur
        if head == "pose":
            self.final_layer = nn.Conv2d(width, num_joints, final_conv_kernel, 1,
                                         1 if final_conv_kernel == 3 else 0)
        else:
            hc = [c * Bottleneck.expansion for c in CLS_HEAD_CHANNELS]
            self.incre_modules = nn.ModuleList(make_layer(Bottleneck, ci, planes, 1)
                                               for ci, planes in zip(prev, CLS_HEAD_CHANNELS))
            self.downsamp_modules = nn.ModuleList(_conv_bn(hc[i], hc[i + 1], 3, 2, relu=True, bias=True)
                                                  for i in range(len(hc) - 1))
            self.final_layer = _conv_bn(hc[-1], 2048, 1, 1, relu=True, bias=True)
        self.out_channels = num_joints if head == "pose" else 2048

    def forward_branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[n, 3, h, w] -> stage-4 maps [n, C * 2**k, h/2**(k+2), w/2**(k+2)] (k = 0 only for "pose")."""
        x = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
        xs = [self.layer1(x)]  # [n, 256, h/4, w/4]
        for s in (2, 3, 4):
            transition = getattr(self, f"transition{s - 1}")
            xs = [xs[i] if t is None else t(xs[min(i, len(xs) - 1)]) for i, t in enumerate(transition)]
            xs = getattr(self, f"stage{s}")(xs)
        return xs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, 3, h, w] float32 -> heatmaps [n, J, h/4, w/4] ("pose") or features [n, 2048, h/32, w/32] ("cls")."""
        xs = self.forward_branches(x)
        if self.head == "pose":
            return self.final_layer(xs[0])
        y = self.incre_modules[0](xs[0])
        for i, down in enumerate(self.downsamp_modules):
            y = self.incre_modules[i + 1](xs[i + 1]) + down(y)
        return self.final_layer(y)

