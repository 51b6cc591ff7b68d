"""Any number of items through an engine: chunks of the engine's batch, padded when it is static.

    >>> from deploykit.runtime import Engine
    >>> from deploykit.runtime.batching import infer_many
    >>> with Engine.load("artifacts/hrnet-w32.onnx") as engine:       # static batch 1, or dynamic 1..8
    ...     out = infer_many(engine, {"images": crops.inputs})        # [N, 3, 256, 192], any N
    ...     out["heatmaps"].shape                                      # (N, 17, 64, 48)

A static engine of batch B gets chunks of exactly B items, the last one padded by repeating its
last item, and the padding's outputs are dropped. A dynamic engine (manifest `dynamic_batch`) gets
chunks of up to its maximum and no padding. Every output is assumed to have the batch on axis 0
(true of every deploykit model).
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional

import numpy as np

from ..errors import BadInputError
from .engine import Engine


def chunk_size(engine: Engine) -> int:
    """Items per engine call: the dynamic maximum, else the static batch."""
    rng = engine.batch_range
    return rng[1] if rng is not None else int(engine.inputs[0].shape[0])


def infer_many(engine: Engine, feeds: Mapping[str, np.ndarray], constant: Optional[Mapping[str, np.ndarray]] = None,
               progress: Optional[Callable[[int, int], None]] = None) -> dict[str, np.ndarray]:
    """Run N items (N >= 0) through `engine`, whatever its batch.

    Args:
        feeds: `{input name: [N, ...]}`; every array the same N.
        constant: inputs fed unchanged to every call (already at the engine's batch); they count
            towards the engine's input names with `feeds`.
        progress: called as `progress(done, total)` after each chunk.

    Returns:
        `{output name: [N, ...]}`; for N == 0 the arrays are empty with the engine's item shape.

    Raises:
        BadInputError: inputs of different N, or a feed that is not an array.
    """
    for k, v in feeds.items():
        if not isinstance(v, np.ndarray):
            raise BadInputError(f"infer_many: feed {k!r} is a {type(v).__name__}; pass [N, ...] numpy arrays")
    sizes = {k: int(v.shape[0]) for k, v in feeds.items()}
    if len(set(sizes.values())) > 1:
        raise BadInputError(f"infer_many: the feeds have different item counts {sizes}; give each input one row "
                            f"per item")
    n = next(iter(sizes.values()), 0)
    if n == 0:
        return {s.name: np.zeros((0, *s.shape[1:]), s.dtype) for s in engine.outputs}
    b = chunk_size(engine)
    static = engine.batch_range is None
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, n, b):
        chunk = {k: v[start:start + b] for k, v in feeds.items()}
        real = min(b, n - start)
        if static and real < b:  # pad by repeating the last item; its outputs are dropped below
            chunk = {k: np.concatenate([v, np.repeat(v[-1:], b - real, 0)], 0) for k, v in chunk.items()}
        out = engine.infer({**{k: np.ascontiguousarray(v) for k, v in chunk.items()}, **(constant or {})})
        for k, v in out.items():
            parts.setdefault(k, []).append(v[:real])
        if progress is not None:
            progress(start + real, n)
    return {k: np.concatenate(v, 0) for k, v in parts.items()}
