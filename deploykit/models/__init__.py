"""PyTorch reference implementations and their registry (needs the `[export]` extra: torch).

    >>> from deploykit import models
    >>> models.names()                       # every registered model
    >>> models.spec("gaitgl").input_specs()  # static input shapes
    >>> net = models.build("gaitgl")         # nn.Module in eval mode
"""

from ..errors import require as _require

_require("torch", "export")

from .registry import ModelSpec, InputTemplate, OutputTemplate, build, names, register_model, resolve_config, spec  # noqa: E402
from . import gait, reid, pose  # noqa: E402,F401  (registers the models)

__all__ = ["ModelSpec", "InputTemplate", "OutputTemplate", "build", "names", "register_model",
           "resolve_config", "spec"]
