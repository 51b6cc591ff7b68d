"""Parity of an engine against the PyTorch reference on the same held-out inputs, gated by precision.

The gates are `verify.gates`' table: FP32 on plain cosine and max error; FP16 and INT8 on the
input-dependent part of the output (centred cosine, signal NSR) and on the task (`task_metrics`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional


from ..errors import BadInputError
from . import compare
from . import gates as G
from .heldout import HELDOUT_SEED, heldout_feeds


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
    source: str = ""

    @property
    def task_checks(self) -> list:
        return list((self.task or {}).get("checks", []))

    @property
    def task_not_applicable(self) -> bool:
        """The precision has task gates but these outputs cannot be judged by them (e.g. flat heatmaps)."""
        g = G.gates_for(self.precision)
        return bool(self.task) and not self.task.get("applicable", True) and bool(g.embedding or g.pose)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs) and all(self.task_checks)

    def lines(self) -> list[str]:
        out = [f"parity {self.model} ({self.precision}) vs {self.engine} on {self.samples} held-out sample(s) "
               f"[{self.source}]:"]
        for o in self.outputs:
            s = o.stats
            out.append(f"  {o.name}: max_abs {s['max_abs']:.3g}  max_rel {s['max_rel']:.3g}  cosine {s['cosine']:.8f}  "
                       f"centred_cosine {s['centred_cosine']:.4f}  signal_nsr {s['signal_nsr']:.4g}  "
                       f"signal_share {s['signal_share']:.3g}")
            out += [f"    {c}" for c in o.checks]
        if self.task:
            fig = {k: v for k, v in self.task.items() if k != "checks"}
            out.append("  task: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                              for k, v in fig.items()))
            if self.task_not_applicable:
                out.append("    task gate: NOT APPLICABLE (so not passed either): " + str(self.task.get("why")))
            out += [f"    {c}" for c in self.task_checks]
        out.append(("PASS" + (" (task gate not applicable)" if self.task_not_applicable else "")) if self.passed
                   else "FAIL")
        return out

    def to_json(self) -> dict:
        task = None if self.task is None else {**{k: v for k, v in self.task.items() if k != "checks"},
                                               "checks": [c.to_json() for c in self.task_checks]}
        return {"model": self.model, "engine": self.engine, "samples": self.samples, "passed": self.passed,
                "precision": self.precision, "source": self.source, "task": task,
                "task_gate": "not applicable" if self.task_not_applicable else ("gated" if self.task_checks else "none"),
                "gates": [t.line() for t in G.gates_for(self.precision).output],
                "outputs": [{"name": o.name, "stats": o.stats, "checks": [c.to_json() for c in o.checks]}
                            for o in self.outputs]}


def default_samples(precision: str) -> int:
    """Held-out samples by default: 2 for FP32 (as before), 12 where the gates need a batch."""
    return 2 if precision == "fp32" else max(12, G.gates_for(precision).min_samples)


def run_parity(name: str, engine_path: Optional[str | os.PathLike] = None, *,
               checkpoint: Optional[str | os.PathLike | Mapping[str, str | os.PathLike]] = None,
               samples: Optional[int] = None, seed: int = HELDOUT_SEED,
               data: Optional[str | os.PathLike] = None) -> ParityReport:
    """Run the reference model (rebuilt from the engine's manifest) and the engine on held-out inputs.

    Args:
        name: registry name; must be the model the engine was made from.
        engine_path: an artifact with its manifest beside it; default: export `name` to FP32 ONNX
            in a temporary folder (with `checkpoint` if given) and compare that.
        checkpoint: the checkpoint the export used; default: the manifest's (random seed or path).
        samples: held-out samples; default `default_samples(precision)`.
        seed: held-out generator seed; default 1000 (calibration never reaches it).
        data: held-out `.npz`/`.npy` (an `.npz` may carry `labels`); default synthetic.
    """
    from ..models.registry import spec as get_spec
    from ..runtime import Engine
    from .paired import reference_vs_engine, torch_reference
    from .task_metrics import task_agreement

    if engine_path is None:
        import tempfile

        from ..export import OnnxFromModel

        with tempfile.TemporaryDirectory(prefix="deploykit-parity-") as tmp:
            res = OnnxFromModel(name, checkpoint=checkpoint, seed=0)(tmp)
            return run_parity(name, res.onnx_path, checkpoint=checkpoint, samples=samples, seed=seed, data=data)
    get_spec(name)  # unknown names fail here, with suggestions
    engine = Engine.load(engine_path)
    man = engine.manifest
    if man["model"]["name"] != name:
        raise BadInputError(f"{engine_path} was made from {man['model']['name']!r}, not {name!r}; "
                            f"pass the matching model name or engine")
    precision = man.get("engine", {}).get("precision", "fp32")
    gates = G.gates_for(precision)
    n = default_samples(precision) if samples is None else int(samples)
    if n < gates.min_samples:
        raise BadInputError(f"--samples {n} is too few for {precision} gates (centred cosine and neighbour "
                            f"agreement over a held-out batch); use {gates.min_samples} or more (default "
                            f"{default_samples(precision)})")
    held = heldout_feeds(man, n, seed, data=data)
    reference = torch_reference(man, checkpoint=checkpoint, source=engine_path)
    with engine:
        paired = reference_vs_engine(reference, engine.infer, held.batches)
    results = []
    for o in engine.outputs:
        r, g = paired.refs[o.name], paired.outs[o.name]
        stats = compare.signal_stats(r, g)
        results.append(OutputParity(o.name, stats, [t.judge(stats[t.figure]) for t in gates.output]))
    task = task_agreement(man, paired.refs, paired.outs, gates, held.labels, held.keypoints)
    return ParityReport(name, str(engine_path), held.n, results, precision, task, held.source)
