"""The README's main command, run as a user runs it (setup is skipped: this venv is already set up)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_main_job(tmp_path):
    venv = Path(sys.prefix)
    (venv / ".deploykit-installed").touch()  # the suite runs inside an installed venv
    env = dict(os.environ, DEPLOYKIT_VENV=str(venv), OUT_DIR=str(tmp_path / "artifacts"))
    proc = subprocess.run(["bash", "scripts/main.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1200)
    out = tmp_path / "artifacts"
    # the gait proxy: FP32 and every INT8 engine (ONNX Runtime U8S8, OpenVINO S8S8) pass their gates
    # (benchmarks/int8_accuracy.md: centred cosine 0.991 / 0.988 with percentile ranges)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    int8 = [json.loads((out / f).read_text()) for f in ("gaitset.int8.parity.json", "gaitset.openvino.int8.parity.json")]
    assert all(r["passed"] for r in int8)
    assert proc.stdout.count("\nPASS") == 3, proc.stdout
    assert proc.stdout.count("centred_cosine") >= 3 and "nn_agreement" in proc.stdout and "labels given" in proc.stdout
    assert "| gaitset.openvino.int8.onnx |" in proc.stdout and "speed-up vs torch" in proc.stdout
    for f in ("gaitset.onnx", "gaitset.manifest.json", "gaitset.int8.onnx", "gaitset.int8.manifest.json",
              "gaitset.openvino.int8.onnx", "gaitset.calib.cache", "gaitset.parity.json", "gaitset.bench.json"):
        assert (out / f).is_file(), f
    auto = json.loads((out / "gaitset.int8.manifest.json").read_text())["engine"]
    chosen = json.loads((out / "gaitset.openvino.int8.manifest.json").read_text())["engine"].get("auto") or auto.get("auto")
    assert chosen and set(chosen["candidates"]) == {"onnxruntime", "openvino"}


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/test.sh" in ci
    assert "bash scripts/main.sh" in readme
