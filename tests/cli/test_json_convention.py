"""`--json FILE` on every verb that reports, `-` meaning standard output (issue 9 item 7).

Each reporting verb runs with `--json -` in an empty working directory: its standard output must
be one JSON document (the human text went to stderr) and no file named "-" may appear.
"""

import json
import sys
from pathlib import Path

import click
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "robustness"))

from conftest import run_cli  # noqa: E402
from rb_helpers import tiny_model  # noqa: E402
from test_gallery_cases import results  # noqa: E402

from deploykit.cli import main  # noqa: E402

# Every verb is one or the other: a new verb must be put in one of them (the first test fails otherwise).
REPORTING = {"list", "check", "doctor", "bench", "parity", "compare", "gallery search", "gallery evaluate",
             "evaluate market1501", "evaluate casia-b", "evaluate coco-keypoints"}
NOT_REPORTING = {"export", "patch", "build-engine", "infer", "gallery add", "triton-repo", "serve"}


def _verbs(group=main, prefix=""):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _verbs(cmd, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", cmd


def test_every_verb_is_classified_and_reporting_verbs_take_json_file():
    verbs = dict(_verbs())
    assert set(verbs) == REPORTING | NOT_REPORTING, "classify the new verb here"
    for name in REPORTING:
        opt = next((p for p in verbs[name].params if "--json" in getattr(p, "opts", ())), None)
        assert opt is not None, f"`deploykit {name}` has no --json"
        # a value, not a flag: `--json FILE`, and '-' accepted as standard output
        assert not opt.is_flag and opt.metavar == "FILE" and opt.type.allow_dash, name


def _json_stdout(proc, cwd):
    assert proc.returncode in (0, 1), proc.stderr
    assert not (cwd / "-").exists(), "`--json -` created a file named '-'"
    return json.loads(proc.stdout)  # the JSON alone: no table or summary mixed in


@pytest.fixture
def cwd(tmp_path):
    d = tmp_path / "cwd"
    d.mkdir()
    return d


def test_list_doctor_json_dash(cwd):
    rows = _json_stdout(run_cli("list", "--json", "-", cwd=cwd), cwd)
    assert any(r["name"] == "gaitgl" for r in rows)
    assert "backends" in _json_stdout(run_cli("doctor", "--json", "-", cwd=cwd), cwd)


def test_check_and_compare_json_dash_and_file(tmp_path, cwd):
    a = tiny_model(tmp_path / "a", "a", seed=0)
    b = tiny_model(tmp_path / "b", "b", seed=1)
    rep = _json_stdout(run_cli("check", str(a), "--json", "-", cwd=cwd), cwd)
    assert rep["findings"] == [] or all("code" in f for f in rep["findings"])
    rep = _json_stdout(run_cli("compare", str(a), str(a), "--samples", "2", "--json", "-", cwd=cwd), cwd)
    assert rep["passed"] is True and rep["samples"] == 2 and rep["outputs"][0]["name"] == "y"
    # different weights: the same verb must report the failure in its JSON and exit 1
    proc = run_cli("compare", str(a), str(b), "--samples", "2", "--json", str(tmp_path / "c.json"), cwd=cwd)
    assert proc.returncode == 1 and "FAIL" in proc.stdout
    assert json.loads((tmp_path / "c.json").read_text())["passed"] is False


def test_gallery_evaluate_and_search_json_dash(tmp_path, cwd):
    gal = tmp_path / "g.npz"
    assert run_cli("gallery", "add", str(gal), str(results(tmp_path / "a.npz"))).returncode == 0
    rep = _json_stdout(run_cli("gallery", "evaluate", str(gal), str(tmp_path / "a.npz"), "--json", "-", cwd=cwd), cwd)
    assert rep["num_queries"] == 4
    hits = _json_stdout(run_cli("gallery", "search", str(gal), str(tmp_path / "a.npz"), "--json", "-", cwd=cwd), cwd)
    assert [h["matches"][0]["index"] for h in hits] == [0, 1, 2, 3]  # each query finds itself first


def test_json_needs_a_file_name(cwd):
    proc = run_cli("list", "--json", cwd=cwd)
    assert proc.returncode == 2 and "--json" in proc.stderr
