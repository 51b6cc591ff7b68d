"""`deploykit list`: the registered models and their static input shapes."""

from __future__ import annotations

import click

from ._app import main
from ._common import handle_errors
from ._report import emit, json_option


@main.command("list")
@click.option("--family", type=click.Choice(["gait", "reid", "pose"]), default=None, help="Only one family.")
@json_option
@handle_errors
def list_cmd(family, json_path) -> None:
    """List the registered models with their static input shapes (batch 1, default frames).

    Works without PyTorch (a runtime-only install reads the index shipped with the package).
    """
    from ..zoo_index import rows as zoo_rows

    rows, _ = zoo_rows(family)
    emit(rows, json_path)
    if json_path == "-":
        return  # the JSON is the output
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        shapes = ", ".join(f"{i['name']} {'x'.join(map(str, i['shape']))}" for i in r["inputs"])
        click.echo(f"{r['name']:<{width}}  {r['family']:<5}  {shapes}  ->  {', '.join(r['outputs'])}")
