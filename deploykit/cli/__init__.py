"""The `deploykit` command line: one module per verb, each a thin call into the library.

Errors are printed as one line (`error: ...`) and exit non-zero: 2 for bad input, 3 for a missing
extra or backend, 1 for anything else deploykit detects.
"""

from __future__ import annotations

from . import (  # noqa: F401  (each module registers its verb on `main`)
    bench_cmd,
    build_cmd,
    check_cmd,
    compare_cmd,
    doctor_cmd,
    evaluate_cmd,
    export_cmd,
    gallery_cmd,
    infer_cmd,
    list_cmd,
    parity_cmd,
    triton_cmd,
)
from ._app import main

__all__ = ["main"]
