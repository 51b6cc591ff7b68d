"""`--backend auto` on a CPU: build every usable CPU backend, time them, keep the fastest that is accurate.

On a machine without TensorRT and a GPU, ONNX Runtime and OpenVINO can both run the engine, and
which is faster depends on the model and the CPU (measured: OpenVINO INT8 ~4x ONNX Runtime INT8 on
gaitset here, equal on others). So `auto` measures instead of guessing: one calibration serves
both (U8S8 for ONNX Runtime, the S8S8 model for OpenVINO), each candidate is timed on the engine's
own shapes in interleaved rounds and checked against the FP32 ONNX on seeded samples, and the
fastest that passes the accuracy gate is kept. The measurements go into its manifest
(`engine.auto`) and the choice is printed.

Two refinements, both from benchmarks/cpu_backends.md (3 Dec): two timings of one engine file in
one run differed by up to 18% on the shared machine, and the first 1.5 s look kept gaitset's ONNX
Runtime engine at 0.74x of OpenVINO's; so the two fastest accurate candidates are timed again,
longer, when they are within CLOSE of each other. And when no candidate passes (hrnet-w32 with
seeded weights: centred cosine 0.41 for ONNX Runtime U8S8, 0.91 for OpenVINO S8S8), the most
accurate one is kept, not the reference, and the note says that none passed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from .. import manifest as mf

# p50s closer than this share are re-timed (RETIME x the first look) before one is kept: differences
# under ~15% were noise in the 3 Dec benchmark run
CLOSE = 0.15
RETIME = 3

# the choice is judged by the parity gates' output thresholds (deploykit/verify/gates.py): plain
# cosine for FP32, the input-dependent signal (centred cosine, signal NSR) for INT8, over the
# calibration samples (or seeded ones) against the FP32 ONNX


def build_fastest_cpu(onnx_path: Path, man: dict, opt, out_dir: Path, builders: dict[str, Callable], *,
                      seconds: float = 1.5, samples: int = 6):
    """Build with each builder, time and check them, and return the fastest accurate BuildResult.

    Args:
        opt: the BuildOptions.
        builders: {backend: its builder's `build`}, the reference (kept when none is accurate) first; the
            first one's calibration serves the others (U8S8 for ONNX Runtime, S8S8 for OpenVINO).
    """
    cands, calibration = {}, None
    for name, build in builders.items():
        cands[name] = build(onnx_path, man, opt, out_dir, calibration=calibration)
        calibration = calibration or cands[name].calibration
    table = measure(onnx_path, {k: r.engine_path for k, r in cands.items()}, "int8" if opt.int8 else "fp32",
                    seconds=seconds, samples=samples, seed=opt.seed, data=opt.calib_data, man=man, threads=opt.threads)
    chosen = choose(table)
    res = cands[chosen]
    threads = f"{opt.threads} threads" if opt.threads else "each backend's default threads"
    res.manifest["engine"]["auto"] = {"chosen": chosen, "candidates": table, "threads": opt.threads,
                                      "how": f"interleaved timing at {threads}, {seconds:g} s per candidate (the two fastest "
                                             f"accurate ones {RETIME}x longer again when within {CLOSE:.0%}); the "
                                             f"parity gates' output thresholds vs the FP32 ONNX on {samples} samples; "
                                             f"when none passes, the most accurate"}
    mf.write(res.manifest_path, res.manifest)
    for k, r in cands.items():
        if k != chosen:
            res.extras[f"candidate-{k}"] = r.engine_path
    speed = " vs ".join(f"{k} {m['p50_ms']:.1f} ms{'' if m['passed'] else ' (inaccurate)'}" for k, m in table.items())
    res.notes.append(f"auto: kept {chosen} ({speed}, p50 on this machine)")
    if not table[chosen]["passed"]:
        res.notes.append(f"auto: NO candidate passed the {'INT8' if opt.int8 else 'FP32'} accuracy check; kept the "
                         f"most accurate ({_accuracy_line(table[chosen])}). Check it with `deploykit parity`; for "
                         f"INT8 calibrate on real data (--calib-data) or let --sensitivity keep layers float")
    return res


def choose(table: dict[str, dict]) -> str:
    """The fastest (p50) candidate that passed the accuracy gate; when none did, the most accurate
    (most gates passed, then the best `rank` figure: the precision's first output gate)."""
    passing = [k for k, m in table.items() if m["passed"]]
    if passing:
        return min(passing, key=lambda k: table[k]["p50_ms"])
    return max(table, key=lambda k: (table[k].get("gates_passed", 0), table[k].get("rank", float("-inf"))))


def _accuracy_line(m: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in m["worst"].items())


def _close_pair(table: dict[str, dict]) -> list[str]:
    """The two fastest accurate candidates when their p50s are within CLOSE of each other, else []."""
    fast = sorted((k for k, m in table.items() if m["passed"]), key=lambda k: table[k]["p50_ms"])[:2]
    if len(fast) == 2 and table[fast[1]]["p50_ms"] <= table[fast[0]]["p50_ms"] * (1 + CLOSE):
        return fast
    return []


def measure(onnx_path: Path, engines: dict[str, Path], precision: str, *, seconds: float, samples: int,
            seed: int, data=None, man=None, threads=None) -> dict[str, dict]:
    """{backend: {p50_ms, worst, passed, precision}} for each engine file, on the same inputs.

    `worst` holds, per gate of the precision's output thresholds, the worst value over the outputs.
    `threads`: every candidate runs at this many (None: each backend's default).
    """
    from ..runtime import Engine
    from ..verify.timing import time_interleaved
    from ..verify.compare import signal_stats
    from ..verify.engine_compare import run_samples, sample_inputs
    from ..verify.gates import gates_for

    with Engine.load(onnx_path) as ref_engine:
        feeds = _feeds(ref_engine, data, man, samples, seed) if data else sample_inputs(ref_engine.inputs, samples, seed)
        ref = run_samples(ref_engine, feeds)
    gates = gates_for(precision).output
    opts = {"threads": int(threads)} if threads else {}
    loaded = {k: Engine.load(p, **opts).activate() for k, p in engines.items()}
    try:
        table = {}
        for k, e in loaded.items():
            out = run_samples(e, feeds)
            stats = [signal_stats(ref[n], out[n]) for n in ref]
            worst = {t.figure: (min if t.op == ">=" else max)(st[t.figure] for st in stats) for t in gates}
            judged = [t.judge(worst[t.figure]) for t in gates]
            rank = worst[gates[0].figure] * (1 if gates[0].op == ">=" else -1)
            table[k] = {"precision": precision, "worst": worst, "passed": all(judged),
                        "gates_passed": sum(bool(j) for j in judged), "rank": float(rank) if np.isfinite(rank) else -1e30}
        one = {n: a[0] for n, a in feeds.items()}
        runners = {k: (lambda e: lambda f: e.infer(f, check_finite=False))(e) for k, e in loaded.items()}
        for run in runners.values():
            run(one)
        lat = time_interleaved(runners, one, rounds=3, duration=seconds)
        _p50s(table, lat)
        pair = _close_pair(table)
        if pair:  # near-equal: a longer interleaved look at the two, pooled with the first
            more = time_interleaved({k: runners[k] for k in pair}, one, rounds=3 * RETIME, duration=seconds * RETIME)
            for k in pair:
                lat[k] = lat[k] + more[k]
                table[k]["retimed"] = True
            _p50s(table, lat)
        return table
    finally:
        for e in loaded.values():
            e.deactivate()


def _p50s(table: dict[str, dict], lat: dict[str, list[float]]) -> None:
    for k in table:
        table[k]["p50_ms"] = float(np.percentile(lat[k], 50))
        table[k]["samples"] = len(lat[k])


def _feeds(engine, data, man, samples: int, seed: int) -> dict[str, np.ndarray]:
    """Up to `samples` calibration samples, `[n, *input shape]` (the engine's batch per sample)."""
    from ..calib import sources

    batches = list(sources.batches(sources.open_source(data, man, seed=seed), samples, progress=False))
    return {s.name: np.stack([b[s.name] for b in batches]) for s in engine.inputs}
