"""Reference vs engine on the same feeds: the one loop parity and the INT8 accuracy report share."""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Iterable, Mapping, Optional

import numpy as np

from ..errors import require

Runner = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class Paired:
    """Outputs of both on the same samples, stacked per output name: `{name: [N, ...]}`."""

    refs: dict
    outs: dict

    @property
    def names(self) -> list[str]:
        return list(self.refs)

    def per_sample(self, which: str) -> list[dict]:
        """`[{name: [1, ...]}]` per sample (what the decoders and matchers take)."""
        d = self.refs if which == "ref" else self.outs
        n = next(iter(d.values())).shape[0]
        return [{k: v[i:i + 1] for k, v in d.items()} for i in range(n)]


def torch_reference(manifest: Mapping, *, checkpoint=None, source: Optional[str | os.PathLike] = None) -> Runner:
    """The PyTorch FP32 model rebuilt from the manifest, as `feeds -> {output name: array}`."""
    torch = require("torch", "export")
    from ..manifest import inputs_of, outputs_of
    from ..models.factory import reference_from_manifest

    model = reference_from_manifest(manifest, checkpoint=checkpoint, source=str(source) if source else "the engine")
    ins, outs = [s.name for s in inputs_of(manifest)], [s.name for s in outputs_of(manifest)]

    def run(feeds: Mapping[str, np.ndarray]) -> dict:
        with torch.no_grad():
            r = model(*[torch.from_numpy(np.ascontiguousarray(feeds[k])) for k in ins])
        r = r if isinstance(r, (tuple, list)) else (r,)
        return {k: v.numpy() for k, v in zip(outs, r)}

    return run


def reference_vs_engine(reference: Runner, engine: Runner, batches: Iterable[Mapping[str, np.ndarray]]) -> Paired:
    """Run both on every batch and stack their outputs along the batch axis."""
    refs: dict[str, list] = {}
    outs: dict[str, list] = {}
    for feeds in batches:
        r, o = reference(feeds), engine(feeds)
        for k in r:
            refs.setdefault(k, []).append(np.asarray(r[k]))
            outs.setdefault(k, []).append(np.asarray(o[k]))
    return Paired({k: np.concatenate(v) for k, v in refs.items()}, {k: np.concatenate(v) for k, v in outs.items()})
