"""Measure focal-fold and grouped-parts in ONNX Runtime on GaitGL and GaitPart; write benchmarks/patches.md.

    .venv/bin/python scripts/bench_patches.py [--frames 30] [--threads 1 2] [--rounds 10] [--iters 5]

Each model is exported once without patches; the variants apply patch sets to that graph and are
timed in interleaved rounds in one run (deploykit.verify.patch_bench). The baseline is `cleanup`
alone (constant folding), so the ratios isolate the pass being measured.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from deploykit import atomic
from deploykit.verify.patch_bench import bench_patch_variants, environment

VARIANTS = {
    "gaitgl": {"cleanup": ["cleanup"],
               "focal-fold": ["focal-fold", "cleanup"],
               "default set": ["gem-fp16", "focal-fold", "cleanup"]},
    "gaitpart": {"cleanup": ["cleanup"],
                 "focal-fold": ["focal-fold", "cleanup"],
                 "grouped-parts": ["grouped-parts", "cleanup"],
                 "default set": ["focal-fold", "grouped-parts", "cleanup"]},
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "benchmarks" / "patches.md"))
    args = ap.parse_args(argv)
    env = environment()
    sections = []
    for name, variants in VARIANTS.items():
        for threads in args.threads:
            report = bench_patch_variants(name, variants, baseline="cleanup", frames=args.frames, threads=threads,
                                          rounds=args.rounds, iters=args.iters,
                                          progress=lambda m: print(f"[{name} x{threads}] {m}", file=sys.stderr))
            print(report.markdown())
            sections.append(report.markdown())
    load_end = environment().get("load_avg_1min")
    head = [
        "# Graph patches: ONNX Runtime latency before and after", "",
        "Written by `scripts/bench_patches.py` "
        f"({datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}); rerun it to refresh.", "",
        f"- machine: {env['cpu']}, {env['cores']} cores (shared: 1-minute load average {env.get('load_avg_1min')} "
        f"at the start, {load_end} at the end)",
        f"- ONNX Runtime {env['onnxruntime']} (CPUExecutionProvider, graph optimizations on), Python {env['python']}",
        f"- input: batch 1, {args.frames} frames of 64x44 silhouettes; seeded random weights (latency does not "
        f"depend on the weight values)",
        "- each variant is the same unpatched export with the listed patches applied; the baseline applies only "
        "`cleanup` (constant folding), so each ratio isolates the pass named in its row",
        "- speed-up > 1 means faster than the baseline. The machine is shared, so absolute milliseconds are "
        "indicative; the ratios come from interleaved rounds in one run", "",
    ]
    atomic.write_bytes(args.out, ("\n".join(head) + "\n" + "\n".join(sections)).encode())
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
