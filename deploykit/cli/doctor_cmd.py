"""`deploykit doctor`: what this machine can run (no torch needed)."""

from __future__ import annotations

import click

from ._app import main
from ._common import handle_errors
from ._report import emit, json_option


@main.command()
@json_option
@handle_errors
def doctor(json_path) -> None:
    """Library versions, driver, GPU and compute capability, DLA cores, and which backends are usable.

    Runs on a runtime-only install (no PyTorch). Exit 0 always: it reports, it does not judge.
    """
    from ..doctor import collect, lines

    report = collect()
    if json_path != "-":  # with `--json -` the JSON is the output
        for line in lines(report):
            click.echo(line)
    emit(report, json_path)
