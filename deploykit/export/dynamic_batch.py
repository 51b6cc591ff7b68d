"""Dynamic batch axis for `deploykit export --dynamic-batch MAX`.

Only axis 0 (images, crops, sequences) is made dynamic; every other axis, the gait frame axis
included, stays static. Whether a graph really takes another batch is not known from the model
code (a traced `int(x.shape[0])` bakes the export batch into a Reshape), so the exported file is
run in ONNX Runtime at batch MAX and at batch 1, and item 0 must agree. A graph that fails is
refused with the model named; export it static and let `runtime.batching.infer_many` chunk.

The manifest records `dynamic_batch = {"min": 1, "opt": K, "max": MAX}`; the input and output specs
keep the batch dim at MAX. The TensorRT builder makes its optimization profile from that record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from ..errors import BadInputError, DeploykitError, require
from ..manifest import TensorSpec

BATCH_AXIS = "batch"
# Item 0 of a batch-MAX run against the batch-1 run: the same kernels on the same data differ only
# by the order of float sums inside batched GEMMs, far below this relative bound; a batch baked
# into a Reshape mixes items and gives errors of order 1.
REL_TOL = 1e-3


class DynamicBatchError(DeploykitError):
    """The exported graph does not run at batch sizes other than the export batch."""


def profile(max_batch: int, opt_batch: Optional[int] = None, where: str = "") -> dict[str, int]:
    """The manifest record `{"min": 1, "opt": K, "max": MAX}` (K defaults to MAX)."""
    ctx = f"{where}: " if where else ""
    mx = int(max_batch)
    if mx < 1:
        raise BadInputError(f"{ctx}--dynamic-batch {max_batch} must be >= 1; give the largest batch to serve")
    opt = mx if opt_batch is None else int(opt_batch)
    if not 1 <= opt <= mx:
        raise BadInputError(f"{ctx}--opt-batch {opt_batch} must be within 1..{mx} (the --dynamic-batch maximum)")
    return {"min": 1, "opt": opt, "max": mx}


def dynamic_axes(specs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]) -> dict[str, dict[int, str]]:
    """`torch.onnx.export` dynamic_axes: dim 0 of every input and output."""
    return {s.name: {0: BATCH_AXIS} for s in [*specs, *outputs]}


def verify(path: str | Path, name: str, feeds: Mapping[str, np.ndarray]) -> None:
    """Run `path` at the feeds' batch (MAX) and at batch 1; refuse if item 0 differs or a run fails.

    Raises:
        DynamicBatchError: with the model named and the fix (static export + infer_many).
    """
    ort = require("onnxruntime", "export")
    fix = (f"export {name} without --dynamic-batch (static --batch) and run many items through "
           f"deploykit.runtime.batching.infer_many, which chunks and pads")
    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # the failure is reported in our one line, not ORT's log
    try:
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        full = sess.run(None, dict(feeds))
        one = sess.run(None, {k: np.ascontiguousarray(v[:1]) for k, v in feeds.items()})
    except Exception as exc:
        raise DynamicBatchError(f"{name}: its graph cannot take a dynamic batch (ONNX Runtime fails at another "
                                f"batch: {str(exc).splitlines()[0][:160]}); {fix}") from None
    mx = next(iter(feeds.values())).shape[0]
    for i, (a, b) in enumerate(zip(full, one)):
        if a.shape[:1] != (mx,) or b.shape[:1] != (1,):
            raise DynamicBatchError(f"{name}: output {i} keeps batch {a.shape[:1]} / {b.shape[:1]} instead of "
                                    f"following the input batch; its graph cannot take a dynamic batch; {fix}")
        err = float(np.abs(a[:1].astype(np.float64) - b).max()) if b.size else 0.0
        scale = float(np.abs(b).max()) if b.size else 0.0
        if not err <= REL_TOL * max(scale, 1e-6):
            raise DynamicBatchError(f"{name}: output {i} of item 0 differs between batch {mx} and batch 1 (max "
                                    f"error {err:.3g}, scale {scale:.3g}): the graph mixes batch items, so it "
                                    f"cannot take a dynamic batch; {fix}")
