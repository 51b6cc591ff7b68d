"""Write a Triton model repository from deploykit engines (`deploykit triton-repo`).

Per engine NAME (its file stem):
  NAME_<platform>/   the production model for the platform that serves it on a GPU host:
                     `onnxruntime_onnx` for .onnx, `tensorrt_plan` for a .plan, and Triton's
                     `openvino` backend for an OpenVINO engine (`build-engine --backend openvino`: an
                     ONNX file whose manifest says `engine.backend: openvino`; the backend reads ONNX
                     with `default_model_filename: "model.onnx"`, per its Quick_Deploy/OpenVINO
                     tutorial). None is executed here: the pytriton wheel has none of these backends;
  NAME/              the same engine as a Python-backend model running it through deploykit.runtime
                     (what a CPU host, and this machine, serves);
  NAME_pre/, NAME_post/, NAME_ensemble/
                     for a single-input pose / re-ID / gait engine with a dynamic batch: Python-backend
                     pre/post models and the ensemble chaining NAME_pre -> NAME -> NAME_post
                     (`ensemble.py`, `stages.py`); other engines get none, with the reason in `notes`.
Each holds `config.pbtxt`, `1/<artifact>`, and the engine's manifest and licence beside it.
`max_batch_size` is the engine's dynamic batch max (`manifest.dynamic_batch`); a static engine gets
0 (no batching) and its full shapes. Layout: https://github.com/triton-inference-server/server
docs/user_guide/model_repository.md and model_configuration.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from .. import manifest as mf
from ..atomic import fsync_dir
from ..errors import BadInputError
from .ensemble import STAGE_MODEL_PY, TRITON_DTYPE, ensemble_models, tensor_line

_PLATFORM = {".onnx": "onnxruntime_onnx", ".plan": "tensorrt_plan", ".engine": "tensorrt_plan"}
_ARTIFACT_NAME = {"onnxruntime_onnx": "model.onnx", "tensorrt_plan": "model.plan", "openvino": "model.onnx"}
MODEL_PY = "from deploykit.serve.python_model import TritonPythonModel  # noqa: F401  (Triton loads this class)\n"


def model_name(engine: Path) -> str:
    """Triton model name from the engine's stem: letters, digits, `_` and `-` only."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", engine.stem)


def batching(manifest: Mapping[str, Any]) -> tuple[int, list[int]]:
    """(max_batch_size, preferred sizes) from `manifest.dynamic_batch`; (0, []) for a static engine."""
    dyn = manifest.get("dynamic_batch")
    if not dyn:
        return 0, []
    mx, opt = int(dyn["max"]), int(dyn.get("opt", dyn["max"]))
    return mx, sorted({opt, mx})


def _tensor(spec: mf.TensorSpec, batched: bool, where: str) -> str:
    if spec.dtype not in TRITON_DTYPE:
        raise BadInputError(f"{where}: tensor {spec.name} has dtype {spec.dtype}, which has no Triton type here "
                            f"(known: {sorted(TRITON_DTYPE)})")
    return tensor_line(spec.name, spec.dtype, list(spec.shape[1:] if batched else spec.shape))


def platform_of(engine: Path, manifest: Mapping[str, Any]) -> str:
    """"onnxruntime_onnx", "tensorrt_plan" or "openvino" (an .onnx whose manifest names the openvino backend)."""
    if engine.suffix == ".onnx" and (manifest.get("engine") or {}).get("backend") == "openvino":
        return "openvino"
    return _PLATFORM[engine.suffix]


def _kind(platform: str, gpu: bool) -> str:
    # Triton's OpenVINO backend runs on the CPU only: KIND_GPU would fail its model load
    return "KIND_GPU" if gpu and platform != "openvino" else "KIND_CPU"


def config_text(name: str, manifest: Mapping[str, Any], *, platform: Optional[str], kind: str, count: int,
                queue_delay_us: int, parameters: Optional[Mapping[str, str]] = None) -> str:
    """config.pbtxt text (protobuf text format of Triton's ModelConfig).

    Args:
        platform: e.g. "onnxruntime_onnx"; "openvino" (a backend, not a platform, in Triton's terms);
            None for the Python backend.
        kind: instance_group kind, "KIND_GPU" or "KIND_CPU".
    """
    mx, preferred = batching(manifest)
    where = f"model {name}"
    if platform == "openvino":  # the backend's default file is model.xml (IR); ours is the engine's ONNX
        head = ['backend: "openvino"', f'default_model_filename: "{_ARTIFACT_NAME[platform]}"']
    else:
        head = [f'platform: "{platform}"' if platform else 'backend: "python"']
    lines = [f'name: "{name}"', *head, f"max_batch_size: {mx}",
             "input [", ",\n".join(_tensor(s, mx > 0, where) for s in mf.inputs_of(manifest)), "]",
             "output [", ",\n".join(_tensor(s, mx > 0, where) for s in mf.outputs_of(manifest)), "]",
             f"instance_group [ {{ kind: {kind} count: {int(count)} }} ]"]
    if mx > 0:
        lines.append(f"dynamic_batching {{ preferred_batch_size: [ {', '.join(map(str, preferred))} ] "
                     f"max_queue_delay_microseconds: {int(queue_delay_us)} }}")
    for k, v in (parameters or {}).items():
        lines.append(f'parameters {{ key: "{k}" value {{ string_value: "{v}" }} }}')
    return "\n".join(lines) + "\n"


