"""Distance metrics: one object per metric, registered by name (smaller distance = closer).

Each metric turns validated embeddings into a *prepared* form once per gallery and once per query
batch (normalised, part-major, squared norms), computes `pairwise` distances between two prepared
forms, and gives the vectors a FAISS index ranks by. Prepared forms are dicts of arrays whose item
axis is 0, except the part-major keys ("t", "sq", "p"), whose item axis is 1 (see `take`).

* ``euclidean_per_part_mean`` (OpenGait `cuda_dist(metric='euc')`): embeddings `[n, c, p]`; per part
  `sqrt(relu(|x|^2 + |y|^2 - 2 x.y))`, averaged over the p parts. Not the distance of the flattened
  vectors.
* ``cosine_per_part_mean`` (OpenGait `metric='cos'`): per-part L2 normalisation over c, then
  `1 - mean_p(x.y)`.
* ``cosine`` (RGA `eval_worerank`): `1 - normalize(x) . normalize(y)` of flat vectors.
* ``euclidean``: plain L2 of flat vectors.
* ``pgfa`` (PGFA `shared_region_evaluate.py`): `1 - similarity` with
  `similarity = (sum_k s_k + s_g) / (sum_k overlap_k + 1)`, `s_g = (cos(global) + 1) / 2`,
  `s_k = (cos(part_k) + 1) / 2 * overlap_k`, `overlap = query visibility * gallery visibility`.
  Embeddings are dicts `{"global": [n, 256], "parts": [n, P, 2048], "visibility": [n, P]}`.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Union

import numpy as np

from ...errors import BadInputError
from ...records import ALIASES, Metric as MetricName
from ...registry import Registry
from .. import _checks

Embeddings = Union[np.ndarray, Mapping[str, np.ndarray]]
Prepared = dict  # {key: array}, see the module docstring
_EPS = 1e-12  # torch.nn.functional.normalize's eps
_PART_MAJOR = {"t", "sq", "p"}  # prepared keys whose item axis is 1


def l2n(x: np.ndarray, axis: int) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), _EPS)


def mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`a @ b.T` in float64 (exact enough that re-scoring a subset ranks exactly like the full scan)."""
    return a.astype(np.float64, copy=False) @ b.astype(np.float64, copy=False).T


def bmm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-part `a[i] @ b[i].T` for part-major `[p, n, c]` arrays, in float64: `[p, na, nb]`."""
    # einsum's own loop: steadier than many small BLAS calls (thread start-up) on small CPUs
    return np.einsum("pqc,pnc->pqn", a.astype(np.float64, copy=False), b.astype(np.float64, copy=False))


def take(prep: Prepared, idx) -> Prepared:
    """Items `idx` (a slice or an index array) of a prepared form."""
    return {k: (v[:, idx] if k in _PART_MAJOR else v[idx]) for k, v in prep.items()}


def items(prep: Prepared) -> int:
    k, v = next(iter(prep.items()))
    return int(v.shape[1 if k in _PART_MAJOR else 0])


def concat(parts: list[Prepared]) -> Prepared:
    """Prepared forms of consecutive item blocks joined into one."""
    return {k: np.concatenate([p[k] for p in parts], axis=1 if k in _PART_MAJOR else 0) for k in parts[0]}


def count(e: Embeddings) -> int:
    return int(e["global"].shape[0] if isinstance(e, Mapping) else e.shape[0])


def rows(e: Embeddings, idx) -> Embeddings:
    """Rows `idx` of embeddings (an array or a dict of arrays)."""
    return {k: v[idx] for k, v in e.items()} if isinstance(e, Mapping) else e[idx]


def trailing(e: Embeddings) -> Any:
    """The per-item shape(s): what two sets of embeddings must share to be compared."""
    return {k: v.shape[1:] for k, v in e.items()} if isinstance(e, Mapping) else e.shape[1:]


class Metric:
    """A distance between embeddings. Subclasses set `name` and implement the three steps.

    Attributes:
        name: the registry name.
        inner_product: FAISS ranks `faiss_vectors` by inner product (True) or L2 (False).
        faiss_exact: the FAISS order equals this metric's order (no re-scoring margin needed).
    """

    name = ""
    inner_product = False
    faiss_exact = True

    def validate(self, x: Any, name: str, where: str, dtype=np.float64) -> Embeddings:
        """`x` as this metric's embeddings (`dtype`), first dim n; a one-line error otherwise."""
        if isinstance(x, Mapping):
            raise BadInputError(f"{where}: metric {self.name!r} takes an array of embeddings, not a dict")
        a = _checks.array(x, name, ndim=(2, 3), dtype=dtype, where=where)
        if any(d == 0 for d in a.shape[1:]):
            raise BadInputError(f"{where}: {name} has shape {list(a.shape)}; embeddings need a non-zero size")
        return a

    def prepare(self, e: Embeddings, dtype=np.float64) -> Prepared:
        raise NotImplementedError

    def pairwise(self, q: Prepared, g: Prepared) -> np.ndarray:
        """Distances `[nq, ng]` float64 between prepared forms."""
        raise NotImplementedError

    def faiss_vectors(self, prep: Prepared) -> np.ndarray:
        """`[n, d]` float32 vectors whose FAISS order agrees with this metric (exactly if `faiss_exact`)."""
        raise NotImplementedError


