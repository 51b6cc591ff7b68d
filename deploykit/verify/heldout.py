"""The held-out feeds every accuracy check uses, from one function.

Held out means: generator seeds the calibration never uses (it starts at 0 and draws far fewer
than 1000 samples from its own stream), through the runtime's preprocessing. Today the samples come
from `calib.sources.SyntheticSource` (or the model's own realistic generator, e.g. GaitEdge's
masks and box ratios), which has no identities: `labels` is then None and the task gates use
pseudo-identities (see `task_metrics`). An `.npz` with one array per input and an optional
`labels` array (identity per sample) gives labelled held-out data.

A proxy model (`scripts/train_proxy.py`: its manifest's `weights.proxy` names the task) is judged
on its own family's labelled synthetic task instead (`PROXY_HELDOUT`): walkers with identities
(gait), persons with identities from two cameras (re-ID), rendered figures with their true COCO
keypoints (pose), other identities than training (seed 1000, ids from 1000).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from ..errors import BadInputError

HELDOUT_SEED = 1000


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """Held-out feeds in the engine's static batch.

    Attributes:
        batches: `{input name: [batch, ...]}` per engine call.
        labels: `[n]` identity per sample, or None.
        source: one line saying where the samples came from.
    """

    batches: tuple
    labels: Optional[np.ndarray]
    source: str
    keypoints: Optional[np.ndarray] = None  # pose proxies: true joints [n, 17, 2] in input pixels

    @property
    def n(self) -> int:
        return sum(next(iter(b.values())).shape[0] for b in self.batches)


def heldout_feeds(manifest: Mapping, n: int, seed: int = HELDOUT_SEED, *,
                  data: Optional[str | os.PathLike] = None) -> HeldOut:
    """`n` held-out samples for the model of `manifest` (rounded down to whole engine batches).

    Args:
        manifest: the engine's manifest (input specs, family, preprocess).
        n: number of samples.
        seed: generator seed; default 1000.
        data: an `.npz`/`.npy` of preprocessed inputs (an `.npz` may hold `labels`); default synthetic.
    """
    from ..calib import sources
    from ..manifest import inputs_of

    if data is not None:
        src = sources.ArraySource(data, manifest)
        batches = tuple(sources.batches(src, n, progress=False))
        labels = _labels(Path(data), sum(b[src.primary.name].shape[0] for b in batches))
        return HeldOut(batches, labels, src.describe())
    task = ((manifest.get("weights") or {}).get("proxy") or {}).get("task")
    if task is not None:
        return _proxy_feeds(manifest, task, n, seed)
    from ..models.registry import spec as get_spec

    spec = get_spec(manifest["model"]["name"])
    specs = inputs_of(manifest)
    if spec.sample_fn is not None:  # the model's own realistic inputs (SyntheticSource would not fit them)
        batch = specs[0].shape[0]
        batches = tuple(spec.sample_inputs(specs, seed=seed + i) for i in range(max(1, int(n) // batch)))
        return HeldOut(batches, None, f"{spec.name} sample generator (seeds {seed}..)")
    src = sources.SyntheticSource(manifest, seed=seed, warn=False)
    return HeldOut(tuple(sources.batches(src, n, progress=False)), None, src.describe())


# samples per identity of each proxy task's held-out set: gait one per condition (nm, bg, cl), re-ID two
# per camera; every sample then has same-identity neighbours for rank-1 / mAP
PROXY_HELDOUT = {"deploykit.synth.walkers": 3, "deploykit.synth.reid_persons": 4, "deploykit.synth.pose_figures": 1}


def _proxy_feeds(manifest: Mapping, task: str, n: int, seed: int) -> HeldOut:
    """`n` labelled samples of a proxy's synthetic task (rounded down to whole identities and batches)."""
    from ..manifest import inputs_of
    from .. import synth

    if task not in PROXY_HELDOUT:
        raise BadInputError(f"the manifest names proxy task {task!r}, which deploykit does not know; known: "
                            f"{sorted(PROXY_HELDOUT)}; re-export with a checkpoint from scripts/train_proxy.py")
    spec = inputs_of(manifest)[0]
    batch, per_id = spec.shape[0], PROXY_HELDOUT[task]
    ids_n = max(1, int(n) // per_id)
    keypoints = None
    if task == "deploykit.synth.walkers":
        x, ids, _, _ = synth.walkers(ids_n, per_id, spec.shape[1], seed=seed, size=tuple(spec.shape[2:]),
                                     first_id=1000)
    elif task == "deploykit.synth.reid_persons":
        x, ids, _ = synth.reid_persons(ids_n, per_id, seed=seed, preprocess=manifest["preprocess"], first_id=1000)
    else:
        x, keypoints, _ = synth.pose_figures(ids_n, seed=seed, preprocess=manifest["preprocess"])
        ids = None
    k = (len(x) // batch) * batch
    if k == 0:
        raise BadInputError(f"{n} held-out samples are fewer than one engine batch ({batch}); give --samples {batch} "
                            f"or more")
    batches = tuple({spec.name: x[i:i + batch]} for i in range(0, k, batch))
    return HeldOut(batches, None if ids is None else ids[:k], f"{task} (proxy's own task, seed {seed}, "
                   f"{ids_n} {'figures' if ids is None else f'identities x {per_id}'})",
                   None if keypoints is None else keypoints[:k])


def _labels(path: Path, n: int) -> Optional[np.ndarray]:
    if path.suffix.lower() != ".npz":
        return None
    with np.load(path, allow_pickle=False) as z:
        if "labels" not in z.files:
            return None
        labels = np.asarray(z["labels"]).ravel()
    if labels.shape[0] < n:
        raise BadInputError(f"{path}: 'labels' has {labels.shape[0]} entries for {n} samples; give one identity "
                            f"per sample")
    return labels[:n]
