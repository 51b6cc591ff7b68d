"""Set/sequence wrappers and horizontal pooling: SetBlockWrapper, PackSequenceWrapper, HPP, GeMHPP."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


def temporal_max(x: torch.Tensor, dim: int = 2) -> torch.Tensor:
    """Max over the frame axis: [n, c, s, ...] -> [n, c, ...] (OpenGait's PSW(torch.max), seqL None)."""
    return torch.max(x, dim=dim)[0]


class SetBlockWrapper(nn.Module):
    """Applies a per-frame block to every frame: key prefix `forward_block.`."""

    def __init__(self, forward_block: Callable) -> None:
        super().__init__()
        self.forward_block = forward_block

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """[n, c, s, h, w] -> [n, c', s, ...] (the block's per-frame output shape after c')."""
        n, c, s, h, w = x.size()
        y = self.forward_block(x.transpose(1, 2).reshape(-1, c, h, w), *args, **kwargs)  # [n*s, c, h, w]
        return y.reshape(n, s, *y.shape[1:]).transpose(1, 2).contiguous()


class PackSequenceWrapper(nn.Module):
    """Temporal pooling over each sequence; key prefix `pooling_func.` when it wraps a module.

    With `seqL` None (inference: one sequence per sample) the pooling runs on the whole batch; with
    `seqL` (a list of frame counts of sequences concatenated on the frame axis) it runs per sequence.
    """

    def __init__(self, pooling_func: Callable) -> None:
        super().__init__()
        self.pooling_func = pooling_func

    def forward(self, seqs: torch.Tensor, seqL: Optional[Sequence[int]] = None, dim: int = 2, **options):
        """[n, c, s, ...] -> whatever pooling_func returns for one sequence, concatenated on n."""
        if seqL is None:
            return self.pooling_func(seqs, **options)
        outs, start = [], 0
        for length in seqL:
            outs.append(self.pooling_func(seqs.narrow(dim, start, int(length)), **options))
            start += int(length)
        if isinstance(outs[0], (tuple, list)):
            return [torch.cat([o[j] for o in outs]) for j in range(len(outs[0]))]
        return torch.cat(outs)


class HorizontalPoolingPyramid(nn.Module):
    """mean + max over each of `b` horizontal strips, for each b in bin_num (no parameters)."""

    def __init__(self, bin_num: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        self.bin_num = list(bin_num) if bin_num is not None else [16, 8, 4, 2, 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, c, h, w] -> [n, c, sum(bin_num)]."""
        n, c = x.size()[:2]
        feats = []
        for b in self.bin_num:
            z = x.reshape(n, c, b, -1)  # strips are whole rows when h % b == 0
            feats.append(z.mean(-1) + z.max(-1)[0])
        return torch.cat(feats, -1)


class GeMHPP(nn.Module):
    """Generalised-mean horizontal pooling (GaitGL); the exponent `p` is learned (key `p [1]`).

    Per strip: `avg(clamp(x, eps) ** p) ** (1 / p)`. With p ~ 6.5 the pow overflows FP16 for
    activations above ~5.5, which is why the export patches treat this op specially.
    """

    def __init__(self, bin_num: Sequence[int] = (64,), p: float = 6.5, eps: float = 1.0e-6) -> None:
        super().__init__()
        self.bin_num = list(bin_num)
        self.p = nn.Parameter(torch.ones(1) * p)
        self.eps = eps

    def gem(self, x: torch.Tensor) -> torch.Tensor:
        """[n, c, b, w'] -> [n, c, b, 1]."""
        # int(): the strip width is static even when the batch axis is exported dynamic
        return F.avg_pool2d(x.clamp(min=self.eps).pow(self.p), (1, int(x.size(-1)))).pow(1.0 / self.p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, c, h, w] -> [n, c, sum(bin_num)]."""
        n, c = x.size()[:2]
        # flatten(2), not squeeze(-1): with a dynamic batch the exporter cannot prove the last dim is 1
        return torch.cat([self.gem(x.reshape(n, c, b, -1)).flatten(2) for b in self.bin_num], -1)
