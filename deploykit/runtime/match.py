"""Embedding matching: each method's distance, CMC/mAP evaluation, and galleries that persist.

Distances (smaller is closer), as each upstream evaluates:

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

`evaluate` gives CMC and mAP with the usual exclusions; `evaluate_casia_b` is OpenGait's CASIA-B /
OU-MVLP protocol. `Gallery` keeps embeddings with their identities and cameras, searches them and
saves atomically to one `.npz`; `FaissGallery` (extra `[faiss]`) lets FAISS propose candidates and
re-scores them with the exact metric.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from .. import atomic
from ..errors import BadInputError, require
from . import _checks

Embeddings = Union[np.ndarray, Mapping[str, np.ndarray]]
_EPS = 1e-12  # torch.nn.functional.normalize's eps


# -- distances -----------------------------------------------------------------------------------
# Each metric works on a "prepared" form of the embeddings (normalised, part-major, squared norms),
# built once per gallery and once per query batch. Keys hold the item axis at 0, except the
# part-major ones ("t", "sq", "p") which hold it at 1.
_ITEM_AXIS = {"t": 1, "sq": 1, "p": 1}


def _l2n(x: np.ndarray, axis: int) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), _EPS)


def _flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


def _prepare(metric: str, e: Embeddings, dtype=np.float64) -> dict[str, np.ndarray]:
    """The metric's prepared form of validated embeddings (computed in float64, stored as `dtype`)."""
    if metric == "pgfa":
        return {"g": _l2n(np.asarray(e["global"], np.float64), 1).astype(dtype),
                "p": np.ascontiguousarray(_l2n(np.asarray(e["parts"], np.float64), 2).transpose(1, 0, 2), dtype),
                "vis": np.asarray(e["visibility"], np.float64)}
    x = np.asarray(e, np.float64)
    if metric in ("euclidean_per_part_mean", "cosine_per_part_mean"):
        x = x if x.ndim == 3 else x[:, :, None]
        if metric == "cosine_per_part_mean":
            x = _l2n(x, 1)
        t = np.ascontiguousarray(x.transpose(2, 0, 1), dtype)  # [p, n, c]
        out = {"t": t}
        if metric == "euclidean_per_part_mean":
            t64 = t.astype(np.float64)
            out["sq"] = np.einsum("pnc,pnc->pn", t64, t64)
        return out
    v = _flat(x)
    if metric == "cosine":
        return {"v": _l2n(v, 1).astype(dtype)}
    v = v.astype(dtype)
    v64 = v.astype(np.float64)
    return {"v": v, "vsq": np.einsum("nd,nd->n", v64, v64)}


def _take(prep: Mapping[str, np.ndarray], idx) -> dict[str, np.ndarray]:
    """Items `idx` (a slice or an index array) of a prepared form."""
    return {k: (v[:, idx] if _ITEM_AXIS.get(k, 0) == 1 else v[idx]) for k, v in prep.items()}


def _items(prep: Mapping[str, np.ndarray]) -> int:
    k, v = next(iter(prep.items()))
    return int(v.shape[_ITEM_AXIS.get(k, 0)])


def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`a @ b.T` in float64 (exact enough that re-scoring a subset ranks exactly like the full scan)."""
    return a.astype(np.float64, copy=False) @ b.astype(np.float64, copy=False).T


def _bmm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-part `a[i] @ b[i].T` for part-major `[p, n, c]` arrays, in float64: `[p, na, nb]`."""
    # einsum's own loop: steadier than many small BLAS calls (thread start-up) on small CPUs
    return np.einsum("pqc,pnc->pqn", a.astype(np.float64, copy=False), b.astype(np.float64, copy=False))


def _pdist(metric: str, q: Mapping[str, np.ndarray], g: Mapping[str, np.ndarray]) -> np.ndarray:
    """Distances `[nq, ng]` (float64) between prepared forms."""
    if metric == "euclidean_per_part_mean":  # OpenGait cuda_dist 'euc': per part, then the mean
        d = q["sq"][:, :, None] + g["sq"][:, None, :] - 2 * _bmm(q["t"], g["t"])
        return np.sqrt(np.maximum(d, 0)).mean(axis=0)
    if metric == "cosine_per_part_mean":  # OpenGait 'cos'
        return 1 - _bmm(q["t"], g["t"]).mean(axis=0)
    if metric == "cosine":  # RGA
        return 1 - _mm(q["v"], g["v"])
    if metric == "euclidean":
        return np.sqrt(np.maximum(q["vsq"][:, None] + g["vsq"][None, :] - 2 * _mm(q["v"], g["v"]), 0))
    # PGFA shared_region_evaluate
    s2 = (_mm(q["g"], g["g"]) + 1) / 2
    overlap = q["vis"].T[:, :, None] * g["vis"].T[:, None, :]  # [P, nq, ng]
    sk = ((_bmm(q["p"], g["p"]) + 1) / 2 * overlap).sum(axis=0)
    return 1 - (sk + s2) / (overlap.sum(axis=0) + 1)


