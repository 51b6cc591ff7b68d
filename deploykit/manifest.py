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

SCHEMA_VERSION = 1
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
    """`dir/name.onnx` -> `dir/name.manifest.json` (same rule for .plan and other artifacts)."""
    p = Path(artifact)
    return p.with_name(p.name.rsplit(".", 1)[0] + ".manifest.json")


def write(path: str | os.PathLike, manifest: Mapping[str, Any]) -> None:
    """Write a manifest atomically, stamping the schema version."""
    data = {"schema_version": SCHEMA_VERSION, **manifest}
    atomic.write_json(path, data)


def read(path: str | os.PathLike) -> dict[str, Any]:
    """Read and minimally validate a manifest.

    Raises:
        BadInputError: the file is missing, not JSON, or from a newer schema.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise BadInputError(f"manifest {p} does not exist; every artifact needs its manifest beside it, "
                            f"re-export with `deploykit export`") from None
    except json.JSONDecodeError as exc:
        raise BadInputError(f"manifest {p} is not valid JSON ({exc}); re-export it") from None
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise BadInputError(f"manifest {p} has schema_version {version!r}; this deploykit reads "
                            f"versions <= {SCHEMA_VERSION}: upgrade deploykit")
    return data


def inputs_of(manifest: Mapping[str, Any]) -> list[TensorSpec]:
    """The manifest's input specs as TensorSpec objects."""
    return [TensorSpec.from_json(d) for d in manifest["inputs"]]


def outputs_of(manifest: Mapping[str, Any]) -> list[TensorSpec]:
    """The manifest's output specs as TensorSpec objects."""
    return [TensorSpec.from_json(d) for d in manifest["outputs"]]
