"""`deploykit parity`: an engine against the PyTorch reference."""

from __future__ import annotations

import sys

import click

from ._app import main
from ._common import handle_errors
from ..verify.gates import help_lines as gates_help
from ._report import emit, json_option, summary


@main.command()
@click.argument("name")
@click.option("--engine", type=click.Path(dir_okay=False), default=None,
              help="Engine artifact (.onnx or .plan, manifest beside it). Default: export NAME to FP32 ONNX now.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint the engine was made from (default: what its manifest says).")
@click.option("--samples", type=int, default=None,
              help="Held-out samples to compare. Default: 2 for FP32, 12 for FP16/INT8 (at least 10).")
@click.option("--heldout-data", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Held-out inputs (.npy, or .npz with one array per input and optional 'labels', one identity "
                   "per sample). Default: seeded synthetic samples (seed 1000, never used by calibration).")
@json_option
@handle_errors
def parity(name, engine, checkpoint, samples, heldout_data, json_path) -> None:
    """Compare an engine of model NAME with the PyTorch reference on the same held-out inputs; exit 1 on a miss.

    Reports per output max abs/relative error, plain cosine, centred cosine (cosine of out - mean(ref)
    with ref - mean(ref) over the held-out samples: the input-dependent part), signal NSR
    (||out - ref|| / ||ref - mean(ref)||) and the task agreement.

    \b
    Gates (deploykit/verify/gates.py):
    {gates}

    Exit codes: 0 all gates hold, 1 a gate failed, 2 bad input.
    """
    from ..verify.parity import run_parity

    report = run_parity(name, engine, checkpoint=checkpoint, samples=samples, data=heldout_data)
    summary("\n".join(report.lines()), json_path)
    emit(report.to_json(), json_path)
    sys.exit(0 if report.passed else 1)


# the gates block of the help comes from the table itself
parity.help = parity.help.replace("    {gates}", "\n".join("      " + ln for ln in gates_help()))
