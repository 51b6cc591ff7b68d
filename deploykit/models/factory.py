"""Reference models as the export and parity stages need them: seeded random or from a checkpoint."""

from __future__ import annotations

import os
from typing import Any, Optional

import torch

from ..manifest import sha256_file
from . import checkpoints
from .registry import build, spec


def randomize_norm_stats(model: torch.nn.Module, seed: int) -> None:
    """Give every BatchNorm non-trivial affine parameters and running statistics.

    Freshly built BN layers are identities at eval (mean 0, var 1, weight 1, bias 0), which would let
    a wrong BN export pass a parity test; seeded random statistics make BN observable.
    """
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def reference_model(name: str, *, seed: int = 0, checkpoint: Optional[str | os.PathLike] = None,
                    allow_mismatch: bool = False, **overrides: Any) -> tuple[torch.nn.Module, dict]:
    """Build `name` in eval mode with seeded random weights, or load `checkpoint` into it.

    The same (name, seed, overrides) always gives the same weights, so a parity run can rebuild
    the model an export used from the manifest alone.

    Returns:
        (module, weights) where `weights` is the manifest's provenance entry.
    """
    s = spec(name)
    torch.manual_seed(seed)
    model = build(name, **overrides)
    if checkpoint is None:
        randomize_norm_stats(model, seed)
        return model, {"source": "random", "seed": seed}
    report = checkpoints.load_checkpoint(model, checkpoint, adapt=s.adapt_checkpoint, allow_mismatch=allow_mismatch)
    return model.eval(), {"source": "checkpoint", "path": os.fspath(checkpoint),
                          "sha256": sha256_file(checkpoint), "load_report": report.describe()}
