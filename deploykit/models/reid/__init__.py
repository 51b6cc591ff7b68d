"""reid models, one file per method; importing this package registers every module in it."""

from .._discover import import_all

import_all(__name__, __path__)
