"""`deploykit bench`: latency and throughput of engine files (any backend) and models, in one run.

Targets are engine files (`.onnx` of ONNX Runtime or OpenVINO, `.plan`: timed as they are, no
re-export or re-calibration, no torch needed) and model names (expanded to `--backends`, e.g.
`torch,ort-fp32`; these need torch). The machines this runs on are shared and noisy, so targets are
timed in interleaved rounds (round-robin; each round gives every target the same time slice) and
reported as ratios against a baseline measured in the same run (torch eager when present, else the
first target); absolute numbers are only indicative. Throughput is measured (items over the wall
time of the timed calls), not derived from the median latency.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import BackendUnavailable, BadInputError
from .timing import Runner, time_interleaved

_PROVIDERS: dict[str, Callable[..., Runner]] = {}


def register_bench_backend(name: str):
    """Register a factory `(model_name, *, batch, frames, threads, workdir, seed, input_size) -> runner(feeds)`
    (`input_size`: (h, w) of the image input, or None for the registry's)."""

    def deco(fn):
        if name in _PROVIDERS:
            raise ValueError(f"bench backend {name!r} is registered twice")
        _PROVIDERS[name] = fn
        return fn

    return deco


def _providers() -> dict[str, Callable[..., Runner]]:
    """torch, plus every backend record's `bench` variants (runtime/backends/NAME.py)."""
    from ..runtime import backend

    out = dict(_PROVIDERS)
    for rec in backend.by_priority():
        for variant in rec.bench:
            out.setdefault(variant.name, _variant_factory(rec, variant))
    return out


def bench_backends() -> list[str]:
    return sorted(_providers())


@register_bench_backend("torch")
def _torch(name, *, batch, frames, threads, workdir, seed, input_size=None):
    import torch

    from ..models.factory import reference_model
    from ..models.registry import spec as get_spec

    if threads:
        torch.set_num_threads(int(threads))
    # at_input_size refuses a model whose size is fixed; its input_size_keys are the config keys to pass
    sized = None if input_size is None else get_spec(name).at_input_size(*input_size)
    model, _ = reference_model(name, seed=seed, **({k: sized.default_config[k] for k in sized.input_size_keys}
                                                   if sized else {}))

    def run(feeds):
        with torch.inference_mode():
            return model(*[torch.from_numpy(a) for a in feeds.values()])

    return run


def _engine_options(path, threads, say=None) -> dict:
    """`threads=` for the engines that take it; said, not passed, for those that do not (a TensorRT plan)."""
    from .. import manifest as mf
    from ..runtime import backend

    if not threads:
        return {}
    mpath = mf.manifest_path_for(Path(path))
    rec = backend.for_artifact(Path(path), mf.read(mpath) if mpath.is_file() else {})
    if "threads" in rec.engine_options():
        return {"threads": threads}
    if say:
        say(f"{os.path.basename(path)}: the {rec.name} engine takes no thread count; --threads ignored for it")
    return {}


def _engine_runner(path, threads, say=None):
    from ..runtime import Engine

    engine = Engine.load(path, **_engine_options(path, threads, say)).activate()
    run = lambda feeds: engine.infer(feeds, check_finite=False)  # noqa: E731
    run.engine = engine
    return run


def _variant_factory(rec, variant):
    """A bench factory for one backend record's variant: the seeded export, built when the variant says so."""

    def factory(name, *, batch, frames, threads, workdir, seed, input_size=None):
        """INT8 variants calibrate on the seeded synthetic source (fine for speed, not for accuracy)."""
        from ..export import OnnxFromModel

        why = rec.available()
        if why is not None:
            raise BackendUnavailable(f"bench backend {variant.name}: {why}")
        export = OnnxFromModel(name, batch=batch, frames=frames, seed=seed, input_size=input_size)
        if variant.build is None:
            return _engine_runner(export(workdir).path, threads)
        from ..build.build_engine import BuildOptions, EngineFromOnnx

        opts = BuildOptions(**{"calib_samples": 8, "seed": seed, "progress": False, **variant.build})
        return _engine_runner(EngineFromOnnx(export, opts, backend=rec.name)(workdir).path, threads)

    return factory


@dataclasses.dataclass
class BackendTiming:
    """Latencies of one target and the wall time its timed calls took."""

    backend: str
    latencies_ms: list[float]
    batch: int
    wall_s: float = 0.0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))

    @property
    def samples(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        """Items (sequences or images) per second over the timed calls' wall time."""
        wall = self.wall_s or sum(self.latencies_ms) / 1000.0
        return self.batch * self.samples / wall if wall > 0 else float("nan")


@dataclasses.dataclass
class BenchReport:
    model: str
    batch: int
    frames: Optional[int]
    threads: Optional[int]
    timings: list[BackendTiming]
    environment: dict
    baseline: Optional[str] = None

    def _base(self) -> Optional[BackendTiming]:
        name = self.baseline or ("torch" if any(t.backend == "torch" for t in self.timings) else None)
        if name is None:
            return self.timings[0] if self.timings else None
        return next((t for t in self.timings if t.backend == name), None)

    def ratio(self, t: BackendTiming) -> Optional[float]:
        ref = self._base()
        return None if ref is None else ref.pct(50) / t.pct(50)

    def markdown(self) -> str:
        env = ", ".join(f"{k} {v}" for k, v in self.environment.items())
        shape = f"batch {self.batch}" + (f", {self.frames} frames" if self.frames else "")
        base = self._base()
        lines = [f"### {self.model} ({shape}, threads {self.threads or 'default'})", "", f"_{env}_", "",
                 f"| backend | p50 ms | p90 ms | p99 ms | samples | items/s | speed-up vs "
                 f"{base.backend if base else '-'} (p50) |", "|---|---:|---:|---:|---:|---:|---:|"]
        for t in self.timings:
            r = self.ratio(t)
            p99 = f"{t.pct(99):.2f}" + ("" if t.samples >= 100 else "*")
            lines.append(f"| {t.backend} | {t.pct(50):.2f} | {t.pct(90):.2f} | {p99} | {t.samples} | "
                         f"{t.throughput:.1f} | {'-' if r is None else f'{r:.2f}x'} |")
        if any(t.samples < 100 for t in self.timings):
            lines += ["", "_* p99 from fewer than 100 samples: an estimate; run longer (--duration) for a tail._"]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict:
        base = self._base()
        return {"model": self.model, "batch": self.batch, "frames": self.frames, "threads": self.threads,
                "environment": self.environment, "baseline": base.backend if base else None,
                "backends": {t.backend: {"p50_ms": t.pct(50), "p90_ms": t.pct(90), "p99_ms": t.pct(99),
                                         "items_per_s": t.throughput, "speedup_vs_baseline": self.ratio(t),
                                         "samples": t.samples, "wall_s": t.wall_s} for t in self.timings}}


def _is_engine_file(target: str) -> bool:
    return os.path.isfile(target) or target.endswith((".onnx", ".plan", ".engine"))


def passive_openmp() -> None:
    """Let torch's OpenMP threads sleep, not spin, between ops, unless the user set OMP_WAIT_POLICY.

    Spinning threads on a shared, oversubscribed machine stall each other when one is preempted:
    torch eager gaitpart took 9.6 s per call instead of 0.74 s (2 threads, load average 17 on 2
    cores), which inflated every speed-up over torch 13x. ONNX Runtime sessions avoid the same
    effect with `session.force_spinning_stop`. OpenMP reads the policy when torch loads it, so this
    runs before torch is imported (the report's environment says which policy was in force).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _environment() -> dict:
    from importlib import metadata

    env = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    for dist in ("onnxruntime", "openvino", "tensorrt", "torch"):
        try:
            env[dist] = metadata.version(dist).split("+")[0]
        except metadata.PackageNotFoundError:
            pass
    if "torch" in sys.modules:
        env["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "library default")
    return env


def run_bench(targets: Sequence[str] | str, backends: Sequence[str] = ("torch", "ort-fp32"), *, batch: int = 1,
              frames: Optional[int] = None, threads: Optional[int] = None, warmup: int = 3, rounds: int = 5,
              iters: Optional[int] = None, duration: Optional[float] = None, seed: int = 0,
              inputs: Optional[str] = None, baseline: Optional[str] = None,
              input_size: Optional[tuple[int, int]] = None,
              progress: Optional[Callable[[str], None]] = None) -> BenchReport:
    """Time engine files and/or models on the same inputs, interleaved.

    Args:
        targets: engine files (timed as they are, torch-free) and/or model names (expanded to `backends`).
        backends: bench backends for model-name targets (see `bench_backends()`), e.g. ["torch", "ort-fp32"].
        batch, frames: static input shape of model-name targets (frames default: the model's).
        input_size: (h, w) image input of model-name targets (models whose spec allows it: hrnet, rga),
            e.g. to time torch against engines of a proxy exported at its own size; default the registry's.
        threads: intra-op threads for every target; default: each library's own default.
        warmup: untimed calls per target before timing; default 3.
        rounds: interleaved rounds; default 5.
        iters / duration: timed calls per target per round, or seconds per target in all (split over
            the rounds); default `duration` 10 s.
        inputs: an inputs `.npz` (see `engine_compare`; its first sample is timed); default seeded data.
        baseline: the target the ratios are against; default torch when present, else the first.
    """
    targets = [targets] if isinstance(targets, str) else list(targets)
    if not targets:
        raise BadInputError("deploykit bench needs at least one engine file or model name")
    if iters is None and duration is None:
        duration = 10.0
    say = progress or (lambda msg: None)
    engines = [t for t in targets if _is_engine_file(t)]
    names = [t for t in targets if t not in engines]
    if names and "torch" in backends:
        passive_openmp()
    with tempfile.TemporaryDirectory(prefix="deploykit-bench-") as work:
        runners, feeds, label = _engine_runners(engines, threads, inputs, seed, say)
        if names:
            unknown = [b for b in backends if b not in _providers()]
            if unknown:
                raise BadInputError(f"unknown bench backend(s) {unknown}; choose from {bench_backends()}")
            model_feeds = _model_runners(names, backends, runners, batch, frames, threads, seed, work, say,
                                         input_size, feeds)
            feeds = feeds if feeds is not None else model_feeds
            label = label or names[0]
        _check_shapes(runners, feeds)
        for k, run in runners.items():
            for _ in range(warmup):
                run(feeds)
        lat = time_interleaved(runners, feeds, rounds=rounds, iters=iters, duration=duration, progress=say)
        wall = time_interleaved.last_wall_s
    first = next(iter(feeds.values()))
    n_batch = int(first.shape[0]) if first.ndim else 1
    n_frames = int(first.shape[1]) if first.ndim >= 4 and label_has_frames(feeds) else None
    if baseline is not None and baseline not in runners:
        raise BadInputError(f"--baseline {baseline!r} is not one of the timed targets {list(runners)}")
    return BenchReport(label, n_batch, n_frames, threads,
                       [BackendTiming(k, lat[k], n_batch, wall[k]) for k in runners], _environment(), baseline)


def label_has_frames(feeds: dict) -> bool:
    """Gait inputs are `[n, s, h, w]` silhouettes named `sils`."""
    return "sils" in feeds


def _engine_runners(engines, threads, inputs, seed, say):
    from .engine_compare import load_inputs, sample_inputs

    runners, feeds, label = {}, None, None
    keys = engine_labels(engines)
    for path, key in zip(engines, keys):
        say(f"loading {path}")
        run = _engine_runner(path, threads, say)
        engine = run.engine
        if feeds is None:
            data = load_inputs(inputs, engine.inputs) if inputs else sample_inputs(engine.inputs, 1, seed)
            feeds = {k: v[0] for k, v in data.items()}
            label = engine.manifest.get("model", {}).get("name") or os.path.basename(path)
        runners[key] = run
    return runners, feeds, label


def engine_labels(paths: Sequence[str]) -> list[str]:
    """One distinct label per engine file: its basename, or more of its path where basenames clash.

    `auto/gaitgl.int8.onnx` and `ort/gaitgl.int8.onnx` are different engines; keyed by basename, the
    second silently replaced the first and the run timed one engine twice under one name.
    """
    parts = [os.path.normpath(p).split(os.sep) for p in paths]
    labels = [p[-1] for p in parts]
    for depth in range(2, max((len(p) for p in parts), default=1) + 1):
        clash = {lab for lab in labels if labels.count(lab) > 1}
        if not clash:
            break
        labels = [os.path.join(*p[-depth:]) if lab in clash else lab for p, lab in zip(parts, labels)]
    dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dupes:
        raise BadInputError(f"bench: {dupes[0]} is given more than once; time each engine file once")
    return labels


def _model_runners(names, backends, runners, batch, frames, threads, seed, work, say, input_size=None,
                   engine_feeds=None):
    from ..models.registry import spec as get_spec

    feeds, providers = None, _providers()
    for name in names:
        spec = get_spec(name) if input_size is None else get_spec(name).at_input_size(*input_size)
        feeds = feeds or spec.sample_inputs(spec.input_specs(batch, frames), seed=seed)
        _same_inputs(engine_feeds, feeds, names)  # before any export or build
        for b in backends:
            say(f"preparing {name} on {b}")
            key = b if len(names) == 1 else f"{name}:{b}"
            runners[key] = providers[b](name, batch=batch, frames=frames, threads=threads, seed=seed,
                                         workdir=os.path.join(work, key.replace("/", "_").replace(":", "_")),
                                         input_size=input_size)
    return feeds


def _same_inputs(engine_feeds, model_feeds, names) -> None:
    """Engine files and model names in one run must time the same input shapes (a proxy exported at its
    own size would otherwise meet torch built at the registry's size)."""
    if engine_feeds is None:
        return
    got = {k: tuple(v.shape) for k, v in engine_feeds.items()}
    want = {k: tuple(v.shape) for k, v in model_feeds.items()}
    if got != want:
        raise BadInputError(f"bench: the engine files take {got} but {names[0]} at these options takes {want}; "
                            f"pass the engines' shape (--input-size HxW, --frames, --batch) so the model-name targets "
                            f"run at it")


def _check_shapes(runners, feeds) -> None:
    for key, run in runners.items():
        engine = getattr(run, "engine", None)
        if engine is None:
            continue
        got = {s.name: tuple(s.shape) for s in engine.inputs}
        want = {k: tuple(v.shape) for k, v in feeds.items()}
        if got != want:
            raise BadInputError(f"bench: {key} takes inputs {got}, the other targets {want}; time engines of the "
                                f"same input shapes together (one bench run per shape)")
