"""Graph patches for TensorRT: named, tested onnx-graphsurgeon passes and the driver that runs them.

    >>> from deploykit.export import patches
    >>> patches.names()                      # every pass, in pipeline order
    >>> patches.names(default_only=True)     # what `deploykit export` applies
    >>> model, applied = patches.apply_patches(onnx_model, ["gem-fp16", "cleanup"])

Each pass lives in its own module (`focal_fold.py`, ...), whose docstring names the TensorRT
limitation or cost it removes and draws the graph before and after.
"""

from ...errors import require

require("onnx", "export")
require("onnx_graphsurgeon", "export")

from .driver import AppliedPatch, PatchError, apply_patches  # noqa: E402
from .registry import Match, Patch, get, names, register_patch, resolve  # noqa: E402

__all__ = ["AppliedPatch", "Match", "Patch", "PatchError", "apply_patches", "get", "names", "register_patch",
           "resolve"]
