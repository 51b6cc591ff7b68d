"""`deploykit infer` result files: compact `.npz` (default) or JSON, both self-describing.

Both record the model, family, the engine file's sha256, the manifest's metric and its embedding
output, so a gallery can refuse embeddings of another model or output.

`.npz` layout: `meta` (a JSON string: the fields above, `format`, `version`, `outputs`), `input`
(`[N]` str: the input paths), one `out__<name>` float32 array `[N, ...]` per numeric output, and
`records` (a JSON string) for whatever is not a rectangular numeric array (pose people lists).
Embeddings are stored raw (float32 does not compress), so 1000 x 256 floats take about 1 MB.
JSON is the older `{"model", "family", "results": [{"input", <output>: list, ...}]}` plus the same fields.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from ..errors import BadInputError
from ..records import EmbeddingPostprocess, postprocess_of

FORMAT = "deploykit-results"
VERSION = 1
_META_KEYS = ("model", "family", "engine", "engine_sha256", "metric", "embedding_output",
              "pose_nms", "combine", "keypoints_matched")
_NOT_OUTPUTS = ("input", "frames_kept")
# numeric per-result fields that report what infer did, not engine outputs (kept as records)
_REPORT_FIELDS = ("frames_kept", "frames_total", "windows", "padded", "image_id", "box_score")


def describe_engine(engine_path: str | os.PathLike) -> dict[str, Any]:
    """The engine's sha256, the manifest's metric and embedding output (None where it has none)."""
    from .. import manifest as mf

    man = mf.read(mf.manifest_path_for(Path(engine_path)))
    post = postprocess_of(man)
    emb = post if isinstance(post, EmbeddingPostprocess) else None
    return {"engine": str(engine_path), "engine_sha256": mf.sha256_file(engine_path),
            "metric": emb.metric.value if emb else None, "embedding_output": emb.output if emb else None}


@dataclass(frozen=True)
class Results:
    """A results file in memory: metadata, `inputs` `[N]`, numeric `arrays` `{name: [N, ...]}`, other `records`."""

    meta: dict[str, Any]
    inputs: list[str]
    arrays: dict[str, np.ndarray]
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def family(self) -> Optional[str]:
        return self.meta.get("family")

    def embeddings(self, output: Optional[str] = None) -> tuple[Any, str]:
        """(embeddings `[N, ...]` float32, or PGFA's dict; the output name used).

        Args:
            output: an output name (default None: the manifest's embedding output, else
                "embeddings" / "feat" / the first output).
        """
        if self.family not in ("gait", "reid"):
            raise BadInputError(f"results of family {self.family!r} hold no embeddings; use a gait or re-ID engine")
        if not self.inputs:
            raise BadInputError("the results file holds no results; run `deploykit infer` on at least one input")
        names = list(self.arrays)
        key = output or self.meta.get("embedding_output") or next(
            (n for n in ("embeddings", "feat") if n in names), names[0] if names else None)
        if key and "+" in key and all(k in names for k in key.split("+")):
            return self._pgfa(key), key
        if key not in names:
            raise BadInputError(f"output {key!r} is not in the results; available: {names} (pass --output NAME)")
        return self.arrays[key], key

    def _pgfa(self, key: str) -> dict[str, np.ndarray]:
        from .match import pgfa_embeddings

        outs = {k: self.arrays[k] for k in key.split("+")}
        parts = outs.get("part_feats")
        if parts is None:
            raise BadInputError(f"output {key!r}: PGFA matching needs 'part_feats'; got {list(outs)}")
        # per-crop part visibility when the results carry it, else all parts visible (upstream without pose)
        vis = self.arrays.get("visibility", np.ones(parts.shape[:2], np.float32))
        return pgfa_embeddings(outs, vis)

    def source(self, output: str) -> dict[str, Any]:
        """What a gallery records about these embeddings."""
        return {"model": self.meta.get("model"), "engine_sha256": self.meta.get("engine_sha256"), "output": output}


def _split(results: list[Mapping[str, Any]]) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Numeric rectangular fields as arrays; everything else kept per result."""
    keys = [k for k in (results[0] if results else {}) if k != "input"]
    arrays, other = {}, []
    for k in keys:
        try:
            a = np.asarray([r[k] for r in results])
        except (ValueError, KeyError):
            a = None
        if a is not None and a.dtype.kind in "biuf" and k not in _REPORT_FIELDS:
            arrays[k] = a.astype(np.float32)
        else:
            other.append(k)
    return arrays, [{k: r.get(k) for k in other} for r in results] if other else []


def from_dict(data: Any) -> Results:
    """Results from the JSON-ready dict `infer_files` returns (plus the `describe_engine` fields)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("results"), list):
        raise BadInputError("the results are not `deploykit infer` output (no 'results' list); write them with "
                            "`deploykit infer ENGINE INPUTS --out FILE`")
    res = data["results"]
    if any(not isinstance(r, Mapping) or "input" not in r for r in res):
        raise BadInputError("every entry of 'results' must be an object with an 'input'; rewrite the file with "
                            "`deploykit infer --out`")
    arrays, records = _split(res)
    meta = {k: data.get(k) for k in _META_KEYS}
    return Results(meta, [str(r["input"]) for r in res], arrays, records)


def to_dict(r: Results) -> dict[str, Any]:
    """The JSON form (the layout `infer_files` returns, plus metadata)."""
    rows = []
    for i, name in enumerate(r.inputs):
        row: dict[str, Any] = {"input": name, **(r.records[i] if r.records else {})}
        row.update({k: v[i].tolist() for k, v in r.arrays.items()})
        rows.append(row)
    return {**{k: v for k, v in r.meta.items() if k in _META_KEYS}, "results": rows}


def write(path: str | os.PathLike, result: Mapping[str, Any]) -> Path:
    """Write `infer_files`' dict to `path`: JSON if it ends in `.json`, else `.npz` (atomically)."""
    from .. import atomic

    p = Path(path)
    r = from_dict(result)
    if p.suffix.lower() == ".json":
        atomic.write_bytes(p, json.dumps(to_dict(r), indent=1).encode())
        return p
    arrays = {f"out__{k}": v for k, v in r.arrays.items()}
    meta = {"format": FORMAT, "version": VERSION, **r.meta, "outputs": list(r.arrays)}
    with atomic.atomic_path(p) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), input=np.asarray(r.inputs, str),
                     records=np.array(json.dumps(r.records)), **arrays)
    return p


def read(path: str | os.PathLike) -> Results:
    """Read a results file written by `write` (or `deploykit infer --out`), `.npz` or JSON."""
    p = Path(path)
    fix = "write it with `deploykit infer ENGINE INPUTS --out FILE.npz`"
    if not p.is_file():
        raise BadInputError(f"results file {p} does not exist; {fix}")
    if zipfile.is_zipfile(p):
        try:
            with np.load(p, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            meta = json.loads(str(data["meta"])) if "meta" in data else None
            records = json.loads(str(data.get("records", "[]")))
        except Exception as exc:  # damaged archive, object arrays: never numpy's pickle advice
            raise BadInputError(f"{p} cannot be read as `deploykit infer` results ({type(exc).__name__}); "
                                f"{fix}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise BadInputError(f"{p} is an .npz but not `deploykit infer` results; {fix}")
        arrays = {k[5:]: v for k, v in data.items() if k.startswith("out__")}
        return Results({k: meta.get(k) for k in _META_KEYS}, [str(x) for x in data["input"]], arrays, records)
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{p}: cannot read `deploykit infer` results ({type(exc).__name__}: {exc}); "
                            f"{fix}") from None
    return from_dict(data)
