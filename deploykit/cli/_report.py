"""Reporting helpers shared by `gallery` and `evaluate`: `--json FILE` (`-` = stdout) and query counts."""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

import click
import numpy as np


def json_option(fn):
    return click.option("--json", "json_path", default=None, metavar="FILE",
                        help="Also write the full report as JSON to FILE ('-' = standard output).")(fn)


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


def emit(report: Mapping[str, Any], json_path: Optional[str]) -> None:
    """Write `report` as JSON to `json_path` ('-' = stdout) atomically."""
    if json_path is None:
        return
    text = json.dumps(plain(report), indent=1)
    if json_path == "-":
        click.echo(text)
    else:
        from .. import atomic

        atomic.write_bytes(json_path, (text + "\n").encode())


def summary(text: str, json_path: Optional[str]) -> None:
    """The human summary: on stdout, or on stderr when the JSON report goes to stdout (`--json -`)."""
    click.echo(text, err=json_path == "-")


def say_counts(counted: int, total: int, skipped: Mapping[str, int], what: str = "queries") -> None:
    """One stderr line: how many queries counted and how many were skipped, and why."""
    why = ", ".join(f"{n} {reason}" for reason, n in skipped.items() if n)
    click.secho(f"{what}: {counted} of {total} counted, {total - counted} skipped" + (f" ({why})" if why else ""),
                err=True, fg="cyan")


def warn(msg: str) -> None:
    click.secho(f"warning: {msg}", err=True, fg="yellow")
