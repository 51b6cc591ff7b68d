"""The `deploykit` command line: one thin verb per stage; the logic lives in the library.

Errors are printed as one line (`error: ...`) and exit non-zero: 2 for bad input, 3 for a missing
extra or backend, 1 for anything else deploykit detects.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Callable

import click

from .errors import DeploykitError


def _err(msg: str, color: str = "red") -> None:
    click.secho(msg, fg=color, err=True)


def handle_errors(fn: Callable) -> Callable:
    """Turn DeploykitError into one line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DeploykitError as exc:
            _err(f"error: {exc}")
            sys.exit(exc.exit_code)

    return wrapper


def model_shape_options(fn: Callable) -> Callable:
    """--batch / --frames / --seed / --checkpoint, shared by every verb that builds a model."""
    for deco in reversed([
        click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
                     help="Upstream checkpoint (.pt/.pth). Default: seeded random weights (parity work only)."),
        click.option("--batch", type=int, default=1, show_default=True, help="Static batch size."),
        click.option("--frames", type=int, default=None,
                     help="Static frames per sequence for gait models (default 30)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of random weights and inputs."),
    ]):
        fn = deco(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deploykit")
def main() -> None:
    """deploykit: gait, re-ID and pose models from PyTorch to verified ONNX Runtime / TensorRT.

    \b
    Typical flow:
      deploykit list                      # models and their input shapes
      deploykit export gaitgl --checkpoint GaitGL-80000.pt --out artifacts
      deploykit parity gaitgl --engine artifacts/gaitgl.onnx
    """


@main.command("list")
@click.option("--family", type=click.Choice(["gait", "reid", "pose"]), default=None, help="Only one family.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def list_cmd(family, as_json) -> None:
    """List the registered models with their static input shapes (batch 1, default frames)."""
    from . import models

    rows = []
    for name in models.names(family):
        s = models.spec(name)
        rows.append({"name": name, "family": s.family,
                     "inputs": [i.to_json() for i in s.input_specs()], "outputs": [o.name for o in s.outputs]})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        shapes = ", ".join(f"{i['name']} {'x'.join(map(str, i['shape']))}" for i in r["inputs"])
        click.echo(f"{r['name']:<{width}}  {r['family']:<5}  {shapes}  ->  {', '.join(r['outputs'])}")


@main.command()
@click.argument("name")
@model_shape_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="artifacts", show_default=True,
              help="Folder for NAME.onnx and NAME.manifest.json.")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset (TensorRT 8.5 reads <= 17).")
@click.option("--allow-mismatch", is_flag=True, help="Load a checkpoint even if some keys do not fit.")
@handle_errors
def export(name, checkpoint, batch, frames, seed, out_dir, opset, allow_mismatch) -> None:
    """Export model NAME to static-shape ONNX plus a manifest (atomic writes).

    Without --checkpoint the weights are seeded random: fine for parity and speed work,
    useless for recognition.
    """
    from .export import OnnxFromModel

    stage = OnnxFromModel(name, checkpoint=checkpoint, batch=batch, frames=frames, opset=opset, seed=seed,
                          allow_mismatch=allow_mismatch)
    specs = stage.validate()  # name, shapes, opset and checkpoint, before any warning or work
    if checkpoint is None:
        _err(f"WARNING: no --checkpoint given: {name} is exported with SEEDED RANDOM weights (seed {seed}). "
             f"Its outputs are meaningless for recognition; use it for parity and speed work only.", "yellow")
    _err(f"exporting {name} ({', '.join(f'{s.name} {list(s.shape)}' for s in specs)}) at opset {opset} ...", "cyan")
    result = stage(out_dir)
    outs = ", ".join(f"{o['name']} {o['shape']}" for o in result.manifest["outputs"])
    click.echo(f"wrote {result.onnx_path} ({outs}) and {result.manifest_path}")


@main.command()
@click.argument("name")
@click.option("--engine", type=click.Path(dir_okay=False), default=None,
              help="Engine artifact (.onnx or .plan, manifest beside it). Default: export NAME to FP32 ONNX now.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint the engine was made from (default: what its manifest says).")
@click.option("--samples", type=int, default=2, show_default=True, help="Seeded input samples to compare.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write the report here.")
@handle_errors
def parity(name, engine, checkpoint, samples, json_out) -> None:
    """Compare an engine of model NAME with the PyTorch reference on the same inputs; exit 1 on a miss.

    Reports max/mean absolute and relative error and cosine per output. FP32 gates: cosine >= 0.99999
    and max abs error <= 1e-4 x max|reference| per output.
    """
    from . import atomic
    from .verify.parity import run_parity

    report = run_parity(name, engine, checkpoint=checkpoint, samples=samples)
    for line in report.lines():
        click.echo(line)
    if json_out:
        atomic.write_json(json_out, report.to_json())
    sys.exit(0 if report.passed else 1)


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
    from . import atomic
    from .verify.bench import run_bench

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


if __name__ == "__main__":
    main()