def _add_ensemble(repo: Path, name: str, engine: Path, manifest: Mapping[str, Any], instances: int,
                  notes: list[str], engine_model: str) -> list[str]:
    """NAME_pre, NAME_post, NAME_ensemble where the engine allows (else a line in `notes`)."""
    mname = mf.manifest_path_for(engine).name
    try:
        configs = ensemble_models(name, manifest, mname, instances, engine_model)
    except BadInputError as exc:
        notes.append(f"{name}: no ensemble ({exc})")
        return []
    for model, cfg in configs.items():
        d = repo / model
        (d / "1").mkdir(parents=True)
        if not model.endswith("_ensemble"):  # the ensemble has no code; its version folder stays empty
            shutil.copy2(mf.manifest_path_for(engine), d / "1" / mname)
            (d / "1" / "model.py").write_text(STAGE_MODEL_PY)
        (d / "config.pbtxt").write_text(cfg)
        (d / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        (d / "LICENCE.txt").write_text(_licence_text(manifest))
    return list(configs)


def _licence_text(manifest: Mapping[str, Any]) -> str:
    model = manifest.get("model") or {}
    return (f"{model.get('name', '?')}: {model.get('licence', 'licence not recorded in the manifest')}\n"
            f"upstream: {model.get('upstream', '?')}\nweights: {(manifest.get('weights') or {}).get('source', '?')}\n")


def _add_model(repo: Path, name: str, engine: Path, manifest: Mapping[str, Any], artifact_name: str,
               config: str, model_py: bool) -> None:
    d = repo / name
    (d / "1").mkdir(parents=True)
    shutil.copy2(engine, d / "1" / artifact_name)
    if artifact_name == engine.name:  # the Python model loads it with its manifest beside it
        shutil.copy2(mf.manifest_path_for(engine), d / "1" / mf.manifest_path_for(engine).name)
        (d / "1" / "model.py").write_text(MODEL_PY)
    (d / "config.pbtxt").write_text(config)
    (d / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (d / "LICENCE.txt").write_text(_licence_text(manifest))


def _load(engine: Path) -> dict[str, Any]:
    if not engine.is_file():
        raise BadInputError(f"engine {engine} does not exist; export one with `deploykit export NAME "
                            f"--dynamic-batch MAX` (Triton batches only over a dynamic batch axis)")
    if engine.suffix not in _PLATFORM:
        raise BadInputError(f"engine {engine}: suffix {engine.suffix!r} is not one Triton serves here "
                            f"(known: {sorted(_PLATFORM)})")
    mpath = mf.manifest_path_for(engine)
    if not mpath.is_file():
        raise BadInputError(f"engine {engine} has no manifest {mpath.name} beside it; copy it next to the engine")
    return mf.read(mpath)


def write_repository(engines: Sequence[str | os.PathLike], out: str | os.PathLike, *, instances: int = 1,
                     gpu: bool = True, queue_delay_us: int = 2000, force: bool = False,
                     notes: Optional[list[str]] = None, ensemble_via: str = "python") -> list[str]:
    """Write the repository `out` (atomically: built beside it, then renamed); returns the model names.
    `notes` (if given) receives one line per engine that got no ensemble, saying why. The ensembles'
    engine step is the Python-backend model (`ensemble_via="python"`, what this machine serves) or
    the production one (`"production"`: NAME_onnxruntime / NAME_tensorrt / NAME_openvino, for a
    host whose tritonserver has that backend).

    Raises:
        BadInputError: a missing engine or manifest, duplicate names, an existing `out` without force.
    """
    if not engines:
        raise BadInputError("no ENGINE given; pass one or more .onnx / .plan files with manifests beside them")
    out = Path(out)
    if out.exists() and not force:
        raise BadInputError(f"{out} exists; pass --force to replace it, or another --out")
    if ensemble_via not in ("python", "production"):
        raise BadInputError(f"--ensemble-via {ensemble_via!r} is not one of python, production")
    if instances < 1:
        raise BadInputError(f"--instances {instances} must be >= 1")
    plans = [(Path(e), _load(Path(e))) for e in engines]
    names = [model_name(p) for p, _ in plans]
    if len(set(names)) != len(names):
        raise BadInputError(f"engines {names} give duplicate model names; rename the files so their stems differ")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    written: list[str] = []
    notes = [] if notes is None else notes
    try:
        for (engine, man), name in zip(plans, names):
            platform = platform_of(engine, man)
            prod = f"{name}_{platform.split('_')[0]}"
            _add_model(tmp, prod, engine, man, _ARTIFACT_NAME[platform],
                       config_text(prod, man, platform=platform, kind=_kind(platform, gpu),
                                   count=instances, queue_delay_us=queue_delay_us), model_py=False)
            _add_model(tmp, name, engine, man, engine.name,
                       config_text(name, man, platform=None, kind="KIND_CPU", count=instances,
                                   queue_delay_us=queue_delay_us, parameters={"engine_file": engine.name}),
                       model_py=True)
            written += [prod, name]
            written += _add_ensemble(tmp, name, engine, man, instances, notes,
                                     prod if ensemble_via == "production" else name)
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written


def _replace(tmp: Path, out: Path) -> None:
    """Swap the finished `tmp` in for `out` (a reader sees the old or the new repository, never half)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
    os.rename(tmp, out)
    fsync_dir(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
