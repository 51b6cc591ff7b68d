"""Loading upstream checkpoint files safely and reporting exactly how they fit a model.

Files are read with `torch.load(weights_only=True)`: no pickled code runs. The upstream layouts
handled here: OpenGait's `{'model': sd, 'optimizer': ..., 'iteration': ...}`, HRNet/PRTR's
`{'state_dict' | 'best_state_dict': sd}`, a plain state dict, and `module.` prefixes from
DataParallel. Model-specific renames are the spec's `adapt_checkpoint`. Upstream checkpoints split
over several files (one per module) are read into one state dict under prefixes (`load_multi`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch

from ..errors import CheckpointError

# Order matters where a file holds several: HRNet/PRTR resume files (`checkpoint.pth`) carry both the
# last epoch's `state_dict` and the `best_state_dict`, and PRTR's test.py loads the best one.
WRAPPER_KEYS = ("model", "best_state_dict", "state_dict", "model_state_dict", "net")
# BatchNorm counters that 2018-era checkpoints lack; they do not affect eval-mode outputs.
TOLERATED_MISSING_SUFFIXES = (".num_batches_tracked",)


@dataclasses.dataclass
class LoadReport:
    """How a state dict fits a model, key by key."""

    missing: list[str]
    unexpected: list[str]
    mismatched: list[tuple[str, tuple, tuple]]  # (key, checkpoint shape, model shape)
    tolerated_missing: list[str]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 5) -> str:
        """One line naming the offending keys (at most `limit` of each kind)."""
        parts = []
        for label, items in (("missing", self.missing), ("unexpected", self.unexpected)):
            if items:
                more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
                parts.append(f"{len(items)} {label}: {', '.join(items[:limit])}{more}")
        if self.mismatched:
            shown = [f"{k} checkpoint {list(a)} vs model {list(b)}" for k, a, b in self.mismatched[:limit]]
            more = f" (+{len(self.mismatched) - limit} more)" if len(self.mismatched) > limit else ""
            parts.append(f"{len(self.mismatched)} shape-mismatched: {'; '.join(shown)}{more}")
        return "; ".join(parts) if parts else "all keys match"


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a flat `{key: tensor}` dict (wrappers unwrapped, `module.` stripped).

    Raises:
        CheckpointError: the file is missing, not a torch file, holds code objects, or no state dict.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist or is not a file; pass the path of a "
                              f".pt/.pth file saved by the upstream project")
    if _is_safetensors(p):
        raise CheckpointError(f"checkpoint {p} is a safetensors file, which deploykit does not read; convert it once "
                              f"with: python -c \"import torch, safetensors.torch as st; torch.save(st.load_file("
                              f"'{p}'), '{p.with_suffix('.pt')}')\" and pass the .pt file")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types (UnpicklingError, RuntimeError, EOFError)
        raise CheckpointError(f"cannot read checkpoint {p} with torch.load(weights_only=True) "
                              f"({_reason(exc)}); give a file saved by torch.save (files holding pickled code "
                              f"are refused)") from None
    return _unwrap(obj, p)


def read_proxy_meta(path: str | os.PathLike) -> Optional[dict]:
    """The `proxy` metadata a `scripts/train_proxy.py` checkpoint carries beside its state dict
    (task, steps, held-out metric, input size), or None for any other file (or one torch cannot read)."""
    try:
        obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001  (read_state_dict reports unreadable files; this only looks)
        return None
    meta = obj.get("proxy") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) else None


def _is_safetensors(p: Path) -> bool:
    """safetensors layout: an 8-byte little-endian header length, then a JSON header starting with '{'."""
    try:
        with open(p, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") < (1 << 30)


def _reason(exc: Exception) -> str:
    # torch's weights-only message is a paragraph; its useful part is the last line naming the cause
    lines = [l.strip() for l in str(exc).strip().splitlines() if l.strip()]
    useful = [l for l in lines if "error" in l.lower() or "unsupported" in l.lower()]
    text = (useful[-1] if useful else lines[-1] if lines else type(exc).__name__)
    return text[:200]


def _unwrap(obj: Any, p: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):  # nested wrappers such as {'model': {'state_dict': ...}} are rare but seen
        if isinstance(obj, dict) and not _is_state_dict(obj):
            inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not _is_state_dict(obj):
        keys = list(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"checkpoint {p} holds no state dict (top level: {keys}); expected a dict of "
                              f"tensors or one under {'/'.join(WRAPPER_KEYS)}")
    return {_strip_module(k): v for k, v in obj.items()}


def _is_state_dict(d: dict) -> bool:
    return bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())


def _strip_module(key: str) -> str:
    return key[len("module."):] if key.startswith("module.") else key


def compare(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> LoadReport:
    """Key-by-key comparison of a state dict with a model's own."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    tolerated = [k for k in missing if k.endswith(TOLERATED_MISSING_SUFFIXES)]
    missing = [k for k in missing if k not in tolerated]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state_dict.items()
                  if k in own and tuple(v.shape) != tuple(own[k].shape)]
    return LoadReport(missing, unexpected, mismatched, tolerated)


