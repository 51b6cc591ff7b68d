"""Where an OpenVINO engine spends its time: OpenVINO's own per-node profile (`PERF_COUNT`).

    python scripts/ov_profile.py ENGINE.onnx [--threads 2] [--iters 50] [--top 15]

ENGINE is a deploykit OpenVINO engine (its manifest gives the precision hint). The engine is compiled
as `Engine.load` compiles it, plus PERF_COUNT; run `--iters` times on seeded inputs of the
manifest's shapes; the per-node real times are summed over the runs and printed by node, by layer
type and by kernel (`exec_type`: e.g. `brgconv_avx512_I8`, `jit_avx512_f32`, `ref_any_f32`; a
`ref`/`unknown` kernel is OpenVINO's slow reference path, and an f32 kernel on a node of an INT8
engine is a layer left in float). Investigation only: the figures are shares of one run, the
speed claims are measured by `deploykit bench`.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np


def profile(path: Path, threads: int, iters: int):
    import openvino as ov

    from deploykit.runtime import Engine

    eng = Engine.load(path, threads=threads)
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(path)), "CPU", {**eng.config(), "PERF_COUNT": "YES"})
    rng = np.random.default_rng(0)
    feeds = {s.name: rng.uniform(0, 1, s.shape).astype(s.dtype) for s in eng.inputs}
    req = compiled.create_infer_request()
    req.infer(feeds)  # warm-up, not counted
    by_node: dict[tuple, float] = collections.defaultdict(float)
    for _ in range(iters):
        req.infer(feeds)
        for p in req.profiling_info:
            if p.status == p.Status.EXECUTED:
                by_node[(p.node_name, p.node_type, p.exec_type)] += p.real_time.total_seconds() * 1e3 / iters
    return by_node


def _table(title: str, rows: dict, total: float, top: int) -> None:
    print(f"\n{title}")
    for key, ms in sorted(rows.items(), key=lambda kv: -kv[1])[:top]:
        label = " | ".join(key) if isinstance(key, tuple) else key
        print(f"  {ms:8.2f} ms  {100 * ms / total:5.1f}%  {label}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("engine", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args(argv)
    by_node = profile(args.engine, args.threads, args.iters)
    total = sum(by_node.values())
    print(f"{args.engine.name}: {total:.2f} ms per inference summed over executed nodes ({args.threads} threads, "
          f"{args.iters} runs)")
    by_type, by_kernel = collections.defaultdict(float), collections.defaultdict(float)
    for (name, kind, kernel), ms in by_node.items():
        by_type[kind] += ms
        by_kernel[kernel] += ms
    _table("by layer type", by_type, total, args.top)
    _table("by kernel", by_kernel, total, args.top)
    _table("by node (name | type | kernel)", by_node, total, args.top)


if __name__ == "__main__":
    main()
