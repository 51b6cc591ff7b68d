"""Parity of an engine against the PyTorch reference on the same seeded inputs."""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional, Sequence

import numpy as np

from .. import manifest as mf
from ..errors import BadInputError, require
from . import compare

# FP32 gates: ONNX Runtime and PyTorch run the same float32 math in different orders (fused conv,
# other reduction orders), which moves results by ~1e-6 relative; 1e-4 x max|ref| and cosine
# 0.99999 leave a margin of ~100x over that while still catching any wrong op (which costs >1e-2).
FP32_GATES = (compare.cosine(min=0.99999), compare.max_abs(rel=1e-4))
# FP16 engines round every activation to 11 significant bits: cosine 0.999 (issue 5's gate).
FP16_GATES = (compare.cosine(min=0.999),)
# INT8: 8-bit activations cost ~1e-2 in cosine; gates of issue 5 (0.99 embeddings, 0.98 heatmaps).
INT8_GATES = {"pose": (compare.cosine(min=0.98),), "gait": (compare.cosine(min=0.99),),
              "reid": (compare.cosine(min=0.99),)}


def gates_for(manifest: Mapping) -> tuple:
    """Gates by the engine's precision (manifest `engine.precision`, fp32 when absent) and family."""
    precision = manifest.get("engine", {}).get("precision", "fp32")
    if precision == "int8":
        return INT8_GATES[manifest["model"]["family"]]
    return FP16_GATES if precision == "fp16" else FP32_GATES


def perturbed(feeds: Mapping[str, np.ndarray], seed: int, scale: float = 0.05) -> dict[str, np.ndarray]:
    """A slightly perturbed copy of float inputs (the "same identity" of a parity pair)."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, v in feeds.items():
        if v.dtype.kind == "f" and v.std() > 0:
            out[k] = (v + rng.normal(0, scale * float(v.std()), v.shape)).astype(v.dtype)
        else:
            out[k] = v
    return out


@dataclasses.dataclass
class OutputParity:
    name: str
    stats: dict
    checks: list

    @property
    def passed(self) -> bool:
        return all(self.checks)


@dataclasses.dataclass
class ParityReport:
    model: str
    engine: str
    samples: int
    outputs: list[OutputParity]
    precision: str = "fp32"
    task: Optional[dict] = None

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    def lines(self) -> list[str]:
        out = [f"parity {self.model} ({self.precision}) vs {self.engine} on {self.samples} seeded sample(s):"]
        for o in self.outputs:
            s = o.stats
            out.append(f"  {o.name}: max_abs {s['max_abs']:.3g}  mean_abs {s['mean_abs']:.3g}  "
                       f"max_rel {s['max_rel']:.3g}  cosine {s['cosine']:.8f}")
            out += [f"    {c}" for c in o.checks]
        if self.task:
            out.append("  task: " + ", ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}"
                                              for k, v in self.task.items()))
        out.append("PASS" if self.passed else "FAIL")
        return out

    def to_json(self) -> dict:
        return {"model": self.model, "engine": self.engine, "samples": self.samples, "passed": self.passed,
                "precision": self.precision, "task": self.task,
                "outputs": [{"name": o.name, "stats": o.stats, "checks": [c.to_json() for c in o.checks]}
                            for o in self.outputs]}


def run_parity(name: str, engine_path: Optional[str | os.PathLike] = None, *,
               checkpoint: Optional[str | os.PathLike | Mapping[str, str | os.PathLike]] = None,
               samples: int = 2, seed: Optional[int] = None,
               gates: Optional[Sequence[compare.Check]] = None) -> ParityReport:
    """Run the reference model (rebuilt from the engine's manifest) and the engine on the same inputs.

    Args:
        name: registry name; must be the model the engine was made from.
        engine_path: an artifact with its manifest beside it; default: export `name` to FP32 ONNX
            in a temporary folder (with `checkpoint` if given) and compare that.
        checkpoint: the checkpoint the export used; default: the manifest's (random seed or path).
        samples: number of seeded input samples; default 1.
        seed: seed of the first sample; default the manifest's weight seed (or 0).
        gates: checks applied to every output over all samples; default by the engine's precision
            (`gates_for`).

    Embedding models run each sample and a perturbed copy of it (a pair), so the report can add
    task metrics: rank-1 agreement and mAP difference on a gallery of the pairs. Pose models add
    decoded-joint pixel error and PCK agreement (see `task_metrics`).
    """
    torch = require("torch", "export")
    from ..models.factory import reference_from_manifest
    from ..models.registry import spec as get_spec
    from ..runtime import Engine

    if engine_path is None:
        import tempfile

        from ..export import OnnxFromModel

        with tempfile.TemporaryDirectory(prefix="deploykit-parity-") as tmp:
            res = OnnxFromModel(name, checkpoint=checkpoint, seed=0 if seed is None else seed)(tmp)
            return run_parity(name, res.onnx_path, checkpoint=checkpoint, samples=samples, seed=seed, gates=gates)
    get_spec(name)  # unknown names fail here, with suggestions
    engine = Engine.load(engine_path)
    man = engine.manifest
    if man["model"]["name"] != name:
        raise BadInputError(f"{engine_path} was made from {man['model']['name']!r}, not {name!r}; "
                            f"pass the matching model name or engine")
    model = reference_from_manifest(man, checkpoint=checkpoint, source=str(engine_path))
    wseed = int(man.get("weights", {}).get("seed", 0))
    s = get_spec(name)
    gates = gates_for(man) if gates is None else gates
    paired = man["model"]["family"] in ("gait", "reid")
    refs, outs = [], []
    with engine:
        for i in range(int(samples)):
            feeds = s.sample_inputs(engine.inputs, seed=(wseed if seed is None else seed) + i)
            for f in ([feeds, perturbed(feeds, seed=10_000 + i)] if paired else [feeds]):
                with torch.no_grad():
                    ref = model(*[torch.from_numpy(f[t.name]) for t in engine.inputs])
                ref = ref if isinstance(ref, (tuple, list)) else (ref,)
                refs.append({o.name: r.numpy() for o, r in zip(engine.outputs, ref)})
                outs.append(engine.infer(f))
    results = []
    for o in engine.outputs:
        r, g = np.stack([x[o.name] for x in refs]), np.stack([x[o.name] for x in outs])
        results.append(OutputParity(o.name, compare.error_stats(r, g), [gate(r, g) for gate in gates]))
    from .task_metrics import task_agreement

    task = task_agreement(man, refs, outs)
    return ParityReport(name, str(engine_path), len(refs), results,
                        man.get("engine", {}).get("precision", "fp32"), task)
