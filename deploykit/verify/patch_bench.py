"""Latency of graph-patch variants of one model in ONNX Runtime (the speed side of `export.patches`).

    >>> report = bench_patch_variants("gaitpart", {"cleanup": ["cleanup"],
    ...                                            "grouped-parts": ["grouped-parts", "cleanup"]},
    ...                               baseline="cleanup", frames=30, threads=1)
    >>> print(report.markdown())

The model is exported once without patches; each variant is that graph with its patches applied
(`PatchedOnnx`), run on the same seeded input. Variants are timed in interleaved rounds on the same
machine in the same run (`timing.time_interleaved`), and compared by ratio to the baseline, so the
drift of a shared machine affects them alike.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import tempfile
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from ..errors import BadInputError
from .bench import _engine_runner
from .timing import time_interleaved


@dataclasses.dataclass
class VariantTiming:
    """One patch variant: what was applied, graph size, latencies (ms, in round order)."""

    label: str
    patches: list[str]
    nodes: int
    convs: int
    latencies_ms: list[float]

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))


@dataclasses.dataclass
class PatchBenchReport:
    model: str
    frames: Optional[int]
    batch: int
    threads: int
    rounds: int
    iters: int
    baseline: str
    variants: list[VariantTiming]
    environment: dict

    def _base(self) -> VariantTiming:
        return next(v for v in self.variants if v.label == self.baseline)

    def speedup(self, v: VariantTiming) -> float:
        """Baseline median / variant median (> 1: the variant is faster)."""
        return self._base().pct(50) / v.pct(50)

    def round_speedup(self, v: VariantTiming) -> float:
        """Median over rounds of (baseline round median / variant round median): robust to drift."""
        base, n = self._base().latencies_ms, self.iters
        ratios = [np.median(base[i:i + n]) / np.median(v.latencies_ms[i:i + n]) for i in range(0, len(base), n)]
        return float(np.median(ratios))

    def markdown(self) -> str:
        shape = f"batch {self.batch}" + (f", {self.frames} frames" if self.frames else "")
        lines = [f"### {self.model} ({shape}, ONNX Runtime CPU, {self.threads} intra-op thread(s))", "",
                 f"{self.rounds} interleaved rounds x {self.iters} runs per variant "
                 f"({self.rounds * self.iters} timed runs each); baseline: `{self.baseline}`.", "",
                 "| variant | patches applied | nodes | Conv nodes | median ms | p10 ms | p90 ms "
                 "| speed-up (ratio of medians) | speed-up (median of per-round ratios) |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for v in self.variants:
            lines.append(f"| {v.label} | {', '.join(v.patches) or 'none'} | {v.nodes} | {v.convs} | "
                         f"{v.pct(50):.2f} | {v.pct(10):.2f} | {v.pct(90):.2f} | {self.speedup(v):.2f}x | "
                         f"{self.round_speedup(v):.2f}x |")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict:
        return {"model": self.model, "frames": self.frames, "batch": self.batch, "threads": self.threads,
                "rounds": self.rounds, "iters": self.iters, "baseline": self.baseline,
                "environment": self.environment,
                "variants": [{"label": v.label, "patches": v.patches, "nodes": v.nodes, "convs": v.convs,
                              "median_ms": v.pct(50), "p10_ms": v.pct(10), "p90_ms": v.pct(90),
                              "speedup": self.speedup(v), "round_speedup": self.round_speedup(v)}
                             for v in self.variants]}


def environment() -> dict:
    """Machine facts for a benchmark table: CPU model, cores, load, library versions."""
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                   if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env = {"cpu": cpu, "cores": os.cpu_count(), "onnxruntime": onnxruntime.__version__,
           "python": platform.python_version()}
    if hasattr(os, "getloadavg"):
        env["load_avg_1min"] = round(os.getloadavg()[0], 2)
    return env


def bench_patch_variants(name: str, variants: Mapping[str, Sequence[str]], *, baseline: str,
                         frames: Optional[int] = None, batch: int = 1, threads: int = 1, warmup: int = 3,
                         rounds: int = 10, iters: int = 5, seed: int = 0,
                         progress: Optional[Callable[[str], None]] = None) -> PatchBenchReport:
    """Time patch variants of model `name` in ONNX Runtime on one seeded input.

    Args:
        variants: label -> patch names applied to the unpatched export ([] for none).
        baseline: the label the speed-ups are relative to.
        frames, batch: static input shape (frames default: the model's).
        threads: ONNX Runtime intra-op threads; default 1.
        warmup: untimed runs per variant; default 3.
        rounds, iters: `rounds` interleaved rounds of `iters` timed runs per variant; defaults 10, 5.
        seed: seed of the weights and the input; default 0.
    """
    import onnx

    from ..export import OnnxFromModel
    from ..export.patch_file import PatchedOnnx
    from ..models.registry import spec as get_spec

    if baseline not in variants:
        raise BadInputError(f"baseline {baseline!r} is not one of the variants {list(variants)}")
    say = progress or (lambda msg: None)
    spec = get_spec(name)
    with tempfile.TemporaryDirectory(prefix="deploykit-patch-bench-") as work:
        say(f"exporting {name} unpatched")
        raw = OnnxFromModel(name, batch=batch, frames=frames, seed=seed, patches=[])(Path(work) / "raw")
        feeds = spec.sample_inputs([s for s in spec.input_specs(batch, frames)], seed=seed)
        runners, facts = {}, {}
        for label, patches in variants.items():
            say(f"patching and loading variant {label}: {', '.join(patches) or 'no patch'}")
            path = Path(work) / label.replace(" ", "_") / f"{name}.onnx"
            result = PatchedOnnx(raw.onnx_path, list(patches))(path)
            graph = onnx.load(str(path)).graph
            facts[label] = ([a["name"] for a in result.applied], len(graph.node),
                            sum(n.op_type == "Conv" for n in graph.node))
            runners[label] = _engine_runner(path, threads)
            for _ in range(warmup):
                runners[label](feeds)
        env = environment()
        lat = time_interleaved(runners, feeds, rounds=rounds, iters=iters, progress=say)
    timings = [VariantTiming(label, *facts[label], lat[label]) for label in variants]
    return PatchBenchReport(name, raw.manifest["frames"], batch, threads, rounds, iters, baseline, timings, env)
