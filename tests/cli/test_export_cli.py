"""`deploykit export` / `list` as a user runs them: bad input is one clear line and writes nothing."""

import json

import pytest

from conftest import run_cli


def _assert_one_line_error(proc, needle):
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


def test_unknown_model(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("export", "gaitgll", "--out", str(out))
    _assert_one_line_error(proc, "did you mean gaitgl")
    assert not out.exists() or not any(out.iterdir())


def test_unreadable_checkpoint(tmp_path):
    out = tmp_path / "out"
    ckpt = tmp_path / "broken.pt"
    ckpt.write_bytes(b"\x00garbage")
    proc = run_cli("export", "gaitgl", "--checkpoint", str(ckpt), "--out", str(out), "--frames", "6")
    _assert_one_line_error(proc, "cannot read checkpoint")
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("frames", ["0", "-3"])
def test_bad_frame_count(tmp_path, frames):
    out = tmp_path / "out"
    proc = run_cli("export", "gaitgl", "--frames", frames, "--out", str(out))
    _assert_one_line_error(proc, "--frames")
    assert not out.exists() or not any(out.iterdir())


def test_export_then_parity_passes(tmp_path):
    out = tmp_path / "art"
    proc = run_cli("export", "gaitgl", "--frames", "6", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "SEEDED RANDOM" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["gaitgl.manifest.json", "gaitgl.onnx"]
    man = json.loads((out / "gaitgl.manifest.json").read_text())
    assert man["inputs"][0]["shape"] == [1, 6, 64, 44] and man["opset"] == 17
    assert man["weights"] == {"source": "random", "seed": 0}
    proc = run_cli("parity", "gaitgl", "--engine", str(out / "gaitgl.onnx"), "--json", str(tmp_path / "p.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((tmp_path / "p.json").read_text())["passed"] is True


def test_list_shows_shapes():
    proc = run_cli("list")
    assert proc.returncode == 0
    assert "gaitgl" in proc.stdout and "1x30x64x44" in proc.stdout


def test_help_explains():
    proc = run_cli("export", "--help")
    assert proc.returncode == 0 and "--frames" in proc.stdout and "SEEDED" not in proc.stdout
