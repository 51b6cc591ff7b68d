"""Accuracy of a reduced-precision engine against the PyTorch FP32 reference, per model family.

Inputs are *held out* (`verify.heldout.heldout_feeds`, seed 1000: the calibration never reaches it);
the reference and the engine run through `verify.paired.reference_vs_engine`, and the gates are the
table's (`verify.gates`, by the engine's precision): centred cosine and signal NSR of each output
over the held-out batch. Also reported: per-sample plain cosine (mean, min) and, for pose heatmaps,
the share of joints whose decoded position moves by at most 1 heatmap pixel with the peak margin
(top-1 minus top-2 value, relative to the map's spread). `deploykit parity` adds the task gates.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import numpy as np

from ..records import HeatmapPostprocess, postprocess_of
from . import compare
from . import gates as G
from .heldout import HELDOUT_SEED as EVAL_SEED


@dataclasses.dataclass
class OutputAccuracy:
    """One output: per-sample cosine (mean, min), the centred figures, and the table's checks.

    `centred_cosine` compares `got - mu` with `ref - mu` over the whole held-out batch (mu = mean
    reference output over the samples): the part that differs between inputs; `centred_cosine_mean`
    is the same per sample, averaged. Seeded random weights give outputs dominated by a shared
    component (BatchNorm statistics and biases), which lifts the plain cosine; the gates read the
    centred figures.
    """

    name: str
    cosine_mean: float
    cosine_min: float
    centred_cosine_mean: float
    checks: list
    centred_cosine: float = float("nan")
    signal_nsr: float = float("nan")


@dataclasses.dataclass
class AccuracyReport:
    model: str
    engine: str
    precision: str
    samples: int
    outputs: list[OutputAccuracy]
    keypoints: Optional[dict] = None

    @property
    def passed(self) -> bool:
        return all(all(o.checks) for o in self.outputs)

    def to_json(self) -> dict:
        return {"model": self.model, "engine": self.engine, "precision": self.precision, "samples": self.samples,
                "passed": self.passed, "keypoints": self.keypoints,
                "outputs": [{"name": o.name, "cosine_mean": o.cosine_mean, "cosine_min": o.cosine_min,
                             "centred_cosine_mean": o.centred_cosine_mean,
                             "centred_cosine": o.centred_cosine, "signal_nsr": o.signal_nsr,
                             "checks": [c.to_json() for c in o.checks]} for o in self.outputs]}


def gate_for(family: str) -> float:
    """The INT8 centred-cosine gate of the table (the same for every family; `family` is kept for callers)."""
    return next(t.limit for t in G.INT8.output if t.figure == "centred_cosine")


def keypoint_agreement(ref: np.ndarray, got: np.ndarray, decoder: str = "quarter", max_px: float = 1.0) -> dict:
    """Share of joints whose decoded position moves by <= max_px heatmap pixels, and peak margins.

    Args:
        ref, got: heatmaps [n, K, h, w].
    """
    from ..runtime.pose import decode_heatmaps

    a, _ = decode_heatmaps(ref, decoder)
    b, _ = decode_heatmaps(got, decoder)
    dist = np.linalg.norm(a - b, axis=-1)                              # [n, K]
    flat = ref.reshape(ref.shape[0], ref.shape[1], -1)
    top2 = np.sort(flat, axis=-1)[..., -2:]
    margin = (top2[..., 1] - top2[..., 0]) / (flat.std(axis=-1) + 1e-12)
    return {"within_px": float(max_px), "share_within": float((dist <= max_px).mean()),
            "mean_shift_px": float(dist.mean()), "joints": int(dist.size),
            "median_peak_margin_in_std": float(np.median(margin))}


def engine_accuracy(name: str, engine_path: str | os.PathLike, *, samples: int = 8, seed: int = EVAL_SEED,
                    decoder: Optional[str] = None) -> AccuracyReport:
    """Compare an engine (ONNX Runtime) with PyTorch FP32 on held-out synthetic samples.

    Args:
        name: the registry name the engine was made from.
        engine_path: the engine artifact (manifest beside it).
        samples: held-out samples; default 8.
        seed: seed of the held-out generator; default 1000 (calibration uses lower seeds).
        decoder: pose decoder; default the manifest's (`postprocess.decoder`) or "quarter".
    """
    from ..runtime import Engine
    from .heldout import heldout_feeds
    from .paired import reference_vs_engine, torch_reference

    engine = Engine.load(engine_path)
    man = engine.manifest
    family = man["model"]["family"]
    precision = man.get("engine", {}).get("precision", "fp32")
    held = heldout_feeds(man, samples, seed)
    with engine:
        paired = reference_vs_engine(torch_reference(man, source=engine_path), engine.infer, held.batches)
    results, kp = [], None
    for o in engine.outputs:
        r, g = paired.refs[o.name], paired.outs[o.name]
        cos = np.array([compare.cosine_value(r[i], g[i]) for i in range(r.shape[0])])
        mu = r.mean(axis=0, keepdims=True)
        centred = np.array([compare.cosine_value(r[i] - mu[0], g[i] - mu[0]) for i in range(r.shape[0])])
        stats = compare.signal_stats(r, g)
        checks = [t.judge(stats[t.figure]) for t in G.gates_for(precision).output]
        results.append(OutputAccuracy(o.name, float(cos.mean()), float(cos.min()), float(centred.mean()), checks,
                                      stats["centred_cosine"], stats["signal_nsr"]))
        if family == "pose" and r.ndim == 4:
            post = postprocess_of(man)
            kp = keypoint_agreement(r, g, decoder or (post.decoder.value if isinstance(post, HeatmapPostprocess)
                                                      else "quarter"))
    return AccuracyReport(name, str(engine_path), precision, held.n, results, kp)
