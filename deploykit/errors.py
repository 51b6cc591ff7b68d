"""Errors raised by deploykit.

Every message is a sentence in three parts: what failed, what was given versus what is allowed,
and what to try. The CLI prints the message on one line and exits non-zero.
"""

from __future__ import annotations


class DeploykitError(Exception):
    """Base class of every error deploykit raises on purpose."""

    exit_code = 1


class BadInputError(DeploykitError, ValueError):
    """The user gave something deploykit cannot use (a name, a shape, a file)."""

    exit_code = 2


class UnknownModelError(BadInputError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return str(self.args[0])


class CheckpointError(BadInputError):
    """A checkpoint that cannot be read or does not fit the model."""


class MissingExtraError(DeploykitError, ImportError):
    """An optional dependency group (extra) is not installed."""

    exit_code = 3


class BackendUnavailable(DeploykitError):
    """An inference backend cannot run on this machine."""

    exit_code = 3


def require(module: str, extra: str):
    """Import `module` or raise a one-line MissingExtraError naming the extra that provides it.

    Args:
        module: importable module name, e.g. "torch".
        extra: the deploykit extra that installs it, e.g. "export".
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"this command needs '{module}', which is not installed ({exc}); "
            f"install the extra with: pip install 'deploykit[{extra}]'"
        ) from None
