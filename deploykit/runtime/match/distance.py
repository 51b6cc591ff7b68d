"""Distance matrices between two sets of embeddings, and PGFA's embeddings from engine outputs."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ...errors import BadInputError
from .. import _checks
from . import metrics as M


def distance(query: M.Embeddings, gallery: M.Embeddings, metric: str = "euclidean_per_part_mean") -> np.ndarray:
    """Distance matrix `[n_query, n_gallery]` (float64) under one of `METRICS` ("euc"/"cos" = OpenGait's)."""
    where = "distance"
    m = M.get(metric, where)
    q = m.validate(query, "query", where)
    g = m.validate(gallery, "gallery", where)
    if M.trailing(q) != M.trailing(g):
        raise BadInputError(f"{where}: query embeddings {M.trailing(q)} and gallery embeddings {M.trailing(g)} "
                            f"have different shapes")
    if M.count(q) == 0 or M.count(g) == 0:
        return np.zeros((M.count(q), M.count(g)))
    return m.pairwise(m.prepare(q), m.prepare(g))


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
    return M.get("pgfa").validate(emb, "outputs", where)


def pgfa_similarity(query: Mapping[str, np.ndarray], gallery: Mapping[str, np.ndarray]) -> np.ndarray:
    """PGFA's visibility-weighted similarity `[n_query, n_gallery]` in [0, 1] (larger is closer)."""
    return 1 - distance(query, gallery, "pgfa")
