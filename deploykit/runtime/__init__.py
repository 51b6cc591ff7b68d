"""The thin runtime: engines behind one interface, plus pre/post-processing. Never imports torch.

    >>> from deploykit.runtime import Engine
    >>> with Engine.load("artifacts/gaitgl.onnx") as engine:
    ...     out = engine.infer({"sils": clip})      # dict of numpy arrays
"""

from .engine import Engine, backends

__all__ = ["Engine", "backends"]
