"""Checks that run before any heavy work (model build, export, optimisation, calibration).

A refused run must fail in a second with one line, not after minutes, and must not have written anything.
No torch here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .errors import BadInputError
from .manifest import TensorSpec

# Exporting (tracing) and calibrating hold every activation of a forward pass. The first layers of
# the gait, re-ID and pose models keep 32-64 channels at (or near) the input's resolution, so a pass
# needs about this many times the input's bytes; a rough, deliberately generous bound.
ACTIVATION_FACTOR = 64
RANGE_SLACK = 1e-3  # float rounding of the preprocessing (x * scale - mean) / std


def available_memory() -> Optional[int]:
    """Bytes of memory available now (Linux MemAvailable, else free pages); None when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_tensor_memory(specs: Sequence[TensorSpec], what: str, available: Optional[int] = None) -> None:
    """Refuse input shapes whose forward pass would not fit in memory (before a model is built).

    Raises:
        BadInputError: the estimate (inputs x ACTIVATION_FACTOR) exceeds the available memory.
    """
    nbytes = sum(int(np.prod(s.shape, dtype=np.float64)) * np.dtype(s.dtype).itemsize for s in specs)
    need = nbytes * ACTIVATION_FACTOR
    avail = available_memory() if available is None else available
    if avail is not None and need > avail:
        shapes = ", ".join(f"{s.name} {list(s.shape)}" for s in specs)
        raise BadInputError(f"{what}: the inputs ({shapes}) take {nbytes / 2**30:.2f} GiB and a forward pass needs "
                            f"about {ACTIVATION_FACTOR}x that ({need / 2**30:.1f} GiB), more than the "
                            f"{avail / 2**30:.1f} GiB available; lower --frames/--batch (gait models use 30 frames, "
                            f"batch 1)")


def value_range(pre: Mapping[str, Any]) -> Optional[tuple[float, float]]:
    """The range the manifest's preprocessing produces for the primary input; None when not known."""
    kind = pre.get("kind")
    if kind == "silhouette":
        return 0.0, 255.0 / float(pre.get("divisor", 255.0))
    if kind == "image":
        scale = float(pre.get("scale", 1.0))
        mean = np.asarray(pre.get("mean", [0.0]), np.float64)
        std = np.asarray(pre.get("std", [1.0]), np.float64)
        return float(((0.0 - mean) / std).min()), float(((255.0 * scale - mean) / std).max())
    return None


def check_arrays(path: Path, arrays: Mapping[str, np.ndarray], manifest: Mapping[str, Any]) -> None:
    """Calibration arrays: float32 or uint8 only, finite, and (float, primary input) inside the preprocessing's range.

    Raises:
        BadInputError: naming the file, the input, the first bad sample and the fix.
    """
    pre = manifest.get("preprocess", {}) or {}
    primary = manifest["inputs"][0]["name"]
    rng = value_range(pre)
    for name, a in arrays.items():
        if a.dtype not in (np.float32, np.uint8):
            raise BadInputError(f"--calib-data {path}: array {name!r} has dtype {a.dtype}; calibration data must be "
                                f"float32 (preprocessed) or uint8 (raw pixels), convert with .astype(np.float32) "
                                f"after preprocessing, or keep raw frames as uint8")
        if a.dtype != np.float32:
            continue
        flat = a.reshape(len(a), -1) if a.ndim else a.reshape(1, -1)
        bad = ~np.isfinite(flat).all(axis=1)
        if bad.any():
            raise BadInputError(f"--calib-data {path}: array {name!r} sample {int(np.argmax(bad))} holds NaN or Inf "
                                f"({int(bad.sum())} bad sample(s) of {len(flat)}); remove or fix those samples")
        if name != primary or rng is None or not flat.size:
            continue
        lo, hi = rng
        slack = RANGE_SLACK * max(1.0, hi - lo)
        out = (flat.min(axis=1) < lo - slack) | (flat.max(axis=1) > hi + slack)
        if out.any():
            i = int(np.argmax(out))
            raise BadInputError(f"--calib-data {path}: array {name!r} sample {i} has values in [{flat[i].min():.4g}, "
                                f"{flat[i].max():.4g}], outside [{lo:.4g}, {hi:.4g}], the range the {pre.get('kind')} "
                                f"preprocessing produces; give preprocessed float32 data (or raw uint8 frames)")
