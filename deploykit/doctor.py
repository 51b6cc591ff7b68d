"""What this machine can run: library versions, the GPU, and which backends are usable (no torch).

`deploykit doctor` prints it; `collect()` returns it as plain data. Every probe is guarded: a
probe that fails (no driver, an old cuda-python that cannot dlopen libcuda) is reported with its
reason, never raised.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any, Optional

# distribution name -> import name, in the order doctor prints them
PACKAGES = {"numpy": "numpy", "onnxruntime": "onnxruntime", "onnxruntime-gpu": "onnxruntime",
            "openvino": "openvino", "tensorrt": "tensorrt", "cuda-python": "cuda", "torch": "torch",
            "onnx": "onnx", "faiss-cpu": "faiss"}


# one package under several distribution names (TensorRT's wheels are per CUDA major; on a Jetson
# it is JetPack's system package, with no pip metadata at all)
ALIASES = {"tensorrt": ("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt-cu11")}


def _version(dist: str) -> Optional[str]:
    for name in ALIASES.get(dist, (dist,)):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    module = PACKAGES.get(dist)
    if dist in ALIASES and module and importlib.util.find_spec(module) is not None:
        try:
            return str(importlib.import_module(module).__version__)
        except Exception:  # noqa: BLE001  (a broken install is reported as unknown, not raised)
            return "unknown"
    return None


def _driver() -> Optional[str]:
    """The NVIDIA kernel driver version (desktop: /proc; Jetson: the L4T release file)."""
    proc = Path("/proc/driver/nvidia/version")
    if proc.is_file():
        words = proc.read_text().split()
        return next((w for w in words if w[:1].isdigit() and "." in w), None)
    tegra = Path("/etc/nv_tegra_release")
    return tegra.read_text().split(",")[0].strip() if tegra.is_file() else None


def _gpus() -> tuple[list[dict], str]:
    """[{name, compute_capability}] from nvidia-smi, and how that was decided."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        jetson = Path("/dev/nvhost-ctrl-gpu").exists()
        return ([{"name": "Jetson integrated GPU", "compute_capability": None}] if jetson else [],
                "Jetson GPU device node" if jetson else "no nvidia-smi and no Jetson GPU device node")
    try:
        out = subprocess.run([smi, "--query-gpu=name,compute_cap", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return [], f"nvidia-smi failed ({exc})"
    if out.returncode != 0:
        return [], f"nvidia-smi failed: {(out.stderr or out.stdout).strip().splitlines()[:1]}"
    gpus = [dict(zip(("name", "compute_capability"), (p.strip() for p in line.split(","))))
            for line in out.stdout.strip().splitlines() if line.strip()]
    return gpus, "nvidia-smi"


def _dla_cores() -> tuple[Optional[int], str]:
    if importlib.util.find_spec("tensorrt") is None:
        return None, "tensorrt is not installed"
    try:
        import tensorrt as trt

        builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
        return int(builder.num_DLA_cores), "tensorrt Builder.num_DLA_cores"
    except Exception as exc:  # noqa: BLE001  (any failure of the probe is reported, not raised)
        return None, f"tensorrt probe failed: {type(exc).__name__}: {exc}"


def _ort_providers() -> list[str]:
    try:
        import onnxruntime as ort

        return list(ort.get_available_providers())
    except Exception:  # noqa: BLE001
        return []


def _backends(gpus: list, providers: list) -> list[dict]:
    """Which engine backends can run here, and why not when they cannot: each record's own rows."""
    from .runtime import backend

    facts = {"gpus": gpus, "providers": providers}
    return [row for rec in backend.by_priority() for row in rec.doctor_rows(facts)]


def collect() -> dict[str, Any]:
    """Everything `deploykit doctor` reports, as JSON-ready data."""
    versions = {dist: _version(dist) for dist in PACKAGES}
    gpus, gpu_how = _gpus()
    dla, dla_how = _dla_cores()
    providers = _ort_providers()
    return {"python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
            "packages": versions, "driver": _driver(), "gpus": gpus, "gpu_probe": gpu_how,
            "dla_cores": dla, "dla_probe": dla_how, "onnxruntime_providers": providers,
            "backends": _backends(gpus, providers)}


def lines(report: dict[str, Any]) -> list[str]:
    """The report as the lines `deploykit doctor` prints."""
    out = [f"python           {report['python']} ({report['machine']}, {report['platform']})"]
    out += [f"{dist:<16} {ver or '-'}" for dist, ver in report["packages"].items()]
    out.append(f"driver           {report['driver'] or '-'}")
    gpus = ", ".join(f"{g['name']} (sm {g['compute_capability']})" for g in report["gpus"]) or "none"
    out.append(f"gpu              {gpus}  [{report['gpu_probe']}]")
    out.append(f"dla cores        {report['dla_cores'] if report['dla_cores'] is not None else '-'}  [{report['dla_probe']}]")
    out.append("backends:")
    out += [f"  {'yes' if b['usable'] else 'no ':<4} {b['backend']:<20} {b['why']}" for b in report["backends"]]
    return out