_FIELDS: dict[str, Optional[tuple[str, ...]]] = {
    "euclidean_per_part_mean": None, "cosine_per_part_mean": None, "cosine": None, "euclidean": None,
    "pgfa": ("global", "parts", "visibility"),
}
METRICS = tuple(_FIELDS)
_ALIASES = {"euc": "euclidean_per_part_mean", "cos": "cosine_per_part_mean", "pgfa_visibility_weighted": "pgfa"}


def _metric(name: str, where: str) -> str:
    return _checks.choice(_ALIASES.get(str(name).lower(), name), "metric", METRICS, where)


def _embeddings(x: Any, metric: str, name: str, where: str, dtype=np.float64) -> Embeddings:
    """Validate embeddings for `metric`: a `dtype` array (or dict of arrays for pgfa), first dim n."""
    fields = _FIELDS[metric]
    if fields is None:
        if isinstance(x, Mapping):
            raise BadInputError(f"{where}: metric {metric!r} takes an array of embeddings, not a dict")
        a = _checks.array(x, name, ndim=(2, 3), dtype=dtype, where=where)
        if any(d == 0 for d in a.shape[1:]):
            raise BadInputError(f"{where}: {name} has shape {list(a.shape)}; embeddings need a non-zero size")
        if metric.endswith("per_part_mean") and a.ndim == 2:
            a = a[:, :, None]
        return a
    if not isinstance(x, Mapping) or set(x) != set(fields):
        got = sorted(x) if isinstance(x, Mapping) else type(x).__name__
        raise BadInputError(f"{where}: metric {metric!r} takes a dict with exactly {list(fields)}, got {got}")
    d = {k: _checks.array(x[k], f"{name}[{k!r}]", dtype=dtype, where=where) for k in fields}
    n = d["global"].shape[0] if d["global"].ndim else -1
    if (d["global"].ndim != 2 or d["parts"].ndim != 3 or d["visibility"].ndim != 2
            or d["parts"].shape[0] != n or d["visibility"].shape != d["parts"].shape[:2]):
        raise BadInputError(f"{where}: {name} fields have shapes global {list(d['global'].shape)}, parts "
                            f"{list(d['parts'].shape)}, visibility {list(d['visibility'].shape)}; expected "
                            f"[n, C], [n, P, C'] and [n, P]")
    return d


def _count(e: Embeddings) -> int:
    return int(e["global"].shape[0] if isinstance(e, Mapping) else e.shape[0])


def _rows(e: Embeddings, idx) -> Embeddings:
    """Rows `idx` of embeddings (an array or a dict of arrays)."""
    return {k: v[idx] for k, v in e.items()} if isinstance(e, Mapping) else e[idx]


def _trailing(e: Embeddings) -> Any:
    return {k: v.shape[1:] for k, v in e.items()} if isinstance(e, Mapping) else e.shape[1:]


def distance(query: Embeddings, gallery: Embeddings, metric: str = "euclidean_per_part_mean") -> np.ndarray:
    """Distance matrix `[n_query, n_gallery]` (float64) under one of `METRICS` ("euc"/"cos" = OpenGait's)."""
    where = "distance"
    m = _metric(metric, where)
    q = _embeddings(query, m, "query", where)
    g = _embeddings(gallery, m, "gallery", where)
    if _trailing(q) != _trailing(g):
        raise BadInputError(f"{where}: query embeddings {_trailing(q)} and gallery embeddings {_trailing(g)} "
                            f"have different shapes")
    if _count(q) == 0 or _count(g) == 0:
        return np.zeros((_count(q), _count(g)))
    return _pdist(m, _prepare(m, q), _prepare(m, g))


