"""`deploykit doctor`: what this machine can run (no torch needed)."""

from __future__ import annotations

import json

import click

from ._app import main
from ._common import handle_errors


@main.command()
@click.option("--json", "json_out", type=click.Path(dir_okay=True, allow_dash=True), default=None,
              help="Also write the report as JSON to this file ('-' = standard output, instead of the table).")
@handle_errors
def doctor(json_out) -> None:
    """Library versions, driver, GPU and compute capability, DLA cores, and which backends are usable.

    Runs on a runtime-only install (no PyTorch). Exit 0 always: it reports, it does not judge.
    """
    from .. import atomic
    from ..doctor import collect, lines

    report = collect()
    if json_out == "-":
        click.echo(json.dumps(report, indent=2))
        return
    for line in lines(report):
        click.echo(line)
    if json_out:
        atomic.write_json(json_out, report)
