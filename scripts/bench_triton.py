"""Triton's overhead as a ratio: one engine through a real tritonserver (its Python-backend model, HTTP)
beside the same engine called in-process, at several client concurrencies, interleaved in one run.

    .venv-serve/bin/python scripts/bench_triton.py ENGINE [--concurrency 1,4,16] [--seconds 12] [--rounds 3]
                                                   [--instances 1] [--markdown benchmarks/triton.md]

Runs in the serve venv (scripts/serve_env.sh): it starts the pytriton wheel's server through
`deploykit.serve.Server` on a repository written by `write_repository` into a temporary folder.

* in-process: C Python threads share one `Engine` (ONNX Runtime, 1 intra-op thread), each calling
  `Engine.infer` on a batch-1 item in a loop, as an application embedding the engine would.
* triton: C client threads, each with its own HTTP client, sending the same item to the
  engine's Python-backend model (instance_group count `--instances`, 1 ORT thread each).

Each round runs every (concurrency, mode) pair for seconds / rounds, so the drift of a shared
machine spreads over all of them. Latency is per request as the caller sees it; throughput is
requests per second of wall time at that concurrency. Before timing, the served answer is checked
to be bit-identical to the in-process one.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploykit import atomic  # noqa: E402
from deploykit.runtime import Engine  # noqa: E402
from deploykit.serve.repo import model_name, write_repository  # noqa: E402
from deploykit.serve.server import Server  # noqa: E402
from deploykit.verify.bench import BackendTiming, _environment  # noqa: E402


def _http_caller(url: str, model: str, feeds: dict):
    import tritonclient.http as th
    from tritonclient.utils import np_to_triton_dtype

    client = th.InferenceServerClient(url)
    inputs = []
    for k, v in feeds.items():
        t = th.InferInput(k, list(v.shape), np_to_triton_dtype(v.dtype))
        t.set_data_from_numpy(v)
        inputs.append(t)

    def call():
        return client.infer(model, inputs)

    return call, client.close


def _run_level(make_caller, conc: int, seconds: float) -> tuple[list[float], float]:
    """`conc` threads calling for `seconds`; (latencies ms, wall s)."""
    lat: list[list[float]] = [[] for _ in range(conc)]
    callers = [make_caller() for _ in range(conc)]
    barrier = threading.Barrier(conc + 1)
    stop = [0.0]

    def worker(i: int) -> None:
        call = callers[i][0]
        barrier.wait()
        while time.perf_counter() < stop[0]:
            t0 = time.perf_counter()
            call()
            lat[i].append((time.perf_counter() - t0) * 1000.0)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conc)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    stop[0] = start + seconds
    barrier.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    for c in callers:
        c[1]()
    return [x for xs in lat for x in xs], wall


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("engine")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--seconds", type=float, default=12.0, help="timed seconds per (concurrency, mode), all rounds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--markdown", default=None, help="append the table to this file")
    args = ap.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    engine_path = Path(args.engine)
    eng = Engine.load(engine_path, threads=1).activate()
    spec = eng.inputs[0]
    feeds = {spec.name: np.random.default_rng(0).random((1, *spec.shape[1:])).astype(spec.dtype)}
    ref = eng.infer(feeds)
    name = model_name(engine_path)
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-triton-") as tmp:
        write_repository([engine_path], Path(tmp) / "repo", gpu=False, instances=args.instances)
        with open(Path(tmp) / "server.log", "wb") as log, Server(Path(tmp) / "repo", log=log) as srv:
            call, close = _http_caller(srv.http_url, name, feeds)
            got = call()
            close()
            same = all(np.array_equal(got.as_numpy(k), v) for k, v in ref.items())
            if not same:
                print("served answer differs from the in-process one; not timing", file=sys.stderr)
                return 1
            makers = {"in-process": lambda: ((lambda: eng.infer(feeds)), (lambda: None)),
                      "triton": lambda: _http_caller(srv.http_url, name, feeds)}
            for mode, make in makers.items():  # warm-up: untimed
                _run_level(make, 2, 1.0)
            timing = {(m, c): BackendTiming(m, [], 1) for c in levels for m in makers}
            for r in range(args.rounds):
                for c in levels:
                    for m, make in makers.items():
                        lat, wall = _run_level(make, c, args.seconds / args.rounds)
                        timing[m, c].latencies_ms += lat
                        timing[m, c].wall_s += wall
                print(f"[bench_triton] round {r + 1}/{args.rounds} done", file=sys.stderr)
    eng.deactivate()
    table = _markdown(args, engine_path, spec, timing, levels, load0, os.getloadavg())
    print(table)
    if args.markdown:
        old = Path(args.markdown).read_text() if Path(args.markdown).exists() else ""
        atomic.write_bytes(args.markdown, (old + ("\n" if old else "") + table).encode())
    return 0


def _p99(t: BackendTiming) -> str:
    return f"{t.pct(99):.2f}" + ("" if t.samples >= 100 else "*")


def _markdown(args, engine_path, spec, timing, levels, load0, load1) -> str:
    env = ", ".join(f"{k} {v}" for k, v in _environment().items())
    cmd = ".venv-serve/bin/python scripts/bench_triton.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = [f"### {engine_path.name} (batch-1 requests {[1, *spec.shape[1:]]}), Triton Python backend vs in-process",
             "", f"`{cmd}`", "",
             f"_{env}; instances {args.instances}; {args.seconds:g} s per cell over {args.rounds} rounds; "
             f"load average {load0[0]:.1f} before, {load1[0]:.1f} after_", "",
             "| clients | in-process p50 / p99 ms | in-process req/s | triton p50 / p99 ms | triton req/s | "
             "triton / in-process req/s | p50 ratio (triton / in-process) |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for c in levels:
        a, b = timing["in-process", c], timing["triton", c]
        lines.append(f"| {c} | {a.pct(50):.2f} / {_p99(a)} | {a.throughput:.1f} | {b.pct(50):.2f} / "
                     f"{_p99(b)} | {b.throughput:.1f} | {b.throughput / a.throughput:.2f}x | "
                     f"{b.pct(50) / a.pct(50):.2f}x |")
    lines += ["", f"_samples per cell: {', '.join(f'{m} c{c} {t.samples}' for (m, c), t in timing.items())}_"]
    if any(t.samples < 100 for t in timing.values()):
        lines += ["", "_* p99 from fewer than 100 samples: an estimate; run longer (--seconds) for a tail._"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
