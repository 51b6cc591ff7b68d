"""`deploykit export --patch/--no-patch` and `deploykit patch` as a user runs them."""

import hashlib
import json

from conftest import run_cli


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_applies_default_patches_and_records_them(tmp_path):
    out = tmp_path / "art"
    proc = run_cli("export", "gaitgl", "--frames", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "graph patches applied: gem-fp16 x1, focal-fold x3, cleanup x1" in proc.stderr
    man = json.loads((out / "gaitgl.manifest.json").read_text())
    assert [p["name"] for p in man["patches"]] == ["gem-fp16", "focal-fold", "cleanup"]
    assert man["onnx_sha256"] == _sha(out / "gaitgl.onnx")  # the sha of the final, patched graph


def test_export_no_patch(tmp_path):
    from click.testing import CliRunner

    from deploykit.cli import main

    result = CliRunner().invoke(main, ["export", "gaitgl", "--frames", "3", "--out", str(tmp_path), "--no-patch"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "gaitgl.manifest.json").read_text())["patches"] == []


def test_bad_patch_options_are_one_line_errors(tmp_path):
    out = tmp_path / "out"
    for args, needle in ((["--patch", "focal_fold"], "did you mean focal-fold"),
                         (["--patch", "cleanup", "--no-patch"], "contradict")):
        proc = run_cli("export", "gaitgl", "--frames", "3", "--out", str(out), *args)
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr
    assert not out.exists()


def test_export_one_patch_then_patch_command(tmp_path):
    src = tmp_path / "src"
    proc = run_cli("export", "gaitgl", "--frames", "3", "--out", str(src), "--patch", "focal-fold")
    assert proc.returncode == 0, proc.stderr
    man = json.loads((src / "gaitgl.manifest.json").read_text())
    assert man["patches"] == [{"name": "focal-fold", "matches": 3}]
    dst = tmp_path / "dst" / "gl.onnx"
    proc = run_cli("patch", str(src / "gaitgl.onnx"), str(dst), "--patch", "gem-fp16", "--patch", "cleanup")
    assert proc.returncode == 0, proc.stderr
    man = json.loads((tmp_path / "dst" / "gl.manifest.json").read_text())
    assert [p["name"] for p in man["patches"]] == ["focal-fold", "gem-fp16", "cleanup"]
    assert man["onnx_sha256"] == _sha(dst)
    assert run_cli("parity", "gaitgl", "--engine", str(dst)).returncode == 0  # still the same model
    bare = tmp_path / "bare.onnx"
    bare.write_bytes((src / "gaitgl.onnx").read_bytes())
    proc = run_cli("patch", str(bare), str(tmp_path / "bare.out.onnx"))
    assert proc.returncode == 0 and (tmp_path / "bare.out.onnx").is_file()
    assert not (tmp_path / "bare.out.manifest.json").exists()
    proc = run_cli("patch", str(tmp_path / "missing.onnx"), str(tmp_path / "x.onnx"))
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")


def test_patch_list():
    proc = run_cli("patch", "--list")
    assert proc.returncode == 0 and "pixelshuffle" in proc.stdout and "opt-in" in proc.stdout
