"""A searchable, persistent gallery of embeddings with identities, cameras and source paths.

Rules a gallery keeps (each break is a one-line `BadInputError`):

* one metric for its life; asking for another on an existing gallery is refused;
* identities (and cameras) are either all ints or all strings: `1` and `"1"` are never merged
  (the CLI always gives strings, parsed from paths);
* no NaN/Inf rows, neither added nor loaded;
* it records where its embeddings came from (`source`: model, engine sha256, output); adding or
  querying embeddings of another model or output is refused;
* adding an input path that is already in the gallery skips that row (`add` returns how many
  rows it took, the CLI prints a warning line for the rest);
* `locking.update(path)` is the only safe way for several processes to change one file: it holds an
  exclusive lock on `<path>.lock` from load to save (the `.lock` file stays beside the gallery).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from ... import atomic
from ...errors import BadInputError
from . import metrics as M
from .evaluation import evaluate

FORMAT = "deploykit-gallery"
VERSION = 2  # 2: source, paths, id kind; version-1 files still load
SOURCE_KEYS = ("model", "engine_sha256", "output")


class SearchResult:
    """Top-k neighbours of each query: `indices`, `distances`, `ids`, `cams`, `paths` (each `[n_query, k]`)."""

    def __init__(self, indices: np.ndarray, distances: np.ndarray, ids: np.ndarray, cams: Optional[np.ndarray],
                 paths: Optional[np.ndarray] = None):
        self.indices, self.distances, self.ids, self.cams, self.paths = indices, distances, ids, cams, paths

    def to_json(self) -> list[list[dict[str, Any]]]:
        out = []
        for r in range(self.indices.shape[0]):
            row = []
            for c in range(self.indices.shape[1]):
                item = {"index": int(self.indices[r, c]), "distance": float(self.distances[r, c]),
                        "id": self.ids[r, c].item()}
                if self.cams is not None:
                    item["cam"] = self.cams[r, c].item()
                if self.paths is not None and self.paths[r, c]:
                    item["path"] = str(self.paths[r, c])
                row.append(item)
            out.append(row)
        return out


def _label_kind(values: Any, n: int, name: str, where: str) -> tuple[np.ndarray, str]:
    """Labels as an int64 or str array of length n, and their kind ("int" / "str"); mixed kinds refused."""
    if isinstance(values, (list, tuple)):
        kinds = {("str" if isinstance(v, str) else "int") for v in values}
        if len(kinds) > 1:
            raise BadInputError(f"{where}: {name} mix ints and strings (e.g. 1 and '1' would be merged); give all "
                                f"as strings or all as ints")
    a = np.asarray(values)
    if a.ndim == 0:
        a = np.full(n, a.item())
    if a.ndim != 1 or a.shape[0] != n:
        raise BadInputError(f"{where}: {name} has shape {list(a.shape)}; expected [{n}]")
    if a.dtype.kind in "iub":
        return a.astype(np.int64), "int"
    if a.dtype.kind in "US":
        return a.astype(str), "str"
    if a.dtype.kind == "f" and np.isfinite(a).all() and (a == np.round(a)).all():
        return a.astype(np.int64), "int"
    raise BadInputError(f"{where}: {name} must be ints or strings, got dtype {a.dtype}")


def _same_kind(have: Optional[str], new: str, name: str, where: str) -> None:
    if have is not None and have != new:
        raise BadInputError(f"{where}: this gallery's {name} are {have}s but {new}s were given (1 and '1' would be "
                            f"different identities); convert them to {have}s")


_KINDS: dict[str, type] = {}  # gallery file "kind" -> class; filled by subclasses


class Gallery:
    """Embeddings with identities (and cameras), searchable with the method's exact metric.

        >>> g = Gallery("euclidean_per_part_mean")
        >>> g.add(embeddings, ids=[3, 3, 7], cams=[1, 2, 1])
        >>> g.search(query_embeddings, k=5).ids       # [n_query, 5]
        >>> g.save("gallery.npz"); Gallery.load("gallery.npz")

    Embeddings are stored as float32. Searches use a prepared float32 copy (normalised / part-major,
    built on the first search after an add; memory about twice the embeddings) and compute distances
    in float64 a block of the gallery at a time.

    Args:
        metric: a name of `METRICS` (default "euclidean_per_part_mean").
        source: where the embeddings come from, `{"model", "engine_sha256", "output"}` (default None:
            unknown, set by the first `check_source`).
    """

    kind = "exact"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _KINDS[cls.kind] = cls
    CHUNK = 16384  # most items per block; fewer for large embeddings (about 64 MB of float64 per block)

    def __init__(self, metric: str = "euclidean_per_part_mean", *, source: Optional[Mapping[str, Any]] = None) -> None:
        self._m = M.get(metric, "Gallery")
        self.metric = self._m.name
        self.source: dict[str, Any] = {k: v for k, v in dict(source or {}).items() if k in SOURCE_KEYS and v}
        self._emb: Optional[M.Embeddings] = None
        self._prep: Optional[dict[str, np.ndarray]] = None
        self.ids: np.ndarray = np.zeros(0, np.int64)
        self.cams: Optional[np.ndarray] = None
        self.paths: np.ndarray = np.zeros(0, str)
        self._kinds: dict[str, Optional[str]] = {"ids": None, "cams": None}

    # -- content ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return 0 if self._emb is None else M.count(self._emb)

    @property
    def embeddings(self) -> Optional[M.Embeddings]:
        return self._emb

    def check_metric(self, metric: Optional[str], where: str) -> None:
        """Refuse `metric` (a name given by the user) when it is not this gallery's metric."""
        if metric is not None and M.get(metric, where).name != self.metric:
            raise BadInputError(f"{where}: the gallery uses metric {self.metric!r}, not {metric!r}; drop --metric or "
                                f"build a new gallery with it")

    def check_source(self, source: Optional[Mapping[str, Any]], where: str) -> Optional[str]:
        """Refuse embeddings of another model or output; adopt `source` if the gallery has none.

        Returns:
            a warning sentence when only the engine differs (same model and output, e.g. an FP16
            engine queried against an FP32 gallery), else None.
        """
        new = {k: v for k, v in dict(source or {}).items() if k in SOURCE_KEYS and v}
        for key, what in (("model", "model"), ("output", "engine output")):
            if self.source.get(key) and new.get(key) and self.source[key] != new[key]:
                raise BadInputError(f"{where}: the gallery holds {what} {self.source[key]!r} embeddings, these are "
                                    f"{new[key]!r}; use the same {what} (e.g. --output {self.source.get('output')})"
                                    f" or another gallery")
        warn = None
        a, b = self.source.get("engine_sha256"), new.get("engine_sha256")
        if a and b and a != b:
            warn = (f"the embeddings come from another engine (sha256 {b[:12]}) than the gallery's ({a[:12]}); "
                    f"distances mix the two engines' numerics")
        if not len(self):
            self.source = {**self.source, **new}
        return warn

    def add(self, embeddings: M.Embeddings, ids: Any, cams: Any = None, paths: Optional[Sequence[str]] = None) -> int:
        """Append embeddings (`[n, ...]`, or a dict for pgfa) with their ids (and cams, all or none).

        Args:
            paths: the source path of each row (default None: unknown). Rows whose path is
                already in the gallery are skipped.

        Returns:
            how many rows were added (n minus the skipped duplicates).
        """
        where = "Gallery.add"
        e32 = self._m.validate(embeddings, "embeddings", where, dtype=np.float32)
        n = M.count(e32)
        new_ids, id_kind = _label_kind(ids, n, "ids", where)
        _same_kind(self._kinds["ids"] if len(self) else None, id_kind, "ids", where)
        if len(self) and cams is None and self.cams is not None:
            raise BadInputError(f"{where}: this gallery has cameras; pass cams for the new embeddings too")
        if len(self) and cams is not None and self.cams is None:
            raise BadInputError(f"{where}: this gallery has no cameras; add without cams (or start a new one)")
        new_cams, cam_kind = (None, None) if cams is None else _label_kind(cams, n, "cams", where)
        if cam_kind:
            _same_kind(self._kinds["cams"] if len(self) else None, cam_kind, "cams", where)
        new_paths = np.full(n, "", dtype=object) if paths is None else np.asarray([str(p) for p in paths], object)
        if new_paths.shape != (n,):
            raise BadInputError(f"{where}: paths has {new_paths.shape[0]} entries for {n} embeddings")
        have = set(self.paths.tolist())
        keep = np.array([not p or p not in have for p in new_paths], bool)
        if not keep.any():
            return 0
        if len(self) and M.trailing(self._emb) != M.trailing(e32):
            raise BadInputError(f"{where}: embeddings of shape {M.trailing(e32)} do not match the gallery's "
                                f"{M.trailing(self._emb)}")
        e32 = M.rows(e32, keep)
        if self._emb is None:
            self._emb = e32
        else:
            self._emb = ({k: np.concatenate([self._emb[k], e32[k]]) for k in e32} if isinstance(e32, Mapping)
                         else np.concatenate([self._emb, e32]))
        first = self.ids.size == 0
        self.ids = new_ids[keep] if first else np.concatenate([self.ids, new_ids[keep]])
        if new_cams is not None:
            self.cams = new_cams[keep] if self.cams is None else np.concatenate([self.cams, new_cams[keep]])
        self.paths = np.concatenate([self.paths.astype(str), new_paths[keep].astype(str)])
        self._kinds = {"ids": id_kind, "cams": cam_kind}
        self._prep = None
        self._added(e32)
        return int(keep.sum())

    def _added(self, e32: M.Embeddings) -> None:
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
            self._prep = M.concat([self._m.prepare(M.rows(self._emb, slice(s, min(s + b, n))), np.float32)
                                   for s in range(0, n, b)])
        return self._prep

    def _query(self, queries: M.Embeddings, where: str) -> dict[str, np.ndarray]:
        if not len(self):
            raise BadInputError(f"{where}: the gallery is empty; add embeddings first")
        q = self._m.validate(queries, "queries", where)
        if M.trailing(q) != M.trailing(self._emb):
            raise BadInputError(f"{where}: query embeddings {M.trailing(q)} do not match the gallery's "
                                f"{M.trailing(self._emb)}")
        return self._m.prepare(q, np.float32)

    def distances(self, queries: M.Embeddings) -> np.ndarray:
        """Distances `[n_query, len(gallery)]` under the gallery's metric."""
        q = self._query(queries, "Gallery.distances")
        g, n, b = self._prepared(), len(self), self._block()
        return np.concatenate([self._m.pairwise(q, M.take(g, slice(s, min(s + b, n)))) for s in range(0, n, b)],
                              axis=1)

    def search(self, queries: M.Embeddings, k: int = 10) -> SearchResult:
        """The `k` nearest gallery items of each query, by the metric (ties: lower index first)."""
        q = self._query(queries, "Gallery.search")
        k = self._k(k)
        g, nq, n, b = self._prepared(), M.items(q), len(self), self._block()
        best_d = np.zeros((nq, 0))
        best_i = np.zeros((nq, 0), np.int64)
        for s in range(0, n, b):
            d = self._m.pairwise(q, M.take(g, slice(s, min(s + b, n))))
            best_d = np.concatenate([best_d, d], axis=1)
            best_i = np.concatenate([best_i, np.broadcast_to(np.arange(s, s + d.shape[1]), d.shape)], axis=1)
            best_d, best_i = topk(best_d, best_i, k)
        return self._result(best_i, best_d)

    def evaluate(self, queries: M.Embeddings, query_ids: Any, query_cams: Any = None, **kwargs) -> dict[str, Any]:
        """`evaluate(self.distances(queries), query_ids, self.ids, query_cams, self.cams, **kwargs)`."""
        if (query_cams is None) != (self.cams is None):
            raise BadInputError("Gallery.evaluate: give query_cams exactly when the gallery has cameras")
        qid, kind = _label_kind(query_ids, M.count(self._m.validate(queries, "queries", "Gallery.evaluate")),
                                "query_ids", "Gallery.evaluate")
        _same_kind(self._kinds["ids"], kind, "ids", "Gallery.evaluate")
        return evaluate(self.distances(queries), qid, self.ids, query_cams, self.cams, **kwargs)

    def _k(self, k: int) -> int:
        k = int(k)
        if k < 1:
            raise BadInputError(f"search: k must be >= 1, got {k}")
        return min(k, len(self))

    def _result(self, idx: np.ndarray, dist: np.ndarray) -> SearchResult:
        return SearchResult(idx, dist, self.ids[idx], None if self.cams is None else self.cams[idx],
                            self.paths[idx] if self.paths.size else None)

    # -- persistence -----------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "kind": self.kind, "metric": self.metric, "count": len(self),
                "source": self.source, "id_kind": self._kinds["ids"], "cam_kind": self._kinds["cams"]}

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write the gallery to one `.npz` atomically (temp file, fsync, rename)."""
        p = Path(path)
        arrays: dict[str, np.ndarray] = {"ids": self.ids, "paths": self.paths.astype(str)}
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
        data, meta = _read_npz(p)
        target = cls._kind_class(meta.get("kind"))
        g = target._from_meta(meta)
        fields = {k[5:]: v for k, v in data.items() if k.startswith("emb__")}
        emb = fields or data.get("emb")
        if emb is not None and M.count(emb):
            try:
                g._emb = g._m.validate(emb, "embeddings", f"gallery {p}", dtype=np.float32)
            except BadInputError as exc:
                raise BadInputError(f"{exc} (in the file; rebuild the gallery with `deploykit gallery add`)") from None
            g.ids = data["ids"]
            g.cams = data.get("cams")
            g.paths = data.get("paths", np.full(len(g.ids), "")).astype(str)
            g._kinds = {"ids": meta.get("id_kind") or ("str" if g.ids.dtype.kind == "U" else "int"),
                        "cams": meta.get("cam_kind") or (None if g.cams is None else
                                                         "str" if g.cams.dtype.kind == "U" else "int")}
        g._loaded(data)
        return g

    @staticmethod
    def _kind_class(kind: Optional[str]) -> type:
        # Subclasses register their kind (__init_subclass__), so this module never imports them;
        # the package imports faiss_gallery, so its kind is known whenever a gallery is loaded.
        return _KINDS.get(kind or "", Gallery)

    @classmethod
    def _from_meta(cls, meta: Mapping[str, Any]) -> "Gallery":
        return cls(meta["metric"], source=meta.get("source"))

    def _loaded(self, data: Mapping[str, np.ndarray]) -> None:
        """Hook for subclasses."""


def _read_npz(p: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata of a gallery file; one-line errors for anything else."""
    fix = "rebuild it with `deploykit gallery add`"
    if not p.exists():
        raise BadInputError(f"gallery {p} does not exist; create it with `deploykit gallery add {p} RESULTS`")
    if not zipfile.is_zipfile(p):
        raise BadInputError(f"gallery {p} is not a deploykit gallery (not an .npz archive); {fix}")
    try:
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:  # damaged members, object arrays: never numpy's pickle advice
        raise BadInputError(f"gallery {p} is damaged or not a deploykit gallery ({type(exc).__name__}); "
                            f"{fix}") from None
    try:
        meta = json.loads(str(data.pop("meta")))
    except Exception:
        meta = {}
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BadInputError(f"gallery {p} is not a deploykit gallery (no gallery metadata); {fix}")
    if meta.get("version", 0) > VERSION:
        raise BadInputError(f"gallery {p} has format version {meta['version']} (this deploykit reads up to "
                            f"{VERSION}); upgrade deploykit")
    return data, meta


def topk(d: np.ndarray, i: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
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
