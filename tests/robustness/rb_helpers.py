"""Helpers of the robustness matrix (issue 11): a tiny model with its manifest, and the
one assertion every fault case ends with: no artifact that loads with members from two runs."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "calib"))

from deploykit import artifact_set, manifest as mf  # noqa: E402
from deploykit.errors import BadInputError  # noqa: E402


def tiny_model(folder: Path, name: str = "tiny", seed: int = 0) -> Path:
    """`folder/name.onnx` (x [1,3,16,16] -> y [1,4,16,16]) and its deploykit-style manifest."""
    from tiny_graphs import tiny_convnet

    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = tiny_convnet(folder / f"{name}.onnx", seed=seed)
    mf.write(mf.manifest_path_for(onnx_path), {
        "model": {"name": name, "family": "test"}, "weights": {"source": "random", "seed": seed},
        "inputs": [{"name": "x", "shape": [1, 3, 16, 16], "dtype": "float32"}],
        "outputs": [{"name": "y", "shape": [1, 4, 16, 16], "dtype": "float32"}],
        "preprocess": {}, "postprocess": {}, "onnx_sha256": mf.sha256_file(onnx_path)})
    return onnx_path


@pytest.fixture
def tiny(tmp_path) -> Path:
    return tiny_model(tmp_path / "src")


def calib_npy(path: Path, n: int = 4, seed: int = 0) -> Path:
    np.save(path, np.random.default_rng(seed).uniform(0, 1, (n, 3, 16, 16)).astype(np.float32))
    return path


def artifact_of(manifest_path: Path) -> Path:
    stem = manifest_path.name[: -len(".manifest.json")]
    onnx = manifest_path.with_name(stem + ".onnx")
    return onnx if onnx.exists() or "." not in stem else manifest_path.with_name(stem)


def loadable_sets(folder: Path) -> dict[str, dict]:
    """Every artifact in `folder` that Engine.load accepts, with its manifest; asserts that each
    accepted one is consistent with every member of its set present on disk."""
    from deploykit.runtime import Engine

    ok = {}
    for m in sorted(folder.glob("*.manifest.json")):
        art = artifact_of(m)
        if not art.exists():
            continue
        try:
            Engine.load(art)
        except BadInputError:
            continue
        assert artifact_set.verify_members(m) == [], f"{art.name} loads although its set is mixed"
        ok[art.name] = json.loads(m.read_text())
    return ok


def stages(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{artifact_set.STAGE_PREFIX}*"))


def one_line(text: str) -> bool:
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return len(lines) >= 1 and "Traceback" not in text
