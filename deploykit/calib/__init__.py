"""INT8 calibration: data sources, range collection (max / percentile / entropy), Q/DQ models in the
S8S8 (TensorRT) and U8S8 (ONNX Runtime) layouts, TensorRT's calibration cache, and the per-layer
sensitivity sweep. Needs numpy, onnx, onnxruntime and OpenCV; never torch.
"""

from .calibrate import CalibrationResult, QdqFromOnnx
from .qdq import QdqLayout, quantize
from .ranges import CalibMethod, RangeCollector, Ranges, TensorRange
from .sources import SyntheticCalibrationWarning, batches, open_source

__all__ = ["CalibMethod", "CalibrationResult", "QdqFromOnnx", "QdqLayout", "RangeCollector", "Ranges",
           "SyntheticCalibrationWarning", "TensorRange", "batches", "open_source", "quantize"]
