"""Reference models as the export and parity stages need them: seeded random or from a checkpoint."""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

import torch

from ..manifest import sha256_file
from . import checkpoints
from .backbones.resnet import FrozenBatchNorm2d
from .registry import build, spec


def randomize_norm_stats(model: torch.nn.Module, seed: int) -> None:
    """Give every BatchNorm (and FrozenBatchNorm2d) non-trivial affine parameters and running statistics.

    Freshly built BN layers are identities at eval (mean 0, var 1, weight 1, bias 0), which would let
    a wrong BN export pass a parity test; seeded random statistics make BN observable.
    """
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        is_bn = isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats
        if is_bn or isinstance(m, FrozenBatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                if isinstance(m, FrozenBatchNorm2d) or m.affine:
                    m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def decorrelate_copies(model: torch.nn.Module, seed: int) -> int:
    """Shuffle the entries of every parameter that is an exact copy of an earlier one.

    Upstream builds per-part branches and global blocks with `copy.deepcopy` and re-initialises them
    in training; seeded random models would keep identical copies, and a parity test could then not
    see a swapped part or branch. A seeded permutation keeps each tensor's value distribution.

    Returns:
        how many parameters were shuffled.
    """
    g = torch.Generator().manual_seed(seed + 2)
    seen: dict[tuple, torch.Tensor] = {}
    changed = 0
    for p in model.parameters():
        if p.numel() < 2:
            continue
        key = (tuple(p.shape), float(p.detach().double().sum()), float(p.detach().abs().double().sum()))
        twin = seen.get(key)
        if twin is not None and torch.equal(twin, p.detach()):
            with torch.no_grad():
                flat = p.view(-1)
                flat.copy_(flat[torch.randperm(flat.numel(), generator=g)])
            changed += 1
        seen[(tuple(p.shape), float(p.detach().double().sum()), float(p.detach().abs().double().sum()))] = p.detach().clone()
    return changed


def calibrate_norm_stats(model: torch.nn.Module, *inputs: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of one forward pass over `inputs`.

    Deep random networks (ResNet-50 + RGA) with `randomize_norm_stats` decay the signal until the
    output barely depends on the input (measured for RGA: two different images differ by ~1e-4 of
    max|output|, the size of the parity gate). Data-calibrated statistics keep every layer near unit
    variance, so a parity check on such a model sees input-dependent outputs. Affine parameters are
    kept; the model is left in eval mode. Give a batch of 2 or more (BatchNorm1d needs it).
    """
    norms = [m for m in model.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.train()
        m.momentum = 1.0  # running stats := this batch's stats
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
        model.eval()


# what a manifest keeps of a proxy checkpoint's metadata (scripts/train_proxy.py)
PROXY_KEYS = ("what", "task", "steps", "seed", "heldout", "input_size")


def reference_model(name: str, *, seed: int = 0,
                    checkpoint: Optional[str | os.PathLike | Mapping[str, str | os.PathLike]] = None,
                    allow_mismatch: bool = False, **overrides: Any) -> tuple[torch.nn.Module, dict]:
    """Build `name` in eval mode with seeded random weights, or load `checkpoint` into it.

    The same (name, seed, overrides) always gives the same weights, so a parity run can rebuild
    the model an export used from the manifest alone.

    Args:
        checkpoint: None (seeded random weights), one file, or a mapping of state-dict prefix -> file
            for upstream checkpoints split over several files (PGFA; see `checkpoints.load_multi`).

    Returns:
        (module, weights) where `weights` is the manifest's provenance entry: `path`/`sha256` for one
        file, `files` (a list of {prefix, path, sha256}) for several.
    """
    s = spec(name)
    torch.manual_seed(seed)
    model = build(name, **overrides)
    if checkpoint is None:
        decorrelate_copies(model, seed)
        randomize_norm_stats(model, seed)
        return model, {"source": "random", "seed": seed}
    if isinstance(checkpoint, Mapping):
        report = checkpoints.load_multi(model, checkpoint, adapt=s.adapt_checkpoint, allow_mismatch=allow_mismatch)
        files = [{"prefix": p, "path": os.fspath(f), "sha256": sha256_file(f)} for p, f in checkpoint.items()]
        return model.eval(), {"source": "checkpoint", "files": files, "load_report": report.describe()}
    report = checkpoints.load_checkpoint(model, checkpoint, adapt=s.adapt_checkpoint, allow_mismatch=allow_mismatch)
    weights = {"source": "checkpoint", "path": os.fspath(checkpoint), "sha256": sha256_file(checkpoint),
               "load_report": report.describe()}
    proxy = checkpoints.read_proxy_meta(checkpoint)
    if proxy is not None:  # a synthetic stand-in: held-out checks then use its task's labelled data
        weights["proxy"] = {k: proxy[k] for k in PROXY_KEYS if k in proxy}
    return model.eval(), weights


def reference_from_manifest(manifest: Mapping[str, Any], *,
                            checkpoint: Optional[str | os.PathLike | Mapping[str, str | os.PathLike]] = None,
                            source: str = "the engine") -> torch.nn.Module:
    """Rebuild the PyTorch model an artifact was exported from, using only its manifest.

    Same registry name, config overrides and weights: the seed of random weights, or the checkpoint
    file(s) the manifest names (one `path`, or several `files` under state-dict prefixes).

    Args:
        checkpoint: use this instead of the manifest's checkpoint (e.g. the file moved).
        source: what the manifest belongs to, for error messages.

    Raises:
        BadInputError: the manifest names checkpoint files that are not here.
    """
    from ..errors import BadInputError

    name = manifest["model"]["name"]
    weights = manifest.get("weights", {})
    if checkpoint is None and weights.get("source") == "checkpoint":
        files = weights["files"] if "files" in weights else [{"prefix": None, "path": weights["path"]}]
        for f in files:
            if not os.path.isfile(f["path"]):
                raise BadInputError(f"the manifest of {source} names checkpoint {f['path']}, which is not "
                                    f"here; pass --checkpoint with the same file")
        checkpoint = {f["prefix"]: f["path"] for f in files} if "files" in weights else weights["path"]
    defaults = spec(name).default_config
    overrides = {k: v for k, v in manifest["model"].get("config", {}).items() if defaults.get(k) != v}
    model, _ = reference_model(name, seed=int(weights.get("seed", 0)), checkpoint=checkpoint, **overrides)
    return model
