"""Reporting helpers every reporting verb shares: `--json FILE` (`-` = stdout) and query counts.

The convention (Polygraphy / trtexec users expect it): `--json FILE` writes the full report as JSON
to FILE atomically; `--json -` puts the JSON alone on standard output and moves the human text to
standard error, so `deploykit VERB ... --json - | jq` always parses. `-` never names a file.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

import click
import numpy as np


def json_option(fn):
    """`--json FILE` (`-` = standard output) as the `json_path` parameter."""
    return click.option("--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True), default=None,
                        metavar="FILE",
                        help="Write the full report as JSON to FILE; '-' = standard output (the human text then "
                             "goes to standard error).")(fn)


def plain(obj: Any) -> Any:
    """`obj` with numpy values turned into JSON types."""
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and obj != obj:
        return None  # NaN: JSON has none
    return obj


def emit(report: Any, json_path: Optional[str]) -> None:
    """Write `report` as JSON to `json_path` ('-' = stdout) atomically; nothing when None."""
    if json_path is None:
        return
    text = json.dumps(plain(report), indent=1)
    if json_path == "-":
        click.echo(text)
    else:
        from .. import atomic

        atomic.write_bytes(json_path, (text + "\n").encode())


def summary(text: str, json_path: Optional[str]) -> None:
    """The human text: on stdout, or on stderr when the JSON report goes to stdout (`--json -`)."""
    click.echo(text, err=json_path == "-")


def say_counts(counted: int, total: int, skipped: Mapping[str, int], what: str = "queries") -> None:
    """One stderr line: how many queries counted and how many were skipped, and why."""
    why = ", ".join(f"{n} {reason}" for reason, n in skipped.items() if n)
    click.secho(f"{what}: {counted} of {total} counted, {total - counted} skipped" + (f" ({why})" if why else ""),
                err=True, fg="cyan")

