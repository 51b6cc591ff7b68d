"""`PatchedOnnx`: an ONNX file (exported by deploykit or anywhere else) -> the same graph, patched.

    >>> PatchedOnnx("gaitgl.onnx", ["focal-fold", "cleanup"])("gaitgl.patched.onnx")

The output is written atomically. When the input has a manifest beside it, the output gets one
too: the same contract, with the applied patches appended and the sha256 of the new file.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Optional, Sequence

from .. import artifact_set, atomic, manifest as mf
from ..errors import require
from .onnx_io import load_onnx


@dataclasses.dataclass
class PatchResult:
    """What a patch run wrote.

    Attributes:
        onnx_path: the patched model.
        manifest_path: its manifest, or None when the input had none.
        applied: manifest entries of the patches that matched (`{"name", "matches"}`).
    """

    onnx_path: Path
    manifest_path: Optional[Path]
    applied: list[dict]


@dataclasses.dataclass
class PatchedOnnx:
    """Lazy stage: calling it with an output path patches `src` into it.

    Attributes:
        src: the input `.onnx` file.
        patches: patch names; None (default) the default set, [] none.
    """

    src: str | os.PathLike
    patches: Optional[Sequence[str]] = None

    def __call__(self, dst: str | os.PathLike) -> PatchResult:
        require("onnx", "export")
        from .patches import apply_patches, resolve

        resolve(self.patches)  # unknown names fail before any work
        src, dst = Path(self.src), Path(dst)
        model, man = load_onnx(src, "deploykit patch")
        patched, applied = apply_patches(model, self.patches)
        entries = [a.to_json() for a in applied]
        if man is None:
            atomic.write_bytes(dst, patched.SerializeToString())
            return PatchResult(dst, None, entries)
        man = {k: v for k, v in man.items() if k not in ("schema_version", "artifact_set")}
        man["patches"] = list(man.get("patches", [])) + entries
        dst_man = mf.manifest_path_for(dst)
        with artifact_set.staged(dst.parent, dst.stem, "OUT.onnx") as (stage, _):  # ONNX + manifest together
            (stage / dst.name).write_bytes(patched.SerializeToString())
            man["onnx_sha256"] = mf.sha256_file(stage / dst.name)
            mf.write(stage / dst_man.name, man)
        return PatchResult(dst, dst_man, entries)
