"""deploykit: gait, re-ID and pose models from PyTorch to verified ONNX Runtime / TensorRT inference.

Importing the top-level package pulls in nothing heavy; `deploykit.runtime` never imports PyTorch.
"""

__version__ = "0.1.0"