class _PerPart(Metric):
    """OpenGait's per-part distances on `[n, c, p]` (a 2-D input is one part)."""

    normalise = False

    def validate(self, x, name, where, dtype=np.float64):
        a = super().validate(x, name, where, dtype)
        return a if a.ndim == 3 else a[:, :, None]

    def prepare(self, e, dtype=np.float64):
        x = np.asarray(e, np.float64)
        x = x if x.ndim == 3 else x[:, :, None]
        if self.normalise:
            x = l2n(x, 1)
        return {"t": np.ascontiguousarray(x.transpose(2, 0, 1), dtype)}  # [p, n, c]

    def faiss_vectors(self, prep):
        t = prep["t"]
        return np.ascontiguousarray(t.transpose(1, 0, 2).reshape(t.shape[1], -1), np.float32)  # parts joined


class EuclideanPerPartMean(_PerPart):
    name = "euclidean_per_part_mean"
    faiss_exact = False  # FAISS ranks by the L2 of the flattened vector, not the mean of per-part L2

    def prepare(self, e, dtype=np.float64):
        out = super().prepare(e, dtype)
        t64 = out["t"].astype(np.float64)
        out["sq"] = np.einsum("pnc,pnc->pn", t64, t64)
        return out

    def pairwise(self, q, g):
        d = q["sq"][:, :, None] + g["sq"][:, None, :] - 2 * bmm(q["t"], g["t"])
        return np.sqrt(np.maximum(d, 0)).mean(axis=0)


class CosinePerPartMean(_PerPart):
    name = "cosine_per_part_mean"
    normalise = True
    inner_product = True  # mean of per-part dot products = dot of the joined normalised parts / p

    def pairwise(self, q, g):
        return 1 - bmm(q["t"], g["t"]).mean(axis=0)


class Cosine(Metric):
    name = "cosine"
    inner_product = True

    def prepare(self, e, dtype=np.float64):
        v = np.asarray(e, np.float64)
        return {"v": l2n(v.reshape(v.shape[0], -1), 1).astype(dtype)}

    def pairwise(self, q, g):
        return 1 - mm(q["v"], g["v"])

    def faiss_vectors(self, prep):
        return np.ascontiguousarray(prep["v"], np.float32)


class Euclidean(Metric):
    name = "euclidean"

    def prepare(self, e, dtype=np.float64):
        x = np.asarray(e)
        v = x.reshape(x.shape[0], -1).astype(dtype)
        v64 = v.astype(np.float64)
        return {"v": v, "vsq": np.einsum("nd,nd->n", v64, v64)}

    def pairwise(self, q, g):
        return np.sqrt(np.maximum(q["vsq"][:, None] + g["vsq"][None, :] - 2 * mm(q["v"], g["v"]), 0))

    def faiss_vectors(self, prep):
        return np.ascontiguousarray(prep["v"], np.float32)


class Pgfa(Metric):
    name = "pgfa"
    fields = ("global", "parts", "visibility")
    inner_product = True
    faiss_exact = False  # FAISS proposes by the global feature's cosine only

    def validate(self, x, name, where, dtype=np.float64):
        if not isinstance(x, Mapping) or set(x) != set(self.fields):
            got = sorted(x) if isinstance(x, Mapping) else type(x).__name__
            raise BadInputError(f"{where}: metric 'pgfa' takes a dict with exactly {list(self.fields)}, got {got}")
        d = {k: _checks.array(x[k], f"{name}[{k!r}]", dtype=dtype, where=where) for k in self.fields}
        n = d["global"].shape[0] if d["global"].ndim else -1
        if (d["global"].ndim != 2 or d["parts"].ndim != 3 or d["visibility"].ndim != 2
                or d["parts"].shape[0] != n or d["visibility"].shape != d["parts"].shape[:2]):
            raise BadInputError(f"{where}: {name} fields have shapes global {list(d['global'].shape)}, parts "
                                f"{list(d['parts'].shape)}, visibility {list(d['visibility'].shape)}; expected "
                                f"[n, C], [n, P, C'] and [n, P]")
        return d

    def prepare(self, e, dtype=np.float64):
        return {"g": l2n(np.asarray(e["global"], np.float64), 1).astype(dtype),
                "p": np.ascontiguousarray(l2n(np.asarray(e["parts"], np.float64), 2).transpose(1, 0, 2), dtype),
                "vis": np.asarray(e["visibility"], np.float64)}

    def pairwise(self, q, g):
        s2 = (mm(q["g"], g["g"]) + 1) / 2
        overlap = q["vis"].T[:, :, None] * g["vis"].T[:, None, :]  # [P, nq, ng]
        sk = ((bmm(q["p"], g["p"]) + 1) / 2 * overlap).sum(axis=0)
        return 1 - (sk + s2) / (overlap.sum(axis=0) + 1)

    def faiss_vectors(self, prep):
        return np.ascontiguousarray(prep["g"], np.float32)


METRIC_REGISTRY: Registry[Metric] = Registry("metric")
# OpenGait's config names and the name schema 1 PGFA manifests recorded (one table: records.ALIASES)
_ALIASES = ALIASES[MetricName]


def register(metric: Metric) -> Metric:
    """Add a metric instance to the registry (a second one of the same name is an error)."""
    return METRIC_REGISTRY.register(metric.name, metric)


for _cls in (EuclideanPerPartMean, CosinePerPartMean, Cosine, Euclidean, Pgfa):
    register(_cls())
METRICS = tuple(m.name for m in METRIC_REGISTRY.values())


def get(name: Any, where: str = "metric") -> Metric:
    """The registered metric called `name` (aliases: "euc", "cos", "pgfa_visibility_weighted")."""
    key = str(name).lower()
    try:
        return METRIC_REGISTRY.get(_ALIASES.get(key, key))
    except BadInputError as exc:
        raise BadInputError(f"{where}: {exc} (metrics: {', '.join(METRICS)})") from None


def canonical(name: Optional[str]) -> Optional[str]:
    """The registry name of `name` (aliases resolved), None for None."""
    return None if name is None else get(name).name