def pgfa_embeddings(outputs: Mapping[str, np.ndarray], visibility: Any) -> dict[str, np.ndarray]:
    """The pgfa metric's embedding dict from a PGFA engine's outputs and `reid.pgfa_part_visibility` labels.

    Args:
        outputs: `{"global_feat": [n, 256], "part_feats": [n, P, 2048]}` (the engine's outputs).
        visibility: `[n, P]` (or `[P]` for one image) 0/1 part labels.
    """
    where = "pgfa_embeddings"
    try:
        glob, parts = outputs["global_feat"], outputs["part_feats"]
    except KeyError as exc:
        raise BadInputError(f"{where}: outputs lack {exc}; expected PGFA's 'global_feat' and 'part_feats'") from None
    vis = _checks.array(visibility, "visibility", ndim=(1, 2), dtype=np.float64, where=where)
    emb = {"global": glob, "parts": parts, "visibility": vis[None] if vis.ndim == 1 else vis}
    return _embeddings(emb, "pgfa", "outputs", where)


def pgfa_similarity(query: Mapping[str, np.ndarray], gallery: Mapping[str, np.ndarray]) -> np.ndarray:
    """PGFA's visibility-weighted similarity `[n_query, n_gallery]` in [0, 1] (larger is closer)."""
    return 1 - distance(query, gallery, "pgfa")


