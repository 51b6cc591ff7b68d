"""CMC and mAP of a distance matrix, with the re-ID exclusions and a count of skipped queries."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ...errors import BadInputError
from .. import _checks

NO_MATCH = "no true match left in the gallery"


def labels(x: Any, n: int, name: str, where: str) -> np.ndarray:
    """`x` as a 1-D label array of length `n`."""
    a = np.asarray(x)
    if a.ndim != 1 or a.shape[0] != n:
        raise BadInputError(f"{where}: {name} has shape {list(a.shape)}; expected [{n}] (one per row/column of dist)")
    return a


def average_precision(hits: np.ndarray, kind: str = "standard") -> float:
    """AP of a ranked 0/1 hit list with at least one hit.

    "standard": mean precision at each hit (torchreid, OpenGait); "trapezoid": mean of the
    precisions before and at each hit (Market-1501's code and PGFA).
    """
    ranks = np.flatnonzero(hits) + 1.0  # 1-based positions of the true matches
    i = np.arange(1, ranks.size + 1)
    precision = i / ranks
    if kind == "standard":
        return float(precision.mean())
    old = np.where(ranks > 1, (i - 1) / np.maximum(ranks - 1, 1), 1.0)
    return float(((old + precision) / 2).mean())


def distance_matrix(dist: Any, where: str) -> np.ndarray:
    """`dist` as a finite float64 `[n_query, n_gallery]` matrix with both sizes >= 1."""
    d = _checks.array(dist, "dist", ndim=2, dtype=np.float64, where=where)
    if 0 in d.shape:
        raise BadInputError(f"{where}: dist has shape {list(d.shape)}; evaluation needs at least one query and one "
                            f"gallery item (check that the query and gallery files are not empty)")
    return d


def evaluate(dist: Any, query_ids: Any, gallery_ids: Any, query_cams: Any = None, gallery_cams: Any = None, *,
             max_rank: Optional[int] = None, ap: str = "standard",
             junk_ids: Optional[Sequence[Any]] = None) -> dict[str, Any]:
    """CMC and mAP of a distance matrix.

    For each query the gallery is ranked by ascending distance (ties keep gallery order). Gallery
    items with the query's identity *and* camera are excluded (the re-ID protocol; pass views as
    cameras for OpenGait's `compute_ACC_mAP`, which excludes same-identity same-view items), as are
    items whose identity is in `junk_ids` (PGFA/Market: -1). Queries with no remaining true match
    are skipped and counted.

    Args:
        dist: `[n_query, n_gallery]` distances (finite, both sizes >= 1).
        query_ids, gallery_ids: identities (ints or strings).
        query_cams, gallery_cams: cameras (or views); both None (the default) = no camera exclusion.
        max_rank: length of the CMC curve; default None = n_gallery.
        ap: "standard" (default) or "trapezoid", see `average_precision`.
        junk_ids: gallery identities to ignore (default None: none).

    Returns:
        `{"cmc": float64 [max_rank], "mAP": float, "num_valid_queries": int, "num_queries": int,
        "skipped": {reason: count}}`; cmc[0] is rank-1.
    """
    where = "evaluate"
    d = distance_matrix(dist, where)
    nq, ng = d.shape
    qid = labels(query_ids, nq, "query_ids", where)
    gid = labels(gallery_ids, ng, "gallery_ids", where)
    if (query_cams is None) != (gallery_cams is None):
        raise BadInputError(f"{where}: give both query_cams and gallery_cams, or neither")
    use_cams = query_cams is not None
    qc = labels(query_cams, nq, "query_cams", where) if use_cams else None
    gc = labels(gallery_cams, ng, "gallery_cams", where) if use_cams else None
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
        aps.append(average_precision(hits, kind))
    if not aps:
        raise BadInputError(f"{where}: no query has a true match in the gallery ({nq} queries, after excluding "
                            f"same identity and camera); check that query and gallery identities overlap")
    skipped = {NO_MATCH: nq - len(aps)} if nq > len(aps) else {}
    return {"cmc": cmc_sum / len(aps), "mAP": float(np.mean(aps)), "num_valid_queries": len(aps),
            "num_queries": nq, "skipped": skipped}
