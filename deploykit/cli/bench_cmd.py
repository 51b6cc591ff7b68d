"""`deploykit bench`: latency and throughput of engine files and models, interleaved in one run."""

from __future__ import annotations

import click

from ._app import main
from ._common import _err, _hw, handle_errors
from ._report import emit, json_option, summary


@main.command()
@click.argument("targets", nargs=-1, required=True, metavar="ENGINE|NAME...")
@click.option("--backends", default="torch,ort-fp32", show_default=True,
              help="For NAME targets: comma-separated bench backends: torch, ort-fp32, ort-int8, ov-fp32, ov-bf16, "
                   "ov-int8 (trt-* need TensorRT). Engine files are timed as they are.")
@click.option("--batch", type=int, default=1, show_default=True, help="Static batch size of NAME targets.")
@click.option("--frames", type=int, default=None, help="Frames per sequence of NAME gait targets (default 30).")
@click.option("--input-size", default=None, metavar="HxW",
              help="Image input of NAME targets other than upstream's (hrnet-w32/w48, rga), e.g. to time torch "
                   "against engines of a proxy exported at 192x96.")
@click.option("--threads", type=int, default=None, help="Intra-op threads for every target (default: library default).")
@click.option("--duration", type=float, default=None,
              help="Seconds of timed calls per target, split over the rounds (default 10 unless --iters).")
@click.option("--iters", type=int, default=None, help="Instead of --duration: timed calls per target per round.")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed calls per target first.")
@click.option("--rounds", type=int, default=5, show_default=True, help="Interleaved timing rounds.")
@click.option("--load-inputs", "inputs", type=click.Path(dir_okay=False), default=None,
              help="Inputs .npz (see `deploykit compare --help`); its first sample is timed. Default: seeded data.")
@click.option("--baseline", default=None, help="Target the ratios are against (default: torch if timed, else the first).")
@json_option
@click.option("--markdown", "md_out", type=click.Path(dir_okay=False), default=None,
              help="Append the markdown table to this file (e.g. benchmarks/cpu_backends.md).")
@handle_errors
def bench(targets, backends, batch, frames, input_size, threads, duration, iters, warmup, rounds, inputs, baseline,
          json_path, md_out) -> None:
    """Latency p50/p90/p99 (with the sample count) and measured throughput, interleaved in one run.

    \b
    Engine files of any backend, timed as they are (no torch needed):
      deploykit bench engines/gaitgl.fp32.onnx engines/gaitgl.int8.onnx engines/gaitgl.openvino.int8.onnx
    Model names, exported and built here (needs torch):
      deploykit bench gaitgl --backends torch,ort-fp32,ort-int8,ov-int8
    Ratios are against a baseline timed in the same run (torch when present, else the first target).
    """
    from pathlib import Path

    from .. import atomic
    from ..errors import BadInputError
    from ..verify.bench import run_bench

    if duration is not None and iters is not None:
        raise BadInputError("--duration and --iters contradict each other; give one")
    report = run_bench(list(targets), [b.strip() for b in backends.split(",") if b.strip()], batch=batch,
                       frames=frames, threads=threads, warmup=warmup, rounds=rounds, iters=iters, duration=duration,
                       inputs=inputs, baseline=baseline, input_size=_hw(input_size),
                       progress=lambda m: _err(f"[bench] {m}", "cyan"))
    table = report.markdown()
    summary(table, json_path)
    emit(report.to_json(), json_path)
    if md_out:
        old = Path(md_out).read_text() if Path(md_out).exists() else ""
        atomic.write_bytes(md_out, (old + ("\n" if old else "") + table).encode())
