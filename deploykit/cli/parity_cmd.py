"""`deploykit parity`: an engine against the PyTorch reference."""

from __future__ import annotations

import sys

import click

from ._app import main
from ._common import handle_errors


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
    from .. import atomic
    from ..verify.parity import run_parity

    report = run_parity(name, engine, checkpoint=checkpoint, samples=samples)
    for line in report.lines():
        click.echo(line)
    if json_out:
        atomic.write_json(json_out, report.to_json())
    sys.exit(0 if report.passed else 1)
