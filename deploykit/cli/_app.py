"""The `deploykit` click group; every verb module adds itself to it."""

from __future__ import annotations

import click

from . import _common


class _App(click.Group):
    """The group: every verb runs under the one error handler (one line, documented exit codes)."""

    def invoke(self, ctx: click.Context):
        return _common.run_guarded(lambda: super(_App, self).invoke(ctx))


@click.group(cls=_App, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deploykit")
@click.option("-v", "--verbose", is_flag=True, help="Print the traceback of an unexpected error.")
@click.option("-q", "--quiet", is_flag=True, help="Only results, warnings and errors (no progress or notes).")
def main(verbose: bool, quiet: bool) -> None:
    """deploykit: gait, re-ID and pose models from PyTorch to verified ONNX Runtime / TensorRT.

    \b
    Typical flow:
      deploykit list                      # models and their input shapes
      deploykit export gaitgl --checkpoint GaitGL-80000.pt --out artifacts
      deploykit parity gaitgl --engine artifacts/gaitgl.onnx

    \b
    Exit codes:
      0  ok
      1  a check or gate failed (parity, accuracy, lint)
      2  bad input (a name, file, shape or option; the message says what to do)
      3  a missing extra or backend (the message names the pip install)
      4  an unexpected error, printed as one line (the traceback with -v)
    Errors are one `error:` line on stderr, warnings one `warning:` line.
    """
    _common.configure(verbose=verbose, quiet=quiet)
