"""The manifest: the JSON contract between export, engine building and the runtime.

It holds everything the runtime needs to run an artifact without any Python object from export
time: input/output specs, pre/post-processing facts, and provenance (weights, versions, sha256).
No torch here: the runtime reads manifests on machines without PyTorch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from . import atomic
from .errors import BadInputError

# 2: typed pre/post-processing records (deploykit.records); version 1 manifests still load
SCHEMA_VERSION = 2
_DTYPES = ("float32", "float16", "int64", "int32", "uint8", "bool")


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A named static tensor: shape, dtype and what it means.

    Attributes:
        name: graph input/output name.
        shape: static shape; every entry a positive int.
        dtype: numpy dtype name, one of float32, float16, int64, int32, uint8, bool.
        meaning: one line for humans (units, value range, layout).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    meaning: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if any(d <= 0 for d in self.shape):
            raise ValueError(f"TensorSpec {self.name!r}: shape {self.shape} has a non-positive dim; "
                             f"static shapes need every dim >= 1")
        if self.dtype not in _DTYPES:
            raise ValueError(f"TensorSpec {self.name!r}: dtype {self.dtype!r} is not one of {_DTYPES}")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "meaning": self.meaning}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "TensorSpec":
        return cls(d["name"], tuple(d["shape"]), d.get("dtype", "float32"), d.get("meaning", ""))


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_path_for(artifact: str | os.PathLike) -> Path:
    """The manifest beside an artifact; every artifact gets its own name.

    `dir/name.onnx` -> `dir/name.manifest.json` (unchanged since schema 1); any other artifact keeps
    its suffix: `dir/name.int8.plan` -> `dir/name.int8.plan.manifest.json`, so a TensorRT plan never
    shares a manifest with the ONNX Runtime engine `name.int8.onnx` built into the same folder.
    """
    p = Path(artifact)
    if p.suffix == ".onnx":
        return p.with_name(p.name[: -len(".onnx")] + ".manifest.json")
    return p.with_name(p.name + ".manifest.json")


def legacy_manifest_path_for(artifact: str | os.PathLike) -> Path:
    """The name deploykit <= 0.x used for non-ONNX artifacts (`name.int8.plan` -> `name.int8.manifest.json`)."""
    p = Path(artifact)
    return p.with_name(p.name.rsplit(".", 1)[0] + ".manifest.json")


def write(path: str | os.PathLike, manifest: Mapping[str, Any]) -> None:
    """Write a manifest atomically, stamping the schema version."""
    data = {"schema_version": SCHEMA_VERSION, **manifest}
    atomic.write_json(path, data)


def read(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a manifest (an object with a schema version and well-formed tensor specs).

    Raises:
        BadInputError: the file is missing, not JSON, from a newer schema, or malformed; the
            message names the file, what is wrong and the fix.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise BadInputError(f"manifest {p} does not exist; every artifact needs its manifest beside it, "
                            f"re-export with `deploykit export`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"manifest {p} is not valid JSON ({exc}); re-export it") from None
    except OSError as exc:
        raise BadInputError(f"cannot read manifest {p} ({exc.strerror or exc}); check its permissions") from None
    if not isinstance(data, dict):
        raise BadInputError(f"manifest {p} holds a JSON {type(data).__name__}, expected an object; it was not "
                            f"written by deploykit (or was edited): re-export it")
    version = data.get("schema_version")
    if version is None:
        raise BadInputError(f"manifest {p} has no schema_version, so it was not written by deploykit (or was "
                            f"edited); re-export the model with `deploykit export`")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BadInputError(f"manifest {p} has schema_version {version!r}, expected a positive int; re-export it")
    if version > SCHEMA_VERSION:
        raise BadInputError(f"manifest {p} has schema_version {version}; this deploykit reads "
                            f"versions <= {SCHEMA_VERSION}: upgrade deploykit")
    for key in ("inputs", "outputs"):
        _check_specs(p, key, data.get(key))
    _check_records(p, data)
    return data


def _check_records(p: Path, data: dict[str, Any]) -> None:
    """Parse the typed pre/post-processing records once at load, so a bad one fails here, naming the field.

    A schema 1 manifest's records are replaced (in memory) by their schema 2 form, so whatever is
    written from it (an engine manifest, a patched model's) is a valid schema 2 manifest.
    """
    from .records import RECORDS_SINCE, postprocess_of, preprocess_of

    try:
        pre = preprocess_of({"schema_version": data["schema_version"], "preprocess": data.get("preprocess") or {}})
        post = postprocess_of(data)
    except BadInputError as exc:
        raise BadInputError(f"{p}: {exc}") from None
    if data["schema_version"] < RECORDS_SINCE:
        if pre is not None:
            data["preprocess"] = pre.to_json()
        if post is not None:
            data["postprocess"] = post.to_json()


def _check_specs(p: Path, key: str, specs: Any) -> None:
    if not isinstance(specs, list) or not specs:
        raise BadInputError(f"manifest {p}: '{key}' is {'missing' if specs is None else repr(specs)[:60]}, expected "
                            f"a non-empty list of tensor specs; re-export the model")
    for i, d in enumerate(specs):
        try:
            if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not isinstance(d.get("shape"), list):
                raise ValueError("each spec needs a 'name' string and a 'shape' list")
            if not all(isinstance(x, int) and not isinstance(x, bool) for x in d["shape"]):
                raise ValueError(f"shape {d['shape']} is not a list of ints")
            TensorSpec.from_json(d)
        except ValueError as exc:
            raise BadInputError(f"manifest {p}: {key}[{i}] is malformed ({exc}); re-export the model") from None


def inputs_of(manifest: Mapping[str, Any]) -> list[TensorSpec]:
    """The manifest's input specs as TensorSpec objects."""
    return [TensorSpec.from_json(d) for d in manifest["inputs"]]


def outputs_of(manifest: Mapping[str, Any]) -> list[TensorSpec]:
    """The manifest's output specs as TensorSpec objects."""
    return [TensorSpec.from_json(d) for d in manifest["outputs"]]


def write_engine_manifest(base: dict, artifact: Path, engine: dict) -> Path:
    """The artifact's manifest: the export manifest plus an `engine` section and the artifact's sha256."""
    from datetime import datetime, timezone

    man = {k: v for k, v in base.items() if k != "schema_version"}
    man["onnx_sha256"] = sha256_file(artifact) if artifact.suffix == ".onnx" else man.get("onnx_sha256")
    man["engine"] = {**engine, "built": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    path = manifest_path_for(artifact)
    write(path, man)
    return path
