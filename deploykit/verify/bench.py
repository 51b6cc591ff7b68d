"""`deploykit bench`: latency and throughput of one model on several backends, in one run.

The machines this runs on are shared and noisy, so backends are timed in interleaved rounds
(round-robin, several iterations each) and reported as ratios against PyTorch eager measured in
the same run; absolute numbers are only indicative.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import tempfile
import time
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import BackendUnavailable, BadInputError

Runner = Callable[[dict], object]
_PROVIDERS: dict[str, Callable[..., Runner]] = {}


def register_bench_backend(name: str):
    """Register a factory `(model_name, *, batch, frames, threads, workdir, seed) -> runner(feeds)`."""

    def deco(fn):
        if name in _PROVIDERS:
            raise ValueError(f"bench backend {name!r} is registered twice")
        _PROVIDERS[name] = fn
        return fn

    return deco


def bench_backends() -> list[str]:
    return sorted(_PROVIDERS)


@register_bench_backend("torch")
def _torch(name, *, batch, frames, threads, workdir, seed):
    import torch

    from ..models.factory import reference_model

    if threads:
        torch.set_num_threads(int(threads))
    model, _ = reference_model(name, seed=seed)

    def run(feeds):
        with torch.inference_mode():
            return model(*[torch.from_numpy(a) for a in feeds.values()])

    return run


def _ort_runner(path, threads):
    from ..runtime import Engine

    engine = Engine.load(path, threads=threads).activate()
    return lambda feeds: engine.infer(feeds, check_finite=False)


@register_bench_backend("ort-fp32")
def _ort_fp32(name, *, batch, frames, threads, workdir, seed):
    from ..export import OnnxFromModel

    res = OnnxFromModel(name, batch=batch, frames=frames, seed=seed)(workdir)
    return _ort_runner(res.onnx_path, threads)


@register_bench_backend("ort-int8")
def _ort_int8(name, *, batch, frames, threads, workdir, seed):
    """U8S8 Q/DQ engine calibrated on the seeded synthetic source (fine for speed, not for accuracy)."""
    from ..export import OnnxFromModel
    from ..export.build_engine import BuildOptions, EngineFromOnnx

    res = OnnxFromModel(name, batch=batch, frames=frames, seed=seed)(workdir)
    built = EngineFromOnnx(res.onnx_path, BuildOptions(int8=True, calib_samples=8, seed=seed, progress=False),
                           backend="onnxruntime")(workdir)
    return _ort_runner(built.engine_path, threads)


def _no_tensorrt(name, **_):
    raise BackendUnavailable("TensorRT is not installed or no GPU is present; the trt-* bench backends need "
                             "pip install 'deploykit[trt]' on a machine with an NVIDIA GPU")


for _trt in ("trt-fp32", "trt-fp16", "trt-int8"):
    _PROVIDERS.setdefault(_trt, _no_tensorrt)


@dataclasses.dataclass
class BackendTiming:
    backend: str
    latencies_ms: list[float]
    batch: int

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))

    @property
    def throughput(self) -> float:
        """Items (sequences or images) per second from the median latency."""
        return self.batch / (self.pct(50) / 1000.0)


@dataclasses.dataclass
class BenchReport:
    model: str
    batch: int
    frames: Optional[int]
    threads: Optional[int]
    timings: list[BackendTiming]
    environment: dict

    def ratio(self, t: BackendTiming, base: str = "torch") -> Optional[float]:
        ref = next((x for x in self.timings if x.backend == base), None)
        return None if ref is None else ref.pct(50) / t.pct(50)

    def markdown(self) -> str:
        env = ", ".join(f"{k} {v}" for k, v in self.environment.items())
        shape = f"batch {self.batch}" + (f", {self.frames} frames" if self.frames else "")
        lines = [f"### {self.model} ({shape}, threads {self.threads or 'default'})", "", f"_{env}_", "",
                 "| backend | p50 ms | p90 ms | p99 ms | items/s | speed-up vs torch (p50) |",
                 "|---|---:|---:|---:|---:|---:|"]
        for t in self.timings:
            r = self.ratio(t)
            lines.append(f"| {t.backend} | {t.pct(50):.2f} | {t.pct(90):.2f} | {t.pct(99):.2f} | "
                         f"{t.throughput:.1f} | {'-' if r is None else f'{r:.2f}x'} |")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict:
        return {"model": self.model, "batch": self.batch, "frames": self.frames, "threads": self.threads,
                "environment": self.environment,
                "backends": {t.backend: {"p50_ms": t.pct(50), "p90_ms": t.pct(90), "p99_ms": t.pct(99),
                                         "items_per_s": t.throughput, "speedup_vs_torch": self.ratio(t),
                                         "samples": len(t.latencies_ms)} for t in self.timings}}


def time_interleaved(runners: dict[str, Runner], feeds: dict, *, rounds: int, iters: int,
                     progress: Optional[Callable[[str], None]] = None) -> dict[str, list[float]]:
    """Latencies in ms of each runner on `feeds`: `rounds` rounds, each timing every runner `iters` times.

    Interleaving spreads the drift of a shared machine over all runners, so their ratios stay fair.
    Warm the runners up before calling this.
    """
    lat: dict[str, list[float]] = {k: [] for k in runners}
    for r in range(rounds):
        if progress:
            progress(f"round {r + 1}/{rounds}")
        for k, run in runners.items():
            for _ in range(iters):
                t0 = time.perf_counter()
                run(feeds)
                lat[k].append((time.perf_counter() - t0) * 1000.0)
    return lat


def run_bench(name: str, backends: Sequence[str], *, batch: int = 1, frames: Optional[int] = None,
              threads: Optional[int] = None, warmup: int = 3, rounds: int = 5, iters: int = 4,
              seed: int = 0, progress: Optional[Callable[[str], None]] = None) -> BenchReport:
    """Time `backends` on the same seeded inputs of model `name`.

    Args:
        backends: bench backend names (see `bench_backends()`), e.g. ["torch", "ort-fp32"].
        batch, frames: static input shape (frames default: the model's).
        threads: intra-op threads for every backend; default: each library's own default.
        warmup: untimed calls per backend before timing; default 3.
        rounds, iters: `rounds` interleaved rounds of `iters` timed calls per backend; defaults 5, 4.
    """
    from ..models.registry import spec as get_spec

    unknown = [b for b in backends if b not in _PROVIDERS]
    if unknown:
        raise BadInputError(f"unknown bench backend(s) {unknown}; choose from {bench_backends()}")
    spec = get_spec(name)
    specs = spec.input_specs(batch, frames)
    feeds = spec.sample_inputs(specs, seed=seed)
    say = progress or (lambda msg: None)
    with tempfile.TemporaryDirectory(prefix="deploykit-bench-") as work:
        runners = {}
        for b in backends:
            say(f"preparing {b}")
            runners[b] = _PROVIDERS[b](name, batch=batch, frames=frames, threads=threads,
                                       workdir=os.path.join(work, b.replace("/", "_")), seed=seed)
            for _ in range(warmup):
                runners[b](feeds)
        lat = time_interleaved(runners, feeds, rounds=rounds, iters=iters, progress=say)
    env = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    try:
        import onnxruntime
        import torch

        env.update({"onnxruntime": onnxruntime.__version__, "torch": torch.__version__.split("+")[0]})
    except ImportError:
        pass
    return BenchReport(name, batch, specs[0].shape[1] if spec.has_frames else None, threads,
                       [BackendTiming(b, lat[b], batch) for b in backends], env)
