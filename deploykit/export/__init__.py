"""torch -> ONNX export (static shapes), graph patches and the TensorRT lint. Needs the `[export]` extra."""

from .onnx_export import ExportResult, OnnxFromModel

__all__ = ["ExportResult", "OnnxFromModel"]
