"""Comparison factories (Polygraphy-style): each returns a callable giving a result with a gate.

    >>> check = cosine(min=0.99999)
    >>> r = check(reference, candidate); bool(r), str(r)
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One measured value against its gate; truthy when the gate holds."""

    metric: str
    value: float
    limit: float
    passed: bool
    op: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "ok  " if self.passed else "FAIL"
        return f"{mark} {self.metric} = {self.value:.6g} (gate {self.op} {self.limit:.6g})"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


Check = Callable[[np.ndarray, np.ndarray], CheckResult]


def _flat(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).ravel()


def cosine_value(ref: np.ndarray, out: np.ndarray) -> float:
    """Cosine similarity of the flattened arrays (1.0 when both are all-zero)."""
    r, o = _flat(ref), _flat(out)
    nr, no = np.linalg.norm(r), np.linalg.norm(o)
    if nr == 0 and no == 0:
        return 1.0
    if nr == 0 or no == 0:
        return 0.0
    return float(r @ o / (nr * no))


def cosine(min: float) -> Check:
    """Gate: cosine similarity of flattened reference and candidate >= `min`."""

    def check(ref: np.ndarray, out: np.ndarray) -> CheckResult:
        v = cosine_value(ref, out)
        return CheckResult("cosine", v, min, v >= min, ">=")

    return check


def max_abs(atol: float | None = None, rel: float | None = None) -> Check:
    """Gate: max |ref - out| <= atol, or <= rel * max|ref| when `rel` is given."""
    if (atol is None) == (rel is None):
        raise ValueError("max_abs: give exactly one of atol= or rel=")

    def check(ref: np.ndarray, out: np.ndarray) -> CheckResult:
        r, o = _flat(ref), _flat(out)
        err = float(np.max(np.abs(r - o))) if r.size else 0.0
        limit = atol if atol is not None else rel * float(np.max(np.abs(r)) if r.size else 0.0)
        name = "max_abs" if atol is not None else f"max_abs (limit {rel:g} x max|ref|)"
        return CheckResult(name, err, limit, err <= limit, "<=")

    return check


def error_stats(ref: np.ndarray, out: np.ndarray) -> dict[str, float]:
    """Max/mean absolute and relative error and cosine, for reports (no gate)."""
    r, o = _flat(ref), _flat(out)
    d = np.abs(r - o)
    scale = float(np.max(np.abs(r))) or 1.0
    return {"max_abs": float(d.max()) if d.size else 0.0, "mean_abs": float(d.mean()) if d.size else 0.0,
            "max_rel": float(d.max() / scale) if d.size else 0.0, "cosine": cosine_value(r, o)}


def signal_stats(ref: np.ndarray, out: np.ndarray) -> dict[str, float]:
    """`error_stats` plus the input-dependent figures over a batch of samples `[N, ...]`.

    `centred_cosine`: cosine of `out - mean(ref)` with `ref - mean(ref)` (mean over the N samples);
    `signal_nsr`: ||out - ref|| / ||ref - mean(ref)||; `signal_share`: ||ref - mean(ref)|| / ||ref||
    (how much of the output depends on the input at all). With N < 2, or a reference that does not
    change with its input, the centred figures are NaN (and any gate on them fails).
    """
    stats = error_stats(ref, out)
    r, o = np.asarray(ref, np.float64), np.asarray(out, np.float64)
    mu = r.mean(axis=0, keepdims=True) if r.shape[0] >= 2 else None
    spread = float(np.linalg.norm(r - mu)) if mu is not None else 0.0
    if mu is None or spread == 0.0:
        return {**stats, "centred_cosine": float("nan"), "signal_nsr": float("nan"), "signal_share": 0.0}
    return {**stats, "centred_cosine": cosine_value(r - mu, o - mu),
            "signal_nsr": float(np.linalg.norm(o - r) / spread),
            "signal_share": spread / (float(np.linalg.norm(r)) or 1.0)}
