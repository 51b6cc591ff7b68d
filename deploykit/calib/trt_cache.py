"""TensorRT's calibration cache, in TensorRT's own text format (implicit INT8 on TensorRT 8.5-10.x).

    TRT-8502-EntropyCalibration2
    sils: 3c010a14
    /conv3d/conv3d.0/Conv_output_0: 3d8f5c29

Line 1 is `TRT-<version>-<algorithm>`; then one `name: <hex>` per tensor, the hex being the
big-endian IEEE-754 float32 bit pattern of the scale, scale = amax / 127 (trtexec's
`readScalesFromCalibrationCache` and ONNX Runtime's TensorRT EP `ReadDynamicRange` read it this way;
the name ends at the last colon). The version is the target TensorRT's `NV_TENSORRT_VERSION`:
major*1000 + minor*100 + patch on 8.x (8.5.2 -> 8502), major*10000 + minor*100 + patch from 10.0
(10.3.0 -> 100300). TensorRT refuses a cache whose header does not match its version or calibrator
algorithm and recalibrates. The cache is for `trtexec --calib` and other tools: deploykit's own
TensorRT builder sets the same ranges as `ITensor.dynamic_range` from ranges.json, which needs no
header and no calibrator (issue 13: a cache-only calibrator also needs the header to match).
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

from .. import atomic
from ..errors import BadInputError
from .ranges import Ranges

ALGORITHMS = ("EntropyCalibration2", "EntropyCalibration", "MinMaxCalibration", "LegacyCalibration")
DEFAULT_TARGET = "8.5.2"  # JetPack 5.1.x, the main consumer of implicit-INT8 caches
_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")


def version_tag(version: str) -> str:
    """TensorRT version string -> the number in the cache header ("8.5.2" -> "8502", "10.3.0" -> "100300")."""
    m = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", str(version))
    if not m:
        raise BadInputError(f"TensorRT version {version!r} is not like 8.5.2 or 10.3.0")
    major, minor, patch = int(m[1]), int(m[2]), int(m[3] or 0)
    return str(major * (1000 if major < 10 else 10000) + minor * 100 + patch)


def scale_hex(scale: float) -> str:
    """The 8 hex digits TensorRT stores for a float32 scale (big-endian bit pattern)."""
    return struct.pack(">f", float(scale)).hex()


def render(ranges: Ranges, trt_version: str = DEFAULT_TARGET, algorithm: str = "EntropyCalibration2") -> str:
    """The cache text for `ranges` (scale = amax / 127 per tensor)."""
    if algorithm not in ALGORITHMS:
        raise BadInputError(f"calibration algorithm {algorithm!r} is not one of {ALGORITHMS}")
    lines = [f"TRT-{version_tag(trt_version)}-{algorithm}"]
    for name, r in ranges.tensors.items():
        if "\n" in name:
            raise BadInputError(f"tensor name {name!r} holds a newline; TensorRT's cache format cannot carry it")
        lines.append(f"{name}: {scale_hex(r.scale)}")
    return "\n".join(lines) + "\n"


def write(path: str | os.PathLike, ranges: Ranges, trt_version: str = DEFAULT_TARGET,
          algorithm: str = "EntropyCalibration2") -> Path:
    """Write the cache atomically; returns the path."""
    atomic.write_bytes(path, render(ranges, trt_version, algorithm).encode())
    return Path(path)


def parse(text: str) -> tuple[str, str, dict[str, float]]:
    """Read a cache: (version tag, algorithm, {tensor name: scale}).

    Raises:
        BadInputError: a malformed header or line (the line number is named).
    """
    lines = text.splitlines()
    if not lines or not _HEADER.match(lines[0].strip()):
        raise BadInputError(f"calibration cache header {lines[0] if lines else ''!r} is not `TRT-<version>-<algorithm>`")
    tag, algo = _HEADER.match(lines[0].strip()).groups()
    scales: dict[str, float] = {}
    for no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, sep, hexval = line.rpartition(": ")
        if not sep or not re.fullmatch(r"[0-9a-fA-F]{8}", hexval.strip()):
            raise BadInputError(f"calibration cache line {no} {line!r} is not `name: <8 hex digits>`")
        scales[name] = struct.unpack(">f", bytes.fromhex(hexval.strip()))[0]
    return tag, algo, scales


def read(path: str | os.PathLike) -> tuple[str, str, dict[str, float]]:
    """`parse` of a file."""
    return parse(Path(path).read_text())
