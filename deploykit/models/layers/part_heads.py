"""Per-part heads: SeparateFCs and SeparateBNNecks (OpenGait)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .conv import clones


class SeparateFCs(nn.Module):
    """One linear map per horizontal part; key `fc_bin [p, in, out]`."""

    def __init__(self, parts_num: int, in_channels: int, out_channels: int, norm: bool = False) -> None:
        super().__init__()
        self.p = parts_num
        self.fc_bin = nn.Parameter(nn.init.xavier_uniform_(torch.zeros(parts_num, in_channels, out_channels)))
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, c_in, p] -> [n, c_out, p]."""
        x = x.permute(2, 0, 1).contiguous()  # [p, n, c_in]
        w = F.normalize(self.fc_bin, dim=1) if self.norm else self.fc_bin
        return x.matmul(w).permute(1, 2, 0).contiguous()  # [p, n, c_out] -> [n, c_out, p]


class SeparateBNNecks(nn.Module):
    """BNNeck per part (Bag of Tricks), training logits only in every OpenGait config used here.

    parallel_BN1d: one BatchNorm1d over the flattened `[n, c*p]` feature (key `bn1d [c*p]`).
    """

    def __init__(self, parts_num: int, in_channels: int, class_num: int, norm: bool = True,
                 parallel_BN1d: bool = True) -> None:
        super().__init__()
        self.p = parts_num
        self.class_num = class_num
        self.norm = norm
        self.fc_bin = nn.Parameter(nn.init.xavier_uniform_(torch.zeros(parts_num, in_channels, class_num)))
        self.parallel_BN1d = parallel_BN1d
        self.bn1d = nn.BatchNorm1d(in_channels * parts_num) if parallel_BN1d else clones(nn.BatchNorm1d(in_channels), parts_num)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[n, c, p] -> (bn feature [n, c, p], logits [n, class_num, p])."""
        if self.parallel_BN1d:
            n, c, p = x.size()
            x = self.bn1d(x.reshape(n, -1)).reshape(n, c, p)  # feature index c*p + p_idx
        else:
            x = torch.cat([bn(z.squeeze(2)).unsqueeze(2) for z, bn in zip(x.split(1, 2), self.bn1d)], 2)
        feature = x.permute(2, 0, 1).contiguous()  # [p, n, c]
        if self.norm:
            feature = F.normalize(feature, dim=-1)
            logits = feature.matmul(F.normalize(self.fc_bin, dim=1))
        else:
            logits = feature.matmul(self.fc_bin)
        return feature.permute(1, 2, 0).contiguous(), logits.permute(1, 2, 0).contiguous()
