"""The sweep for large models: layers grouped by name scope, then refined inside the groups chosen.

The per-layer sweep (sensitivity.py) costs one pass over the sweep samples per candidate layer; on
prtr-res50 (199 candidates, ~1-5 s a pass on a shared CPU) that is most of an hour, too slow for a
default build. Exported node names carry the module path (`/transformer/layers.1/self_attn/MatMul_4`),
so layers that hurt together sit in one scope. Coarse to fine:

1. units: contiguous runs (graph order) of candidates sharing a scope, at the deepest scope depth that
   gives at most `max_units` runs (`scope_units`); one gated pass per unit (all its layers INT8);
2. the usual choice (`choose_float_layers`) over units, with no per-unit tolerance: the worst units
   stay float, 1, 2, 4, ... at a time, until the Q/DQ model meets the target (at most half the units);
3. when the chosen units hold at most `refine_max` layers, those layers are swept one at a time and
   the choice is made again over them alone (the rest of the model INT8); it replaces the coarse
   choice when it meets the target with fewer float layers, or misses it by less.

Cost: units + (at most `refine_max`) passes over SWEEP_SAMPLES samples instead of one pass over all
sweep samples per candidate; every float set the choice tries is still measured on all of them.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from ..errors import require
from . import sensitivity as S
from .qdq import QdqLayout
from .ranges import Ranges

MAX_UNITS = 40      # coarse sweep: at most this many groups
REFINE_MAX = 40     # the chosen groups are refined layer by layer when they hold at most this many layers
SWEEP_SAMPLES = 4   # samples the coarse and refining sweeps run (a ranking); every chosen model is measured on all


def _scope(name: str) -> tuple[str, ...]:
    """A node's module path: its name's parts less the last (`/a/b/Conv` -> ("a", "b"))."""
    parts = [p for p in name.split("/") if p]
    return tuple(parts[:-1])


def _runs(names: Sequence[str], depth: int) -> list[list[int]]:
    out: list[list[int]] = []
    key = None
    for k, n in enumerate(names):
        s = _scope(n)[:depth]
        if out and s == key:
            out[-1].append(k)
        else:
            out.append([k])
            key = s
    return out


def scope_units(names: Sequence[str], max_units: int = MAX_UNITS) -> list[list[int]]:
    """Indices of `names` (candidates in graph order) in contiguous same-scope runs, at most `max_units`:
    the deepest scope depth that fits, then the largest runs split one scope level deeper while the
    total still fits (so a 69-conv backbone becomes its stages beside 8-layer attention blocks).
    Unscoped names (`dk_Conv_3`) fall in even chunks."""
    depth_max = max((len(_scope(n)) for n in names), default=0)
    units: Optional[list[tuple[int, list[int]]]] = None
    for depth in range(1, depth_max + 1):
        r = _runs(names, depth)
        if len(r) > max_units:
            break
        units = [(depth, u) for u in r]
    if units is None or len(units) == 1 and len(names) > max_units:
        size = -(-len(names) // max_units)
        return [list(range(i, min(i + size, len(names)))) for i in range(0, len(names), size)]
    changed = True
    while changed:
        changed = False
        for depth, u in sorted(units, key=lambda du: -len(du[1])):
            sub, d = [u], depth
            for d in range(depth + 1, depth_max + 1):
                sub = _runs([names[k] for k in u], d)
                if len(sub) > 1:
                    break
            if len(sub) > 1 and len(units) - 1 + len(sub) <= max_units:
                at = units.index((depth, u))
                units[at:at + 1] = [(d, [u[k] for k in piece]) for piece in sub]
                changed = True
                break
    return [u for _, u in units]


def _first_samples(feeds: Sequence[Mapping[str, np.ndarray]], n: int) -> list:
    """The first batches of `feeds` holding at least `n` samples (all of them if fewer)."""
    out: list = []
    for f in feeds:
        if sum(b[next(iter(b))].shape[0] for b in out) >= n:
            break
        out.append(f)
    return out


def choose(opt: str | os.PathLike, rng: Ranges, feeds: Sequence[Mapping[str, np.ndarray]],
           evaluate: Callable[[list[str]], float], *, full: float, target: float, threads: Optional[int] = None,
           max_units: Optional[int] = None, refine_max: Optional[int] = None, max_float_fraction: float = 0.5,
           progress: Optional[Callable[[int, int], None]] = None) -> S.SensitivityReport:
    """Coarse-to-fine choice of float layers (module docstring); the report lists the sweep entries
    it ranked (units, or the refined layers) and, in `steps`, every model it measured."""
    max_units = MAX_UNITS if max_units is None else max_units
    refine_max = REFINE_MAX if refine_max is None else refine_max
    n = sum(f[next(iter(f))].shape[0] for f in feeds)
    few = _first_samples(feeds, SWEEP_SAMPLES)
    units = S.sweep(opt, rng, few, QdqLayout.S8S8, threads, progress=progress,
                    units=lambda names: scope_units(names, max_units))
    # no per-entry tolerance here (layer_tol = inf): a unit of many layers is above any per-layer bound,
    # so the worst units are added 1, 2, 4, ... at a time until the model meets the target
    coarse = S.choose_float_layers(units, evaluate, target=target, samples=n, layout="s8s8", full=full,
                                   layer_tol=float("inf"), max_float_fraction=max_float_fraction)
    coarse.steps = [{**s, "sweep": f"{len(units)} scope units"} for s in coarse.steps]
    kept = set(coarse.float_nodes)
    if not kept or len(kept) > refine_max:
        return coarse
    layers = S.sweep(opt, rng, few, QdqLayout.S8S8, threads, progress=progress,
                     units=lambda names: [[k] for k, nm in enumerate(names) if nm in kept])
    fine = S.choose_float_layers(layers, evaluate, target=target, samples=n, layout="s8s8", full=full,
                                 layer_tol=float("inf"), max_float_fraction=1.0)
    fine.steps = coarse.steps + [{**s, "sweep": f"{len(layers)} layers of the chosen units"} for s in fine.steps[1:]]
    better = (fine.final_nsr <= target and len(fine.float_nodes) < len(kept)) or \
        (coarse.final_nsr > target and fine.final_nsr < coarse.final_nsr)
    out = fine if better else coarse
    out.layers = units + (layers if better else [])
    out.max_float_fraction = max_float_fraction
    out.steps = fine.steps
    return out


def decide(opt: str | os.PathLike, rng: Ranges, feeds: Sequence[Mapping[str, np.ndarray]], *,
           forced: Sequence[str] = (), target: float = 0.01, always: bool = False,
           trigger: float = S.AUTO_TRIGGER_NSR, threads: Optional[int] = None,
           progress: Optional[Callable[[int, int], None]] = None,
           ref: Optional[list] = None) -> tuple[Optional[S.SensitivityReport], float, str]:
    """Automatic mixed precision: measure the all-INT8 S8S8 model on `feeds`; choose float layers when
    asked (`always`, i.e. --sensitivity: one layer at a time) or when its NSR exceeds `trigger`
    (one layer at a time up to S.AUTO_MAX_CANDIDATES candidates, coarse to fine above).

    Why only on a miss: the sweep costs a pass per layer or unit, and most models pass without it.

    `ref`: the FP32 outputs on `feeds` if the caller already has them (S.reference_outputs).

    Returns (report or None, the all-INT8 NSR, how it was decided, for the manifest).
    """
    onnx = require("onnx", "export")
    evaluate = S.evaluator(opt, rng, feeds, forced, threads, ref=ref)
    full = evaluate([])
    where = f"on {len(feeds)} samples"
    if not always and full <= trigger:
        return None, full, f"automatic: all-INT8 output NSR {full:.3g} <= {trigger:g} {where}, no sweep"
    count = len(S.candidates(onnx.load(str(opt), load_external_data=False), rng))
    n = sum(f[next(iter(f))].shape[0] for f in feeds)
    if always or count <= S.AUTO_MAX_CANDIDATES:
        layers = S.sweep(opt, rng, feeds, QdqLayout.S8S8, threads, progress=progress)
        report = S.choose_float_layers(layers, evaluate, target=target, samples=n, layout="s8s8", full=full)
        how = "sensitivity sweep" if always else (f"automatic: all-INT8 output NSR {full:.3g} > {trigger:g} {where}, "
                                                   f"so the sweep chose")
        return report, full, how
    report = choose(opt, rng, feeds, evaluate, full=full, target=target, threads=threads, progress=progress)
    return report, full, (f"automatic: all-INT8 output NSR {full:.3g} > {trigger:g} {where}; {count} candidate "
                          f"layers > {S.AUTO_MAX_CANDIDATES}, so the coarse-to-fine sweep (scope units, then their "
                          f"layers) chose")
