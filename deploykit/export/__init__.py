"""torch -> ONNX export (static shapes), graph patches and the TensorRT lint. Needs the `[export]` extra."""

from .onnx_export import ExportResult, OnnxFromModel
from .patch_file import PatchedOnnx, PatchResult

__all__ = ["ExportResult", "OnnxFromModel", "PatchResult", "PatchedOnnx"]
