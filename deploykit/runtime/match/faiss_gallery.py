"""A Gallery whose search lets FAISS propose candidates that the exact metric then re-scores (extra `[faiss]`)."""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from ...errors import require
from .. import _checks
from . import metrics as M
from .gallery import Gallery, SearchResult, topk


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
                 candidates: Optional[int] = None, nlist: Optional[int] = None, nprobe: int = 16,
                 source: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(metric, source=source)
        self.faiss = require("faiss", "faiss")
        self.index_type = _checks.choice(index, "index", ("flat", "ivf"), "FaissGallery")
        self.candidates = None if candidates is None else int(candidates)
        self.nlist = nlist
        self.nprobe = int(nprobe)
        self._index = None

    @property
    def _inner_product(self) -> bool:
        return self._m.inner_product

    def _vectors(self, prep: Mapping[str, np.ndarray]) -> np.ndarray:
        """The FAISS vectors `[n, d]` float32 of a prepared form: the order FAISS ranks by."""
        return self._m.faiss_vectors(prep)

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

    def _added(self, e32: M.Embeddings) -> None:
        if self._index is None:
            return
        if isinstance(self._index, self.faiss.IndexFlat):
            self._index.add(self._vectors(self._m.prepare(e32, np.float32)))
        else:
            self._index = None  # IVF: re-train on the next search

    def search(self, queries: M.Embeddings, k: int = 10) -> SearchResult:
        """FAISS proposes `candidates` items per query; the gallery's metric ranks them."""
        q = self._query(queries, "FaissGallery.search")
        k = self._k(k)
        if self._index is None:
            self._build()
        g, n, nq = self._prepared(), len(self), M.items(q)
        c = min(n, self.candidates or max(10 * k, k + 100))
        _, cand = self._index.search(self._vectors(q), c)  # [nq, c], -1 where IVF found too few
        out_i = np.zeros((nq, k), np.int64)
        out_d = np.zeros((nq, k))
        for r in range(nq):
            ids = np.unique(cand[r][cand[r] >= 0])
            if ids.size < k:  # too few proposals (IVF): fall back to every item
                ids = np.arange(n)
            d = self._m.pairwise(M.take(q, slice(r, r + 1)), M.take(g, ids))
            td, ti = topk(d, ids[None, :], k)
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
                   nlist=meta.get("nlist"), nprobe=meta.get("nprobe", 16), source=meta.get("source"))

    def _loaded(self, data: Mapping[str, np.ndarray]) -> None:
        blob = data.get("faiss_index")
        if blob is not None and len(self):
            index = self.faiss.deserialize_index(np.ascontiguousarray(blob, np.uint8))
            self._index = index if index.ntotal == len(self) else None
