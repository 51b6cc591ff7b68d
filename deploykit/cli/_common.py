"""Shared pieces of the CLI: the error handler and the options more than one verb takes."""

from __future__ import annotations

import functools
import sys
import traceback
import warnings
from typing import Any, Callable

import click

from ..errors import DeploykitError


EXIT_UNEXPECTED = 4
_STATE = {"verbose": False, "quiet": False}


def configure(verbose: bool = False, quiet: bool = False) -> None:
    """Set the global -v/-q flags and route Python warnings to one `warning:` line each."""
    _STATE.update(verbose=bool(verbose), quiet=bool(quiet))
    warnings.showwarning = _show_warning


def quiet() -> bool:
    """Whether -q was given (verbs turn progress bars off)."""
    return _STATE["quiet"]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # Python's format names a source file and line; a user wants the sentence.
    _warn(str(message).strip().splitlines()[0] if str(message).strip() else category.__name__)


def _err(msg: str, color: str = "red") -> None:
    """A note on stderr (silenced by -q unless it is an error)."""
    if _STATE["quiet"] and color != "red":
        return
    click.secho(msg, fg=color, err=True)


def _warn(msg: str) -> None:
    """One `warning:` line on stderr (kept under -q)."""
    click.secho(f"warning: {msg}", fg="yellow", err=True)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def run_guarded(fn: Callable[[], Any]) -> Any:
    """Run `fn`; a DeploykitError becomes one line and its exit code, anything else one line and exit 4."""
    try:
        return fn()
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
        raise
    except DeploykitError as exc:
        if _STATE["verbose"]:
            traceback.print_exc()
        _err(f"error: {_one_line(exc)}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _err("error: interrupted; nothing half-written was left under the final names")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001  (the one place that catches everything)
        if _STATE["verbose"]:
            traceback.print_exc()
        _err(f"error: unexpected {type(exc).__name__}: {_one_line(exc)[:300]}; this is a deploykit bug or an "
             f"unforeseen environment problem: rerun with -v for the traceback and report it")
        sys.exit(EXIT_UNEXPECTED)


def handle_errors(fn: Callable) -> Callable:
    """Turn DeploykitError into one line on stderr and its exit code; anything else into one line, exit 4."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return run_guarded(lambda: fn(*args, **kwargs))

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


def _hw(text):
    """'HxW' -> (h, w), None -> None."""
    if text is None:
        return None
    from ..errors import BadInputError

    try:
        h, w = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise BadInputError(f"--input-size {text!r} is not HxW; give e.g. 128x96") from None
    return h, w
