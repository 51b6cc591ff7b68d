"""OpenGait gait-recognition models; importing this package registers them."""

from . import gaitgl  # noqa: F401
