"""Shared pieces of the CLI: the error handler and the options more than one verb takes."""

from __future__ import annotations

import functools
import sys
from typing import Callable

import click

from ..errors import DeploykitError


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


def patch_options(fn: Callable) -> Callable:
    """--patch NAME (repeatable) / --no-patch, shared by `export` and `patch`."""
    fn = click.option("--no-patch", is_flag=True, help="Apply no graph patch.")(fn)
    return click.option("--patch", "patch_names", multiple=True, metavar="NAME",
                        help="Apply this graph patch (repeatable; default: the default set, see "
                             "`deploykit patch --list`).")(fn)


def _selected_patches(patch_names, no_patch):
    """None (the default set), [] (none) or the chosen names; both flags together are an error."""
    from ..errors import BadInputError

    if no_patch and patch_names:
        raise BadInputError(f"--no-patch and --patch {' '.join(patch_names)} contradict each other; give one")
    return [] if no_patch else (list(patch_names) or None)


def _say_applied(applied) -> None:
    done = ", ".join(f"{a['name']} x{a['matches']}" for a in applied) or "none matched"
    _err(f"graph patches applied: {done}", "cyan")
