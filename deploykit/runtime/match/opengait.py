"""OpenGait's evaluation protocols: CASIA-B and OU-MVLP (`evaluator.py::evaluate_indoor_dataset`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import BadInputError
from .. import _checks
from . import metrics as M
from .distance import distance
from .evaluation import average_precision
from .evaluation import labels as _labels

# OpenGait evaluator.py: per dataset, ({condition: probe sequence types}, gallery sequence types)
SINGLE_VIEW = {"CASIA-B": ({"NM": ["nm-05", "nm-06"], "BG": ["bg-01", "bg-02"], "CL": ["cl-01", "cl-02"]},
                            ["nm-01", "nm-02", "nm-03", "nm-04"]),
                "OUMVLP": ({"NM": ["00"]}, ["01"])}
CROSS_VIEW = {"CASIA-B": ({"NM": ["nm-01"], "BG": ["bg-01"], "CL": ["cl-01"]}, ["nm-02", "bg-02", "cl-02"]),
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
        `{condition: {"per_view": [V], "mean": float, "acc": [V, V], "num_probes": int}}` (single-view)
        or `{condition: {"rank1": [V], "mAP": [V], "rank1_mean": float, "mAP_mean": float, "num_probes": int}}`.
    """
    where = "evaluate_casia_b"
    m = M.get(metric, where).name
    ds = _checks.choice(dataset, "dataset", ("casia-b", "oumvlp"), where)
    ds = "CASIA-B" if ds == "casia-b" else "OUMVLP"
    x = M.get(m).validate(embeddings, "embeddings", where)
    n = M.count(x)
    lab = _labels(labels, n, "labels", where)
    typ = _labels(seq_types, n, "seq_types", where)
    view = _labels(views, n, "views", where)
    view_list = sorted(np.unique(view))
    out: dict[str, Any] = {}
    if not cross_view_gallery:
        probes, gallery_types = SINGLE_VIEW[ds]
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
                    d = distance(M.rows(x, pmask), M.rows(x, gmask), m)
                    best = np.argmin(d, axis=1)  # first minimum = stable rank 1
                    acc[v1, v2] = np.round(np.sum(lab[pmask] == lab[gmask][best]) * 100 / d.shape[0], 2)
            per_view = de_diag(acc, each_angle=True) if len(view_list) > 1 else acc[:, 0]
            out[cond] = {"per_view": per_view, "mean": float(np.mean(per_view)), "acc": acc,
                         "num_probes": int(np.isin(typ, probe_types).sum())}
        return out
    probes, gallery_types = CROSS_VIEW[ds]
    gmask = np.isin(typ, gallery_types)
    for cond, probe_types in probes.items():
        r1 = np.full(len(view_list), -1.0)
        mp = np.full(len(view_list), -1.0)
        for v1, pv in enumerate(view_list):
            pmask = np.isin(typ, probe_types) & (view == pv)
            if not pmask.any() or not gmask.any():
                r1[v1] = mp[v1] = np.nan
                continue
            d = distance(M.rows(x, pmask), M.rows(x, gmask), m)
            res = _acc_map(d, lab[pmask], lab[gmask], view[pmask], view[gmask])
            r1[v1], mp[v1] = np.round(res[0] * 100, 2), np.round(res[1] * 100, 2)
        out[cond] = {"rank1": r1, "mAP": mp, "rank1_mean": float(np.mean(r1)), "mAP_mean": float(np.mean(mp)),
                     "num_probes": int(np.isin(typ, probe_types).sum())}
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
            aps.append(average_precision(hits, "standard"))
    return float(np.mean(accs)), float(np.mean(aps)) if aps else float("nan")


