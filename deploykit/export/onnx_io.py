"""Reading an ONNX file (and the manifest beside it, if any) with errors that name the command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from .. import manifest as mf
from ..errors import BadInputError, require


def load_onnx(path: str | os.PathLike, verb: str) -> tuple[object, Optional[dict]]:
    """(ModelProto, manifest or None) for `path`.

    Args:
        path: an .onnx file.
        verb: the command for error messages, e.g. "deploykit check".

    Raises:
        BadInputError: the file is missing or not a readable ONNX model.
    """
    onnx = require("onnx", "export")
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{verb}: {p} does not exist; give an .onnx file")
    try:
        proto = onnx.load(str(p))
    except Exception as exc:  # onnx raises DecodeError, ValueError, OSError depending on the damage
        raise BadInputError(f"{verb}: {p} is not a readable ONNX model ({str(exc).splitlines()[0]})") from None
    man_path = mf.manifest_path_for(p)
    return proto, (mf.read(man_path) if man_path.is_file() else None)
