"""One line per failure and documented exit codes (issue 11 item 7, issue 9 item 7)."""

import json
import warnings

import click
import numpy as np
import pytest
from click.testing import CliRunner
from rb_helpers import one_line, tiny  # noqa: F401

from deploykit import manifest as mf
from deploykit.cli import _common, main
from deploykit.errors import BadInputError, MissingExtraError


def _cmd(fn):
    @click.command()
    @_common.handle_errors
    def cmd():
        fn()
    return cmd


@pytest.mark.parametrize("exc, code", [(BadInputError("bad"), 2), (MissingExtraError("extra"), 3),
                                       (RuntimeError("boom\nsecond line"), 4), (KeyError("k"), 4)])
def test_exit_codes_and_one_line(exc, code):
    def boom():
        raise exc
    _common.configure()
    res = CliRunner().invoke(_cmd(boom), [])
    assert res.exit_code == code and one_line(res.output) and len(res.output.strip().splitlines()) == 1


def test_unexpected_errors_say_rerun_with_v_and_v_prints_the_traceback():
    def boom():
        raise ZeroDivisionError("x")
    _common.configure(verbose=False)
    res = CliRunner().invoke(_cmd(boom), [])
    assert "unexpected ZeroDivisionError" in res.output and "rerun with -v" in res.output
    _common.configure(verbose=True)
    res = CliRunner().invoke(_cmd(boom), [])
    _common.configure()
    assert res.exit_code == 4 and "Traceback" in res.output


def test_python_warnings_become_one_warning_line():
    def warn():
        warnings.warn("something odd\nmore detail", UserWarning)
    _common.configure()
    res = CliRunner().invoke(_cmd(warn), [])
    assert res.output.strip() == "warning: something odd" and ".py" not in res.output


def test_help_documents_the_exit_codes_and_global_flags():
    res = CliRunner().invoke(main, ["--help"])
    for needle in ("Exit codes", "2  bad input", "4  an unexpected error", "-v, --verbose", "-q, --quiet"):
        assert needle in res.output


def _infer(tiny):
    np.save(tiny.parent / "x.npy", np.zeros((1, 3, 16, 16), np.float32))
    return CliRunner().invoke(main, ["infer", str(tiny), str(tiny.parent / "x.npy")])


def test_infer_with_a_manifest_without_schema_version(tiny):
    d = json.loads(mf.manifest_path_for(tiny).read_text())
    d.pop("schema_version")
    mf.manifest_path_for(tiny).write_text(json.dumps(d))
    res = _infer(tiny)
    assert res.exit_code == 2 and "has no schema_version" in res.output and "upgrade" not in res.output
    assert one_line(res.output)


def test_infer_on_a_corrupt_onnx(tiny):
    tiny.write_bytes(b"not onnx")
    res = _infer(tiny)
    assert res.exit_code == 2 and "does not match its manifest" in res.output and one_line(res.output)


def test_infer_with_an_unexpected_manifest_shape_is_one_line(tiny):
    mf.manifest_path_for(tiny).write_text('{"schema_version": 1, "inputs": {"x": 1}}')
    res = _infer(tiny)
    assert res.exit_code == 2 and "'inputs' is" in res.output and one_line(res.output)


def test_a_safetensors_checkpoint_gets_one_consistent_fix(tmp_path):
    header = b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    (tmp_path / "m.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0\0\0\0")
    res = CliRunner().invoke(main, ["export", "gaitset", "--checkpoint", str(tmp_path / "m.safetensors"),
                                    "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "is a safetensors file" in res.output and "torch.save(st.load_file(" in res.output
    assert "weights_only" not in res.output and one_line(res.output)


def test_quiet_keeps_results_and_warnings_only(tmp_path, tiny):
    res = CliRunner().invoke(main, ["-q", "build-engine", str(tiny), "--backend", "onnxruntime",
                                    "--out", str(tmp_path / "e")])
    assert res.exit_code == 0 and "backend:" not in res.output and "wrote" in res.output


def test_infer_into_an_unwritable_out_fails_before_inference(tmp_path, tiny):
    (tmp_path / "file").write_text("")
    np.save(tiny.parent / "x.npy", np.zeros((1, 3, 16, 16), np.float32))
    res = CliRunner().invoke(main, ["infer", str(tiny), str(tiny.parent / "x.npy"),
                                    "--out", str(tmp_path / "file" / "r.json")])
    assert res.exit_code == 2 and "cannot write into the folder of --out" in res.output and one_line(res.output)


def test_patch_into_an_unwritable_output_fails_in_one_line(tmp_path, tiny):
    (tmp_path / "file").write_text("")
    res = CliRunner().invoke(main, ["patch", str(tiny), str(tmp_path / "file" / "o.onnx"), "--no-patch"])
    assert res.exit_code == 2 and "OUT.onnx" in res.output and one_line(res.output)


def test_patch_writes_the_onnx_and_its_manifest_as_one_set(tmp_path, tiny):
    from deploykit.runtime import Engine

    res = CliRunner().invoke(main, ["patch", str(tiny), str(tmp_path / "p.onnx"), "--no-patch"])
    assert res.exit_code == 0, res.output
    assert Engine.load(tmp_path / "p.onnx").path.name == "p.onnx"
    assert "p.onnx" in json.loads((tmp_path / "p.manifest.json").read_text())["artifact_set"]["members"]


@pytest.mark.slow
def test_allow_mismatch_says_so_on_the_terminal(tmp_path):
    import torch

    from deploykit import models

    sd = models.build("gaitset").state_dict()
    sd.pop(next(iter(sd)))
    torch.save(sd, tmp_path / "partial.pt")
    res = CliRunner().invoke(main, ["export", "gaitset", "--frames", "10", "--checkpoint", str(tmp_path / "partial.pt"),
                                    "--allow-mismatch", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "warning: --allow-mismatch: the checkpoint did not fit (1 missing" in res.output
    assert "RANDOM weights" in res.output