# -- evaluation ----------------------------------------------------------------------------------
def _labels(x: Any, n: int, name: str, where: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1 or a.shape[0] != n:
        raise BadInputError(f"{where}: {name} has shape {list(a.shape)}; expected [{n}] (one per row/column of dist)")
    return a


def _average_precision(hits: np.ndarray, kind: str) -> float:
    ranks = np.flatnonzero(hits) + 1.0  # 1-based positions of the true matches
    i = np.arange(1, ranks.size + 1)
    precision = i / ranks
    if kind == "standard":
        return float(precision.mean())
    old = np.where(ranks > 1, (i - 1) / np.maximum(ranks - 1, 1), 1.0)  # Market-1501 / PGFA trapezoid
    return float(((old + precision) / 2).mean())


def evaluate(dist: Any, query_ids: Any, gallery_ids: Any, query_cams: Any = None, gallery_cams: Any = None, *,
             max_rank: Optional[int] = None, ap: str = "standard",
             junk_ids: Optional[Sequence[Any]] = None) -> dict[str, Any]:
    """CMC and mAP of a distance matrix.

    For each query the gallery is ranked by ascending distance (ties keep gallery order). Gallery
    items with the query's identity *and* camera are excluded (the re-ID protocol; pass views as
    cameras for OpenGait's `compute_ACC_mAP`, which excludes same-identity same-view items), as are
    items whose identity is in `junk_ids` (PGFA/Market: -1). Queries with no remaining true match
    are skipped.

    Args:
        dist: `[n_query, n_gallery]` distances (finite).
        query_ids, gallery_ids: identities (ints or strings).
        query_cams, gallery_cams: cameras (or views); both None = no camera exclusion.
        max_rank: length of the CMC curve; default n_gallery.
        ap: "standard" (mean precision at each hit; torchreid, OpenGait) or "trapezoid"
            (Market-1501 code and PGFA: mean of the precisions before and at each hit).
        junk_ids: gallery identities to ignore.

    Returns:
        `{"cmc": float64 [max_rank], "mAP": float, "num_valid_queries": int}`; cmc[0] is rank-1.
    """
    where = "evaluate"
    d = _checks.array(dist, "dist", ndim=2, dtype=np.float64, where=where)
    nq, ng = d.shape
    qid = _labels(query_ids, nq, "query_ids", where)
    gid = _labels(gallery_ids, ng, "gallery_ids", where)
    if (query_cams is None) != (gallery_cams is None):
        raise BadInputError(f"{where}: give both query_cams and gallery_cams, or neither")
    use_cams = query_cams is not None
    qc = _labels(query_cams, nq, "query_cams", where) if use_cams else None
    gc = _labels(gallery_cams, ng, "gallery_cams", where) if use_cams else None
    kind = _checks.choice(ap, "ap", ("standard", "trapezoid"), where)
    length = ng if max_rank is None else int(max_rank)
    if length < 1:
        raise BadInputError(f"{where}: max_rank must be >= 1, got {max_rank}")
    junk = np.isin(gid, np.asarray(list(junk_ids))) if junk_ids is not None and len(junk_ids) else np.zeros(ng, bool)
    cmc_sum = np.zeros(length)
    aps = []
    for i in range(nq):
        order = np.argsort(d[i], kind="stable")
        keep = ~junk
        if use_cams:
            keep &= ~((gid == qid[i]) & (gc == qc[i]))
        order = order[keep[order]]
        hits = gid[order] == qid[i]
        if not hits.any():
            continue
        first = int(np.argmax(hits))
        if first < length:
            cmc_sum[first:] += 1
        aps.append(_average_precision(hits, kind))
    if not aps:
        raise BadInputError(f"{where}: no query has a true match in the gallery (after excluding same identity "
                            f"and camera); check that query and gallery identities overlap")
    return {"cmc": cmc_sum / len(aps), "mAP": float(np.mean(aps)), "num_valid_queries": len(aps)}


# OpenGait evaluator.py: probe/gallery sequence types per dataset
_SINGLE_VIEW = {"CASIA-B": ({"NM": ["nm-05", "nm-06"], "BG": ["bg-01", "bg-02"], "CL": ["cl-01", "cl-02"]},
                            ["nm-01", "nm-02", "nm-03", "nm-04"]),
                "OUMVLP": ({"NM": ["00"]}, ["01"])}
_CROSS_VIEW = {"CASIA-B": ({"NM": ["nm-01"], "BG": ["bg-01"], "CL": ["cl-01"]}, ["nm-02", "bg-02", "cl-02"]),
               "OUMVLP": ({"NM": ["00"]}, ["01"])}


def de_diag(acc: np.ndarray, each_angle: bool = False):
    """OpenGait `de_diag`: mean of each row without its diagonal (identical-view) entry."""
    a = np.asarray(acc, np.float64)
    result = (a - np.diag(np.diag(a))).sum(1) / (a.shape[1] - 1.0)
    return result if each_angle else float(np.mean(result))


def evaluate_casia_b(embeddings: Any, labels: Any, seq_types: Any, views: Any, *,
                     metric: str = "euclidean_per_part_mean", dataset: str = "CASIA-B",
                     cross_view_gallery: bool = False) -> dict[str, Any]:
    """OpenGait `evaluate_indoor_dataset` (CASIA-B / OU-MVLP).

    Default (`cross_view_gallery=False`, upstream's default): for each condition (NM = nm-05/06, BG,
    CL probes against the nm-01..04 gallery on CASIA-B) and each (probe view, gallery view) pair,
    rank-1 accuracy with the gallery restricted to that view (percent, rounded to 2 decimals as
    upstream); identical-view cells are then excluded (`de_diag`) and the rest averaged.
    `cross_view_gallery=True`: rank-1 and mAP with all-view galleries, excluding same-identity
    same-view gallery items (`compute_ACC_mAP`); rank-1 counts every probe, mAP the probes that
    have a match.

    Returns:
        `{condition: {"per_view": [V], "mean": float, "acc": [V, V]}}` (single-view) or
        `{condition: {"rank1": [V], "mAP": [V], "rank1_mean": float, "mAP_mean": float}}`.
    """
    where = "evaluate_casia_b"
    m = _metric(metric, where)
    ds = _checks.choice(dataset, "dataset", ("casia-b", "oumvlp"), where)
    ds = "CASIA-B" if ds == "casia-b" else "OUMVLP"
    x = _embeddings(embeddings, m, "embeddings", where)
    n = _count(x)
    lab = _labels(labels, n, "labels", where)
    typ = _labels(seq_types, n, "seq_types", where)
    view = _labels(views, n, "views", where)
    view_list = sorted(np.unique(view))
    out: dict[str, Any] = {}
    if not cross_view_gallery:
        probes, gallery_types = _SINGLE_VIEW[ds]
        for cond, probe_types in probes.items():
            acc = np.full((len(view_list), len(view_list)), -1.0)
            for v1, pv in enumerate(view_list):
                pmask = np.isin(typ, probe_types) & (view == pv)
                for v2, gv in enumerate(view_list):
                    gmask = np.isin(typ, gallery_types) & (view == gv)
                    if not pmask.any():
                        acc[v1, v2] = np.nan
                        continue
                    if not gmask.any():
                        acc[v1, v2] = 0.0
                        continue
                    d = distance(_rows(x, pmask), _rows(x, gmask), m)
                    best = np.argmin(d, axis=1)  # first minimum = stable rank 1
                    acc[v1, v2] = np.round(np.sum(lab[pmask] == lab[gmask][best]) * 100 / d.shape[0], 2)
            per_view = de_diag(acc, each_angle=True) if len(view_list) > 1 else acc[:, 0]
            out[cond] = {"per_view": per_view, "mean": float(np.mean(per_view)), "acc": acc}
        return out
    probes, gallery_types = _CROSS_VIEW[ds]
    gmask = np.isin(typ, gallery_types)
    for cond, probe_types in probes.items():
        r1 = np.full(len(view_list), -1.0)
        mp = np.full(len(view_list), -1.0)
        for v1, pv in enumerate(view_list):
            pmask = np.isin(typ, probe_types) & (view == pv)
            if not pmask.any() or not gmask.any():
                r1[v1] = mp[v1] = np.nan
                continue
            d = distance(_rows(x, pmask), _rows(x, gmask), m)
            res = _acc_map(d, lab[pmask], lab[gmask], view[pmask], view[gmask])
            r1[v1], mp[v1] = np.round(res[0] * 100, 2), np.round(res[1] * 100, 2)
        out[cond] = {"rank1": r1, "mAP": mp, "rank1_mean": float(np.mean(r1)), "mAP_mean": float(np.mean(mp))}
    return out


def _acc_map(d: np.ndarray, qp: np.ndarray, gp: np.ndarray, qv: np.ndarray, gv: np.ndarray) -> tuple[float, float]:
    """OpenGait `compute_ACC_mAP` (rank 1): ACC over all probes, mAP over probes with a match."""
    accs, aps = [], []
    for i in range(d.shape[0]):
        keep = (gv != qv[i]) | (gp != qp[i])
        if not keep.any():
            raise BadInputError("evaluate_casia_b: no gallery left after excluding identical-view cases")
        order = np.argsort(d[i][keep], kind="stable")
        hits = gp[keep][order] == qp[i]
        accs.append(float(hits[0]))
        if hits.any():
            aps.append(_average_precision(hits, "standard"))
    return float(np.mean(accs)), float(np.mean(aps)) if aps else float("nan")


# -- galleries -----------------------------------------------------------------------------------
class SearchResult:
    """Top-k neighbours of each query: `indices`, `distances`, `ids`, `cams` (each `[n_query, k]`)."""

    def __init__(self, indices: np.ndarray, distances: np.ndarray, ids: np.ndarray, cams: Optional[np.ndarray]):
        self.indices, self.distances, self.ids, self.cams = indices, distances, ids, cams

    def to_json(self) -> list[list[dict[str, Any]]]:
        out = []
        for r in range(self.indices.shape[0]):
            row = []
            for c in range(self.indices.shape[1]):
                item = {"index": int(self.indices[r, c]), "distance": float(self.distances[r, c]),
                        "id": self.ids[r, c].item()}
                if self.cams is not None:
                    item["cam"] = self.cams[r, c].item()
                row.append(item)
            out.append(row)
        return out


def _label_array(values: Any, n: int, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim == 0:
        a = np.full(n, a.item())
    if a.ndim != 1 or a.shape[0] != n:
        raise BadInputError(f"Gallery.add: {name} has shape {list(a.shape)}; expected [{n}]")
    if a.dtype.kind in "iub":
        return a.astype(np.int64)
    if a.dtype.kind in "US":
        return a.astype(str)
    if a.dtype.kind == "f" and np.isfinite(a).all() and (a == np.round(a)).all():
        return a.astype(np.int64)
    raise BadInputError(f"Gallery.add: {name} must be ints or strings, got dtype {a.dtype}")


def _concat_labels(a: Optional[np.ndarray], b: np.ndarray) -> np.ndarray:
    if a is None or a.size == 0:
        return b
    if a.dtype.kind != b.dtype.kind:  # mixing ints and strings: keep everything as strings
        return np.concatenate([a.astype(str), b.astype(str)])
    return np.concatenate([a, b])


class Gallery:
    """Embeddings with identities (and cameras), searchable with the method's exact metric.

        >>> g = Gallery("euclidean_per_part_mean")
        >>> g.add(embeddings, ids=[3, 3, 7], cams=[1, 2, 1])
        >>> g.search(query_embeddings, k=5).ids       # [n_query, 5]
        >>> g.save("gallery.npz"); Gallery.load("gallery.npz")

    Embeddings are stored as float32. Searches use a prepared float32 copy (normalised / part-major,
    built on the first search after an add; memory about twice the embeddings) and compute distances
    in float64 a block of the gallery at a time.
    """

    kind = "exact"
    CHUNK = 16384  # most items per block; fewer for large embeddings (about 64 MB of float64 per block)

    def __init__(self, metric: str = "euclidean_per_part_mean") -> None:
        self.metric = _metric(metric, "Gallery")
        self._emb: Optional[Embeddings] = None
        self._prep: Optional[dict[str, np.ndarray]] = None
        self.ids: np.ndarray = np.zeros(0, np.int64)
        self.cams: Optional[np.ndarray] = None

    # -- content ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return 0 if self._emb is None else _count(self._emb)

    @property
    def embeddings(self) -> Optional[Embeddings]:
        return self._emb

    def add(self, embeddings: Embeddings, ids: Any, cams: Any = None) -> None:
        """Append embeddings (`[n, ...]`, or a dict for pgfa) with their ids (and cams, all or none)."""
        e32 = _embeddings(embeddings, self.metric, "embeddings", "Gallery.add", dtype=np.float32)
        n = _count(e32)
        new_ids = _label_array(ids, n, "ids")
        if len(self) and cams is None and self.cams is not None:
            raise BadInputError("Gallery.add: this gallery has cameras; pass cams for the new embeddings too")
        if len(self) and cams is not None and self.cams is None:
            raise BadInputError("Gallery.add: this gallery has no cameras; add without cams (or start a new one)")
        new_cams = None if cams is None else _label_array(cams, n, "cams")
        if self._emb is None:
            self._emb = e32
        else:
            if _trailing(self._emb) != _trailing(e32):
                raise BadInputError(f"Gallery.add: embeddings of shape {_trailing(e32)} do not match the gallery's "
                                    f"{_trailing(self._emb)}")
            self._emb = ({k: np.concatenate([self._emb[k], e32[k]]) for k in e32} if isinstance(e32, Mapping)
                         else np.concatenate([self._emb, e32]))
        self.ids = _concat_labels(self.ids, new_ids)
        self.cams = new_cams if self.cams is None else _concat_labels(self.cams, new_cams)
        self._prep = None
        self._added(e32)

    def _added(self, e32: Embeddings) -> None:
        """Hook for subclasses (index maintenance)."""

    # -- search ----------------------------------------------------------------------------------
    def _block(self) -> int:
        """Gallery items per distance block: CHUNK, or fewer so a block is about 64 MB of float64."""
        per_item = (sum(int(np.prod(v.shape[1:])) for v in self._emb.values()) if isinstance(self._emb, Mapping)
                    else int(np.prod(self._emb.shape[1:])))
        return max(1, min(self.CHUNK, (1 << 23) // max(per_item, 1)))

    def _prepared(self) -> dict[str, np.ndarray]:
        if self._prep is None:
            n, b = len(self), self._block()
            parts = [_prepare(self.metric, _rows(self._emb, slice(s, min(s + b, n))), np.float32)
                     for s in range(0, n, b)]
            self._prep = {k: np.concatenate([p[k] for p in parts], axis=_ITEM_AXIS.get(k, 0)) for k in parts[0]}
        return self._prep

    def _query(self, queries: Embeddings, where: str) -> dict[str, np.ndarray]:
        if not len(self):
            raise BadInputError(f"{where}: the gallery is empty; add embeddings first")
        q = _embeddings(queries, self.metric, "queries", where)
        if _trailing(q) != _trailing(self._emb):
            raise BadInputError(f"{where}: query embeddings {_trailing(q)} do not match the gallery's "
                                f"{_trailing(self._emb)}")
        return _prepare(self.metric, q, np.float32)

    def distances(self, queries: Embeddings) -> np.ndarray:
        """Distances `[n_query, len(gallery)]` under the gallery's metric."""
        q = self._query(queries, "Gallery.distances")
        g, n, b = self._prepared(), len(self), self._block()
        return np.concatenate([_pdist(self.metric, q, _take(g, slice(s, min(s + b, n))))
                               for s in range(0, n, b)], axis=1)

    def search(self, queries: Embeddings, k: int = 10) -> SearchResult:
        """The `k` nearest gallery items of each query, by the metric (ties: lower index first)."""
        q = self._query(queries, "Gallery.search")
        k = self._k(k)
        g, nq, n, b = self._prepared(), _items(q), len(self), self._block()
        best_d = np.zeros((nq, 0))
        best_i = np.zeros((nq, 0), np.int64)
        for s in range(0, n, b):
            d = _pdist(self.metric, q, _take(g, slice(s, min(s + b, n))))
            best_d = np.concatenate([best_d, d], axis=1)
            best_i = np.concatenate([best_i, np.broadcast_to(np.arange(s, s + d.shape[1]), d.shape)], axis=1)
            best_d, best_i = _topk(best_d, best_i, k)
        return self._result(best_i, best_d)

    def evaluate(self, queries: Embeddings, query_ids: Any, query_cams: Any = None, **kwargs) -> dict[str, Any]:
        """`evaluate(self.distances(queries), query_ids, self.ids, query_cams, self.cams, **kwargs)`."""
        if (query_cams is None) != (self.cams is None):
            raise BadInputError("Gallery.evaluate: give query_cams exactly when the gallery has cameras")
        return evaluate(self.distances(queries), query_ids, self.ids, query_cams, self.cams, **kwargs)

    def _k(self, k: int) -> int:
        k = int(k)
        if k < 1:
            raise BadInputError(f"search: k must be >= 1, got {k}")
        return min(k, len(self))

    def _result(self, idx: np.ndarray, dist: np.ndarray) -> SearchResult:
        return SearchResult(idx, dist, self.ids[idx], None if self.cams is None else self.cams[idx])

    # -- persistence -----------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {"format": "deploykit-gallery", "version": 1, "kind": self.kind, "metric": self.metric,
                "count": len(self)}

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write the gallery to one `.npz` atomically (temp file, fsync, rename)."""
        p = Path(path)
        arrays: dict[str, np.ndarray] = {"ids": self.ids}
        if self.cams is not None:
            arrays["cams"] = self.cams
        if isinstance(self._emb, Mapping):
            arrays.update({f"emb__{k}": v for k, v in self._emb.items()})
        elif self._emb is not None:
            arrays["emb"] = self._emb
        arrays.update(self._extra_arrays())
        arrays["meta"] = np.array(json.dumps(self._meta()))
        with atomic.atomic_path(p) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        return p

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Gallery":
        """Read a gallery written by `save` (a FaissGallery file comes back as a FaissGallery)."""
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise BadInputError(f"gallery {p} does not exist") from None
        except Exception as exc:
            raise BadInputError(f"gallery {p} cannot be read ({exc}); it is not a deploykit gallery .npz") from None
        try:
            meta = json.loads(str(data.pop("meta")))
        except Exception:
            meta = {}
        if meta.get("format") != "deploykit-gallery":
            raise BadInputError(f"gallery {p} is not a deploykit gallery (no gallery metadata)")
        if meta.get("version", 0) > 1:
            raise BadInputError(f"gallery {p} has format version {meta['version']}; upgrade deploykit")
        target = FaissGallery if meta.get("kind") == "faiss" else Gallery
        g = target._from_meta(meta)
        fields = {k[5:]: v for k, v in data.items() if k.startswith("emb__")}
        emb = fields or data.get("emb")
        if emb is not None and _count(emb):
            g._emb = emb
            g.ids = data["ids"]
            g.cams = data.get("cams")
        g._loaded(data)
        return g

    @classmethod
    def _from_meta(cls, meta: Mapping[str, Any]) -> "Gallery":
        return cls(meta["metric"])

    def _loaded(self, data: Mapping[str, np.ndarray]) -> None:
        """Hook for subclasses."""


def _topk(d: np.ndarray, i: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k smallest distances, ties broken by the lower index, sorted."""
    if d.shape[1] > k:
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(d, part, 1).max(1, keepdims=True)
        # keep everything tied with the k-th value so the index tie-break is exact
        cand = d <= kth
        rows = []
        for r in range(d.shape[0]):
            c = np.flatnonzero(cand[r])
            o = np.lexsort((i[r, c], d[r, c]))[:k]
            rows.append(c[o])
        sel = np.stack(rows)
    else:
        sel = np.stack([np.lexsort((i[r], d[r])) for r in range(d.shape[0])]) if d.shape[0] else \
            np.zeros((0, d.shape[1]), np.int64)
    return np.take_along_axis(d, sel, 1), np.take_along_axis(i, sel, 1)


class FaissGallery(Gallery):
    """A Gallery whose search lets FAISS propose candidates that the gallery's metric then re-scores.

    FAISS indexes a vector per item whose order agrees with the metric where possible: for
    "cosine" and "cosine_per_part_mean" (inner product of per-part normalised vectors) and
    "euclidean" (L2) a flat index proposes exactly the true neighbours; for
    "euclidean_per_part_mean" (L2 of the flattened vector) and "pgfa" (cosine of the global
    feature) the proposal is approximate, so `candidates` (default max(10 k, k + 100)) items are
    re-scored exactly. `index="ivf"` uses an IVF-Flat index (`nlist` cells, `nprobe` searched) for
    very large galleries: faster, candidates approximate.

    Needs the extra: `pip install 'deploykit[faiss]'`.
    """

    kind = "faiss"

    def __init__(self, metric: str = "euclidean_per_part_mean", *, index: str = "flat",
                 candidates: Optional[int] = None, nlist: Optional[int] = None, nprobe: int = 16) -> None:
        super().__init__(metric)
        self.faiss = require("faiss", "faiss")
        self.index_type = _checks.choice(index, "index", ("flat", "ivf"), "FaissGallery")
        self.candidates = None if candidates is None else int(candidates)
        self.nlist = nlist
        self.nprobe = int(nprobe)
        self._index = None

    @property
    def _inner_product(self) -> bool:
        return self.metric in ("cosine", "cosine_per_part_mean", "pgfa")

    def _vectors(self, prep: Mapping[str, np.ndarray]) -> np.ndarray:
        """The FAISS vectors `[n, d]` float32 of a prepared form: the order FAISS ranks by."""
        if self.metric == "pgfa":
            v = prep["g"]  # cosine of the global feature
        elif self.metric in ("euclidean_per_part_mean", "cosine_per_part_mean"):
            v = prep["t"].transpose(1, 0, 2).reshape(prep["t"].shape[1], -1)  # parts concatenated
        else:
            v = prep["v"]
        return np.ascontiguousarray(v, np.float32)

    def _build(self) -> None:
        faiss = self.faiss
        vecs = self._vectors(self._prepared())
        dim = vecs.shape[1]
        flat = faiss.IndexFlatIP(dim) if self._inner_product else faiss.IndexFlatL2(dim)
        n = vecs.shape[0]
        nlist = self.nlist or max(1, int(4 * np.sqrt(n)))
        if self.index_type == "ivf" and n >= 39 * nlist:
            mt = faiss.METRIC_INNER_PRODUCT if self._inner_product else faiss.METRIC_L2
            index = faiss.IndexIVFFlat(flat, dim, nlist, mt)
            index.train(vecs)
            index.nprobe = self.nprobe
        else:
            index = flat
        index.add(vecs)
        self._index = index

    def _added(self, e32: Embeddings) -> None:
        if self._index is None:
            return
        if isinstance(self._index, self.faiss.IndexFlat):
            self._index.add(self._vectors(_prepare(self.metric, e32, np.float32)))
        else:
            self._index = None  # IVF: re-train on the next search

    def search(self, queries: Embeddings, k: int = 10) -> SearchResult:
        """FAISS proposes `candidates` items per query; the gallery's metric ranks them."""
        q = self._query(queries, "FaissGallery.search")
        k = self._k(k)
        if self._index is None:
            self._build()
        g, n, nq = self._prepared(), len(self), _items(q)
        c = min(n, self.candidates or max(10 * k, k + 100))
        _, cand = self._index.search(self._vectors(q), c)  # [nq, c], -1 where IVF found too few
        out_i = np.zeros((nq, k), np.int64)
        out_d = np.zeros((nq, k))
        for r in range(nq):
            ids = np.unique(cand[r][cand[r] >= 0])
            if ids.size < k:  # too few proposals (IVF): fall back to every item
                ids = np.arange(n)
            d = _pdist(self.metric, _take(q, slice(r, r + 1)), _take(g, ids))
            td, ti = _topk(d, ids[None, :], k)
            out_d[r], out_i[r] = td[0], ti[0]
        return self._result(out_i, out_d)

    def _meta(self) -> dict[str, Any]:
        return {**super()._meta(), "index": self.index_type, "candidates": self.candidates, "nlist": self.nlist,
                "nprobe": self.nprobe}

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        # a flat index is rebuilt from the embeddings in well under a second; an IVF index is
        # stored so that loading does not re-train it
        if self.index_type != "ivf" or not len(self):
            return {}
        if self._index is None:
            self._build()
        return {"faiss_index": np.asarray(self.faiss.serialize_index(self._index), np.uint8)}

    @classmethod
    def _from_meta(cls, meta: Mapping[str, Any]) -> "FaissGallery":
        return cls(meta["metric"], index=meta.get("index", "flat"), candidates=meta.get("candidates"),
                   nlist=meta.get("nlist"), nprobe=meta.get("nprobe", 16))

    def _loaded(self, data: Mapping[str, np.ndarray]) -> None:
        blob = data.get("faiss_index")
        if blob is not None and len(self):
            index = self.faiss.deserialize_index(np.ascontiguousarray(blob, np.uint8))
            self._index = index if index.ntotal == len(self) else None