def load_into(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], *,
              adapt: Optional[Callable[[dict], dict]] = None, allow_mismatch: bool = False,
              source: str = "checkpoint") -> LoadReport:
    """Load `state_dict` into `model`, refusing any mismatch unless `allow_mismatch`.

    Args:
        model: the module to fill.
        state_dict: flat `{key: tensor}`.
        adapt: the spec's `adapt_checkpoint` (upstream -> our key names), applied first.
        allow_mismatch: load what fits and return the report instead of raising.
        source: name used in error messages (usually the file path).

    Raises:
        CheckpointError: on any missing, unexpected or shape-mismatched key, naming them.
    """
    if adapt is not None:
        state_dict = adapt(dict(state_dict))
    report = compare(model, state_dict)
    if not report.ok and not allow_mismatch:
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: {report.describe()}; check the "
                              f"model name/config, or pass --allow-mismatch to load only the matching keys")
    bad = {k for k, _, _ in report.mismatched}
    model.load_state_dict({k: v for k, v in state_dict.items() if k not in bad}, strict=False)
    return report


def load_checkpoint(model: torch.nn.Module, path: str | os.PathLike, *,
                    adapt: Optional[Callable[[dict], dict]] = None, allow_mismatch: bool = False) -> LoadReport:
    """`read_state_dict` then `load_into`, naming the file in errors."""
    return load_into(model, read_state_dict(path), adapt=adapt, allow_mismatch=allow_mismatch, source=str(path))


def read_multi(paths: Mapping[str, str | os.PathLike]) -> dict[str, torch.Tensor]:
    """Read several checkpoint files into one state dict, each file's keys under its prefix.

    For methods whose upstream saves one file per module (PGFA: backbone, global head, part heads).
    Every file goes through `read_state_dict` (weights_only, wrappers unwrapped, `module.` stripped).

    Args:
        paths: our state-dict prefix (e.g. "global_head.") -> file path, in key order.

    Raises:
        CheckpointError: a file cannot be read, or two files give the same key.
    """
    if not paths:
        raise CheckpointError("no checkpoint files given; pass a mapping of state-dict prefix -> file path")
    merged: dict[str, torch.Tensor] = {}
    owner: dict[str, str] = {}
    for prefix, path in paths.items():
        for key, value in read_state_dict(path).items():
            full = f"{prefix}{key}"
            if full in merged:
                raise CheckpointError(f"checkpoint {path} gives key {full}, which {owner[full]} already gave; "
                                      f"give each file its own prefix")
            merged[full], owner[full] = value, str(path)
    return merged


def describe_files(paths: Mapping[str, str | os.PathLike]) -> str:
    """`prefix <- path` pairs, for error messages and reports."""
    return ", ".join(f"{prefix or '(no prefix)'} <- {os.fspath(path)}" for prefix, path in paths.items())


def load_multi(model: torch.nn.Module, paths: Mapping[str, str | os.PathLike], *,
               adapt: Optional[Callable[[dict], dict]] = None, allow_mismatch: bool = False) -> LoadReport:
    """`read_multi` then `load_into`: several upstream files fill one model, each under its prefix.

    A missing, unexpected or misshaped key is named with its prefix, which names the file it belongs to.
    """
    return load_into(model, read_multi(paths), adapt=adapt, allow_mismatch=allow_mismatch,
                     source=f"checkpoints [{describe_files(paths)}]")


def save_upstream_layout(model: torch.nn.Module, path: str | os.PathLike, layout: str = "opengait") -> None:
    """Save a checkpoint the way an upstream project does (used by tests and examples).

    Args:
        layout: "opengait" ({'model': sd, 'iteration': 0}), "state_dict", "best_state_dict",
            "plain", or "module" (plain with `module.` prefixes, as DataParallel saves).
    """
    sd = model.state_dict()
    obj: Any = {"opengait": lambda: {"model": sd, "optimizer": {}, "iteration": 0},
                "state_dict": lambda: {"state_dict": sd, "epoch": 0},
                "best_state_dict": lambda: {"best_state_dict": sd},
                "plain": lambda: sd,
                "module": lambda: {f"module.{k}": v for k, v in sd.items()}}[layout]()
    torch.save(obj, path)
