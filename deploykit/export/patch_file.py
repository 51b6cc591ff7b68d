"""`PatchedOnnx`: an ONNX file (exported by deploykit or anywhere else) -> the same graph, patched.

    >>> PatchedOnnx("gaitgl.onnx", ["focal-fold", "cleanup"])("gaitgl.patched.onnx")
    >>> PatchedOnnx(OnnxFromModel("gaitgl"))()          # export, then artifacts/gaitgl.patched.onnx

The output is written atomically. When the input has a manifest beside it, the output gets one
too: the same contract, with the applied patches appended and the sha256 of the new file.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Optional, Sequence

from .. import artifact_set, atomic, manifest as mf
from ..artifact import Artifact, Source, folder_of, resolve
from ..errors import require
from .onnx_io import load_onnx


@dataclasses.dataclass
class PatchResult(Artifact):
    """What a patch run wrote: an Artifact whose `path` is the patched model.

    Attributes:
        manifest_path: its manifest, or None when the input had none.
        applied: manifest entries of the patches that matched (`{"name", "matches"}`).
    """

    applied: list[dict] = dataclasses.field(default_factory=list)

    @property
    def onnx_path(self) -> Path:
        return self.path


@dataclasses.dataclass
class PatchedOnnx:
    """Lazy stage: calling it with an output path (or folder) patches `src` into it.

    Attributes:
        src: the input `.onnx`: a path, an Artifact, or a stage (called first, into the output's folder).
        patches: patch names; None (default) the default set, [] none.

    `dst` may be a file (`OUT.onnx`), a folder (`NAME.patched.onnx` in it) or None (beside the input).
    """

    src: Source
    patches: Optional[Sequence[str]] = None

    def __call__(self, dst: Optional[str | os.PathLike] = None) -> PatchResult:
        require("onnx", "export")
        from .patches import apply_patches, resolve as resolve_patches

        resolve_patches(self.patches)  # unknown names fail before any work
        source = resolve(self.src, folder_of(dst), "PatchedOnnx")
        src = source.path
        dst = Path(dst) if dst is not None else src.parent
        if dst.suffix != ".onnx":
            dst = dst / f"{src.name.rsplit('.', 1)[0]}.patched.onnx"
        model, man = load_onnx(src, "deploykit patch")
        patched, applied = apply_patches(model, self.patches)
        entries = [a.to_json() for a in applied]
        if man is None:
            atomic.write_bytes(dst, patched.SerializeToString())
            return PatchResult(dst, None, None, entries, source=source)
        man = {k: v for k, v in man.items() if k not in ("schema_version", "artifact_set")}
        man["patches"] = list(man.get("patches", [])) + entries
        dst_man = mf.manifest_path_for(dst)
        with artifact_set.staged(dst.parent, dst.stem, "OUT.onnx") as (stage, _):  # ONNX + manifest together
            (stage / dst.name).write_bytes(patched.SerializeToString())
            man["onnx_sha256"] = mf.sha256_file(stage / dst.name)
            mf.write(stage / dst_man.name, man)
        return PatchResult(dst, dst_man, mf.read(dst_man), entries, source=source)
