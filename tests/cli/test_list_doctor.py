"""`deploykit list` and `deploykit doctor` run on a runtime-only install (torch blocked)."""

import json
import subprocess
import sys

from conftest import BLOCK_TORCH

from deploykit import models
from deploykit.zoo_index import INDEX, live_rows


def _cli_without_torch(*args):
    code = BLOCK_TORCH + f"import sys; sys.argv = ['deploykit', *{list(args)!r}]\nfrom deploykit.cli import main\nmain()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_committed_index_equals_the_registry():
    # the torch-free `list` reads this file; it must say what the registry says
    assert json.loads(INDEX.read_text()) == live_rows(), "run: python -m deploykit.zoo_index"


def test_list_without_torch_prints_every_model():
    proc = _cli_without_torch("list", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["name"] for r in rows] == models.names()
    gaitgl = next(r for r in rows if r["name"] == "gaitgl")
    assert gaitgl["inputs"][0]["shape"] == [1, 30, 64, 44]


def test_list_family_filter_without_torch():
    proc = _cli_without_torch("list", "--family", "reid")
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert names == models.names("reid")


def test_doctor_without_torch_reports_backends():
    proc = _cli_without_torch("doctor", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["python"] == ".".join(map(str, sys.version_info[:3]))
    ort = next(b for b in report["backends"] if b["backend"] == "onnxruntime (CPU)")
    assert ort["usable"] is True
    trt = next(b for b in report["backends"] if b["backend"] == "tensorrt")
    # no TensorRT can be installed on these machines: doctor must say so, with the extra to install
    assert trt["usable"] is False and "deploykit[trt]" in trt["why"]


def test_doctor_table_and_json_file(tmp_path):
    proc = _cli_without_torch("doctor", "--json", str(tmp_path / "d.json"))
    assert proc.returncode == 0, proc.stderr
    assert "backends:" in proc.stdout and "onnxruntime (CPU)" in proc.stdout
    assert json.loads((tmp_path / "d.json").read_text())["packages"]["numpy"]
