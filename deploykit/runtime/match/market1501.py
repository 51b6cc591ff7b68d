"""The Market-1501 protocol as RGA evaluates it (`reid/evaluation_metrics/ranking.py`, `img_evaluators.py`).

Facts (microsoft/Relation-Aware-Global-Attention-Networks @05d2f05):

* gallery items with the query's identity *and* camera are excluded per query
  (`valid = (gid != qid) | (gcam != qcam)`); a query with no true match left is skipped;
* CMC with `first_match_break=True`: a query counts at the rank of its first true match among the
  valid items; divided by the number of counted queries;
* AP is sklearn's `average_precision_score(matches, -dist)` over the valid items: the sum over
  distinct distance thresholds of (recall step) x (precision at that threshold), so tied
  distances form one step; mAP is the mean over counted queries.

Market-1501's junk images (identity -1) are dropped from query and gallery before evaluation
(the dataset loaders RGA's code base derives from skip pid -1); distractors (identity 0000) stay in
the gallery as an identity no query has. Ties in the CMC ranking keep gallery order (RGA's
`np.argsort` leaves tie order unspecified).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...errors import BadInputError
from .evaluation import NO_MATCH, distance_matrix, labels
from .labels import JUNK_IDS

JUNK = "junk identity -1"


def tie_grouped_ap(dist: np.ndarray, hits: np.ndarray) -> float:
    """sklearn-style AP of one query: `dist` `[n]` (smaller = closer), `hits` `[n]` bool, >= 1 hit."""
    order = np.argsort(dist, kind="stable")
    d, h = dist[order], hits[order].astype(np.float64)
    tp = np.cumsum(h)
    ends = np.flatnonzero(np.r_[d[1:] != d[:-1], True])  # last index of each group of tied distances
    tp_at = tp[ends]
    precision = tp_at / (ends + 1)
    recall_step = np.diff(np.r_[0.0, tp_at]) / tp[-1]
    return float(np.sum(recall_step * precision))


def evaluate_market1501(dist: Any, query_ids: Any, gallery_ids: Any, query_cams: Any, gallery_cams: Any, *,
                        ranks: Sequence[int] = (1, 5, 10), junk_ids: Sequence[Any] = JUNK_IDS) -> dict[str, Any]:
    """Rank-k accuracies and mAP of a query x gallery distance matrix, as RGA computes them.

    Args:
        dist: `[n_query, n_gallery]` finite distances.
        query_ids, gallery_ids, query_cams, gallery_cams: labels (strings as parsed from the names).
        ranks: which CMC ranks to report (default 1, 5, 10).
        junk_ids: identities dropped from both sides (default Market-1501's "-1").

    Returns:
        `{"rank1": float, "rank5": ..., "cmc": float64 [n_gallery], "mAP": float, "num_queries": int,
        "num_valid_queries": int, "skipped": {reason: count}, "gallery_junk": int}`.
    """
    where = "evaluate_market1501"
    d = distance_matrix(dist, where)
    nq, ng = d.shape
    qid, qc = (labels(x, nq, n, where).astype(str) for x, n in ((query_ids, "query_ids"), (query_cams, "query_cams")))
    gid, gc = (labels(x, ng, n, where).astype(str) for x, n in ((gallery_ids, "gallery_ids"),
                                                               (gallery_cams, "gallery_cams")))
    junk = [str(j) for j in junk_ids]
    gkeep = ~np.isin(gid, junk)
    d, gid, gc = d[:, gkeep], gid[gkeep], gc[gkeep]
    skipped = {JUNK: 0, NO_MATCH: 0}
    cmc = np.zeros(max(1, d.shape[1]))
    aps = []
    for i in range(nq):
        if qid[i] in junk:
            skipped[JUNK] += 1
            continue
        valid = (gid != qid[i]) | (gc != qc[i])
        hits = gid[valid] == qid[i]
        if not hits.any():
            skipped[NO_MATCH] += 1
            continue
        row = d[i, valid]
        first = int(np.argmax(hits[np.argsort(row, kind="stable")]))
        cmc[first] += 1
        aps.append(tie_grouped_ap(row, hits))
    if not aps:
        raise BadInputError(f"{where}: none of the {nq} queries has a true match in another camera of the gallery "
                            f"(skipped: {skipped}); check the query/ and bounding_box_test/ folders")
    curve = np.cumsum(cmc) / len(aps)
    out: dict[str, Any] = {f"rank{r}": float(curve[min(r, len(curve)) - 1]) for r in ranks}
    out.update(cmc=curve, mAP=float(np.mean(aps)), num_queries=nq, num_valid_queries=len(aps),
               skipped={k: v for k, v in skipped.items() if v}, gallery_junk=int((~gkeep).sum()))
    return out
