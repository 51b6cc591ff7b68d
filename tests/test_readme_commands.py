"""Every code block of the README, checked as far as this machine can (as Polygraphy's test_examples does).

- `bash scripts/main.sh` (the main job) runs end to end (slow); `bash scripts/test.sh` is this suite.
- Every `deploykit ...` line of every block is parsed by the real CLI (`--help` appended, so nothing
  runs): a renamed verb or option fails here. The files they name (checkpoints, datasets, Jetson
  engines) are not here, so those commands are not run; the verbs themselves are run by tests/cli/.
- Every script a block names exists; every `pip install 'deploykit[X]'` names an extra of pyproject.toml.
- Every Python block compiles, and every name it imports from deploykit exists. The blocks use
  placeholders (`clip`, `boxes`, engines on disk), so they are not executed.
"""

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def _blocks():
    return [(lang, body) for lang, body in FENCE.findall((ROOT / "README.md").read_text())]


def _shell_lines():
    """Every command line of the shell blocks: comments dropped, `\\` continuations joined."""
    for lang, body in _blocks():
        if lang not in ("bash", "text", "sh", ""):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                yield line


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


def _deploykit_commands():
    for line in _shell_lines():
        first = line.split()[0]
        if first not in ("deploykit", ".venv-serve/bin/deploykit"):
            continue
        words = shlex.split(line)
        if words:
            words = re.sub(r"\[[^\]]*\]", " ", " ".join(words)).split()  # optional parts: `[--flip]`
            yield words[1:]


def test_readme_has_the_blocks_this_test_reads():
    langs = [lang for lang, _ in _blocks()]
    assert langs.count("bash") >= 8 and langs.count("python") >= 4
    assert len(list(_deploykit_commands())) >= 40


@pytest.mark.parametrize("args", list(_deploykit_commands()), ids=lambda a: " ".join(a)[:60])
def test_every_readme_deploykit_command_parses(args):
    from click.testing import CliRunner

    from deploykit.cli import main

    res = CliRunner().invoke(main, [*args, "--help"])
    assert res.exit_code == 0 and "Usage:" in res.output, res.output


def test_every_script_and_extra_the_readme_names_exists():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    scripts, pips = 0, 0
    for line in _shell_lines():
        for path in re.findall(r"(?:^|\s)((?:\./)?scripts/[\w./-]+\.(?:sh|py))", line):
            assert (ROOT / path).is_file(), f"README names {path}, which is not in the repository"
            scripts += 1
        for extra in re.findall(r"pip install '?deploykit\[([\w,-]+)\]", line):
            assert set(extra.split(",")) <= set(extras), f"README installs deploykit[{extra}]"
            pips += 1
    assert scripts >= 4 and pips >= 1


def test_every_readme_python_block_compiles_and_its_imports_exist():
    import importlib

    blocks = [body for lang, body in _blocks() if lang == "python"]
    for body in blocks:
        tree = ast.parse(body)  # a SyntaxError fails here
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deploykit"):
                mod = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(mod, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), (
                        f"README imports {alias.name} from {node.module}, which has no such name")

