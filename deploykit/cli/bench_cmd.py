"""`deploykit bench`: latency and throughput per backend, interleaved."""

from __future__ import annotations

import click

from ._app import main
from ._common import _err, handle_errors


@main.command()
@click.argument("name")
@click.option("--backends", default="torch,ort-fp32", show_default=True,
              help="Comma-separated: torch, ort-fp32, ort-int8, trt-fp32, trt-fp16, trt-int8.")
@click.option("--batch", type=int, default=1, show_default=True, help="Static batch size.")
@click.option("--frames", type=int, default=None, help="Frames per sequence for gait models (default 30).")
@click.option("--threads", type=int, default=None, help="Intra-op threads for every backend (default: library default).")
@click.option("--rounds", type=int, default=5, show_default=True, help="Interleaved timing rounds.")
@click.option("--iters", type=int, default=4, show_default=True, help="Timed calls per backend per round.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write the results here.")
@click.option("--markdown", "md_out", type=click.Path(dir_okay=False), default=None,
              help="Append the markdown table to this file (e.g. benchmarks/gaitgl.md).")
@handle_errors
def bench(name, backends, batch, frames, threads, rounds, iters, json_out, md_out) -> None:
    """Latency p50/p90/p99 and throughput of NAME per backend, in one interleaved run.

    Speed-ups are ratios against PyTorch eager measured in the same run (include `torch`).
    """
    from .. import atomic
    from ..verify.bench import run_bench

    report = run_bench(name, [b.strip() for b in backends.split(",") if b.strip()], batch=batch,
                       frames=frames, threads=threads, rounds=rounds, iters=iters,
                       progress=lambda m: _err(f"[bench {name}] {m}", "cyan"))
    table = report.markdown()
    click.echo(table)
    if json_out:
        atomic.write_json(json_out, report.to_json())
    if md_out:
        from pathlib import Path

        old = Path(md_out).read_text() if Path(md_out).exists() else ""
        atomic.write_bytes(md_out, (old + ("\n" if old else "") + table).encode())
