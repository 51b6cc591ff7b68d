"""`Artifact`: a file and its manifest, what every `XFromY` stage returns and accepts, so stages chain.

    >>> from deploykit.build.build_engine import EngineFromOnnx
    >>> from deploykit.export import OnnxFromModel, PatchedOnnx
    >>> engine = EngineFromOnnx(PatchedOnnx(OnnxFromModel("gaitgl")))()   # export, patch, build: engines/

A stage's input is an `Artifact`, a path (its manifest read from beside it when there is one), or
another stage, which is called only when the outer stage runs (lazily), into the outer stage's
output folder: a chain writes all its files into one folder. Each stage's result keeps what it was
made from in `source`, so the whole chain can be walked back (`artifact.chain()`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Optional, Union

from . import manifest as mf
from .errors import BadInputError


@dataclasses.dataclass
class Artifact:
    """A file a stage wrote (or was given) and its manifest.

    Attributes:
        path: the file (an ONNX model, a Q/DQ model, an engine).
        manifest_path: the manifest beside it; None for a foreign file that has none.
        manifest: the parsed manifest; None without one.
        source: the artifact this one was made from (None for the first of a chain, or a given file).
    """

    path: Path
    manifest_path: Optional[Path] = None
    manifest: Optional[dict] = None
    source: Optional["Artifact"] = dataclasses.field(default=None, kw_only=True)

    @classmethod
    def at(cls, path: Union[str, os.PathLike]) -> "Artifact":
        """The file at `path` with its manifest when one lies beside it."""
        p = Path(path)
        if not p.is_file():
            raise BadInputError(f"{p} does not exist; give an existing file, or a stage that writes it "
                                f"(e.g. OnnxFromModel(NAME))")
        mpath = mf.manifest_path_for(p)
        return cls(p, mpath, mf.read(mpath)) if mpath.is_file() else cls(p)

    def chain(self) -> list["Artifact"]:
        """This artifact and the ones it was made from, first made first."""
        out, a = [], self
        while a is not None:
            out.append(a)
            a = a.source
        return out[::-1]


# what a stage takes: an artifact, a path, or a stage (anything called with an output folder)
Source = Union[Artifact, str, os.PathLike, Callable[..., Artifact]]


def resolve(source: Source, out: Optional[Union[str, os.PathLike]] = None, what: str = "input") -> Artifact:
    """The artifact a stage input stands for; a stage given as input is called now, into `out`.

    Raises:
        BadInputError: a missing file, or something that is neither an artifact, a path nor a stage.
    """
    if isinstance(source, Artifact):
        return source
    if isinstance(source, (str, os.PathLike)):
        return Artifact.at(source)
    if callable(source):
        made = source(out)
        if not isinstance(made, Artifact):
            raise BadInputError(f"the {what} stage {type(source).__name__} returned a {type(made).__name__}, "
                                f"not an Artifact; a stage input must return one")
        return made
    raise BadInputError(f"{what} {source!r} is not an Artifact, a path or a stage; pass one of those")


def folder_of(out: Optional[Union[str, os.PathLike]]) -> Optional[Path]:
    """The folder an output argument names: itself, or a file's parent (`model.patched.onnx`)."""
    if out is None:
        return None
    p = Path(out)
    return p.parent if p.suffix == ".onnx" else p
