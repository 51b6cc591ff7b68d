"""`deploykit list`: the registered models and their static input shapes."""

from __future__ import annotations

import json

import click

from ._app import main
from ._common import handle_errors


@main.command("list")
@click.option("--family", type=click.Choice(["gait", "reid", "pose"]), default=None, help="Only one family.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def list_cmd(family, as_json) -> None:
    """List the registered models with their static input shapes (batch 1, default frames).

    Works without PyTorch (a runtime-only install reads the index shipped with the package).
    """
    from ..zoo_index import rows as zoo_rows

    rows, _ = zoo_rows(family)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        shapes = ", ".join(f"{i['name']} {'x'.join(map(str, i['shape']))}" for i in r["inputs"])
        click.echo(f"{r['name']:<{width}}  {r['family']:<5}  {shapes}  ->  {', '.join(r['outputs'])}")
