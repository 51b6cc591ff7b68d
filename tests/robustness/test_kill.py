"""kill -9 at chosen points of export and build-engine (issue 11 items 1 and 8).

Each case copies a good set, runs the CLI in a subprocess with $DEPLOYKIT_FAULT_KILL naming the point
(artifact_set.fault_point sends SIGKILL to the process itself there) and asserts: the run died of
SIGKILL; nothing that Engine.load accepts has members from two runs; before the commit the old set
still loads unchanged (also when the new set was complete but not yet moved); after a kill inside
the commit the set does not load until the next run (or
`artifact_set.recover`) finishes it; the next run leaves no stage behind.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from rb_helpers import calib_npy, loadable_sets, stages, tiny_model

from deploykit import artifact_set

pytestmark = pytest.mark.slow
TIMEOUT = 300  # seconds per subprocess: bounded even on a loaded machine


def _cli(*args, kill=None):
    env = {**os.environ, "DEPLOYKIT_FAULT_KILL": kill} if kill else dict(os.environ)
    env.pop("DEPLOYKIT_FAULT_KILL", None) if not kill else None
    return subprocess.run([sys.executable, "-m", "deploykit.cli", "-q", *args], capture_output=True, text=True,
                          env=env, timeout=TIMEOUT)


def _export(out, seed, kill=None):
    return _cli("export", "gaitset", "--frames", "10", "--seed", str(seed), "--out", str(out), kill=kill)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp") / "K"
    assert _export(out, 0).returncode == 0
    return out


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("point", ["export:onnx-written", "export:manifest-written", "staged"])
def test_export_killed_before_the_commit_keeps_the_old_set(tmp_path, exported, point):
    out = tmp_path / "K"
    shutil.copytree(exported, out)
    before = _snapshot(out)
    proc = _export(out, 1, kill=point)
    assert proc.returncode == -9, proc.stderr[-500:]
    assert _snapshot(out) == before
    sets = loadable_sets(out)
    assert sets["gaitset.onnx"]["weights"]["seed"] == 0


def test_export_killed_inside_the_commit_never_loads_mixed_and_the_next_run_finishes(tmp_path, exported):
    out = tmp_path / "K"
    shutil.copytree(exported, out)
    proc = _export(out, 1, kill="commit:1")  # the new ONNX is in place, its manifest still staged
    assert proc.returncode == -9
    assert loadable_sets(out) == {}  # neither the old nor a mixed set loads while the commit is pending
    artifact_set.recover(out)  # what the next run does first
    assert loadable_sets(out)["gaitset.onnx"]["weights"]["seed"] == 1 and not stages(out)


def test_the_next_export_cleans_a_killed_runs_leftovers(tmp_path, exported):
    out = tmp_path / "K"
    shutil.copytree(exported, out)
    assert _export(out, 1, kill="export:onnx-written").returncode == -9
    assert stages(out)
    assert _export(out, 2).returncode == 0
    assert not stages(out) and loadable_sets(out)["gaitset.onnx"]["weights"]["seed"] == 2


# -- build-engine --int8 on a tiny hand-made model ----------------------------------------------

def _build(src, out, calib, kill=None):
    return _cli("build-engine", str(src), "--int8", "--backend", "onnxruntime", "--calib-data", str(calib),
                "--calib-method", "max", "--out", str(out), kill=kill)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("bld")
    src = tiny_model(root / "src")
    new_src = tiny_model(root / "src1", seed=1)
    out = root / "E"
    assert _build(src, out, calib_npy(root / "c.npy")).returncode == 0
    return src, new_src, out, calib_npy(root / "c1.npy", seed=1)


def _sources(out):
    return {n: m["engine"]["source_onnx_sha256"] for n, m in loadable_sets(out).items()}


@pytest.mark.parametrize("point", ["calibrate:opt-written", "calibrate:ranges-written", "staged"])
def test_build_killed_before_the_commit_keeps_the_old_set(tmp_path, built, point):
    src, new_src, good, calib = built
    out = tmp_path / "E"
    shutil.copytree(good, out)
    before, old = _snapshot(out), _sources(out)
    proc = _build(new_src, out, calib, kill=point)
    assert proc.returncode == -9, proc.stderr[-500:]
    assert _snapshot(out) == before and _sources(out) == old and len(old) == 2


@pytest.mark.parametrize("point", ["commit:1", "commit:3", "commit:5"])
def test_build_killed_inside_the_commit_never_loads_mixed(tmp_path, built, point):
    src, new_src, good, calib = built
    out = tmp_path / "E"
    shutil.copytree(good, out)
    proc = _build(new_src, out, calib, kill=point)
    assert proc.returncode == -9
    assert loadable_sets(out) == {}  # a pending commit: nothing of this set loads
    assert _build(new_src, out, calib).returncode == 0  # the next run finishes the old commit, then its own
    new = _sources(out)
    assert len(new) == 2 and len(set(new.values())) == 1 and not stages(out)
    man = json.loads((out / "tiny.int8.manifest.json").read_text())
    assert artifact_set.verify_members(out / "tiny.int8.manifest.json") == [] and man["artifact_set"]["members"]
