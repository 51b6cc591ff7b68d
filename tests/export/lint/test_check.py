"""`deploykit check`: planted problems are found, clean graphs pass, exit codes and formats hold."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import run_cli
from deploykit.errors import BadInputError
from deploykit.export.lint import check_model
from deploykit.export.lint.optable import OpTable
from onnx_helpers import make_model as model_of
from onnx_helpers import vi


def codes(report, severity=None):
    return [f.code for f in report.findings if severity is None or f.severity == severity]


CONV_W = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
CLEAN = model_of([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", ["c"], ["y"])], [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 8, 8])], [CONV_W])


@pytest.mark.parametrize("version", ["8.5", "8.6", "10", "11"])
def test_clean_graph_passes(version):
    report = check_model(CLEAN, trt_version=version)
    assert report.passed and report.exit_code == 0 and codes(report, "error") == []


def test_planted_unsupported_op():
    m = model_of([helper.make_node("Unique", ["x"], ["y"])], [vi("x", [6])], [vi("y", None)])
    report = check_model(m)
    f = next(f for f in report.findings if f.code == "op-unsupported")
    assert f.severity == "error" and f.op == "Unique" and report.exit_code == 1


def test_support_depends_on_version():
    ln = [numpy_helper.from_array(np.ones(8, np.float32), n) for n in ("g", "b")]
    m = model_of([helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)],
                 [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])], ln)
    assert "op-unsupported" in codes(check_model(m, trt_version="8.5"), "error")  # N in 8.5
    assert check_model(m, trt_version="8.6").passed


def test_planted_dynamic_dimension():
    m = model_of([helper.make_node("Relu", ["x"], ["y"])], [vi("x", ["N", 3, 8, 8])], [vi("y", ["N", 3, 8, 8])])
    report = check_model(m)
    f = next(f for f in report.findings if f.code == "dynamic-dim")
    assert f.severity == "error" and f.tensor == "x" and not report.passed


def test_planted_int64_tensor():
    m = model_of([helper.make_node("ArgMax", ["x"], ["i"], axis=1, keepdims=0),
                  helper.make_node("Add", ["i", "one"], ["y"])], [vi("x", [2, 5])], [vi("y", [2], TensorProto.INT64)],
                 [numpy_helper.from_array(np.array(1, np.int64), "one")])
    old, new = check_model(m, trt_version="8.5"), check_model(m, trt_version="10")
    narrowed = next(f for f in old.findings if f.code == "int64-narrowed")
    assert narrowed.severity == "warning" and narrowed.tensor in ("i", "y")
    assert "int64-narrowed" not in codes(new) and "int64" in codes(new, "info")


def test_table_restrictions_by_version():
    # Slice whose axes are computed: "axes must be an initializer" up to 10.1, no restriction in 11.1
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "two"], ["d"]),
             helper.make_node("Sub", ["d", "d"], ["z"]), helper.make_node("Add", ["z", "three"], ["ax"]),
             helper.make_node("Unsqueeze", ["ax", "zero"], ["axes"]),
             helper.make_node("Slice", ["x", "zero", "two1", "axes"], ["y"])]
    inits = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
             (("two", 2), ("three", 3), ("zero", [0]), ("two1", [2]))]
    m = model_of(nodes, [vi("x", [1, 3, 8, 8])], [vi("y", None)], inits)
    r10 = check_model(m, trt_version="10")
    f = next(f for f in r10.findings if f.code == "op-restriction")
    assert f.op == "Slice" and "axes must be an initializer" in f.message and "cleanup" in f.hint
    assert "op-restriction" not in codes(check_model(m, trt_version="11"))


def test_pool_dilations_restriction():
    m = model_of([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2])],
                 [vi("x", [1, 3, 8, 8])], [vi("y", None)])
    assert "op-restriction" in codes(check_model(m, trt_version="11"), "error")


def test_opset_range():
    m = model_of([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [1, 3])], [vi("y", [1, 3])], opset=18)
    assert "opset" in codes(check_model(m, trt_version="8.5"), "error")
    assert check_model(m, trt_version="10").passed


def test_unsupported_dtypes():
    m = model_of([helper.make_node("Cast", ["x"], ["u"], to=TensorProto.UINT8),
                  helper.make_node("Cast", ["u"], ["y"], to=TensorProto.FLOAT)], [vi("x", [1, 3])], [vi("y", [1, 3])])
    f = next(f for f in check_model(m).findings if f.code == "dtype-unsupported")
    assert f.tensor == "u" and "network input or output" in f.message


def test_dla_eligibility():
    w3 = numpy_helper.from_array(np.ones((4, 4, 1, 3, 3), np.float32), "w3")
    ax = numpy_helper.from_array(np.array([2], np.int64), "ax")
    m = model_of([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", ["c"], ["r"]),
                  helper.make_node("Unsqueeze", ["r", "ax"], ["r5"]),               # [1, 4, 1, 8, 8]
                  helper.make_node("Conv", ["r5", "w3"], ["y"], pads=[0, 1, 1, 0, 1, 1])],
                 [vi("x", [1, 3, 8, 8])], [vi("y", None)], [CONV_W, w3, ax])
    report = check_model(m, trt_version="10", dla=True)
    fallbacks = [f for f in report.findings if f.code == "dla-fallback"]
    assert {f.op for f in fallbacks} == {"Unsqueeze", "Conv"}  # the 3-D conv and the reshape leave the DLA
    assert report.summary["dla_eligible"] == "2 of 4 layers" and report.passed
    assert "dla-unavailable" in codes(check_model(m, trt_version="11", dla=True), "error")


def test_fp16_overflow_names_the_op():
    k = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in (("k", 300.0), ("k2", 1000.0))]
    m = model_of([helper.make_node("Mul", ["x", "k"], ["m"]), helper.make_node("Mul", ["m", "m"], ["sq"]),
                  helper.make_node("Div", ["sq", "k2"], ["y"])], [vi("x", [1, 3, 8, 8])], [vi("y", [1, 3, 8, 8])], k)
    report = check_model(m, fp16=True)  # seeded x in [0, 1): (300 x)^2 reaches 9e4 > 65504
    f = next(f for f in report.findings if f.code == "fp16-overflow")
    assert f.op == "Mul" and f.tensor == "sq" and f.severity == "error" and report.exit_code == 1
    assert check_model(m).passed  # without --fp16 nothing blocks the build


def test_optable_is_packaged_data():
    table = OpTable.load()
    assert len(table.rows) > 190 and "onnx-tensorrt" in table.source
    assert table.support("SplitToSequence", "11.1") == "N" and table.support("Attention", "10.1") == "-"
    assert table.restriction("Slice", "8.6") == "axes must be an initializer"  # inherited from 10.1
    assert table.restriction("Slice", "11.1") is None


def test_cli_exit_codes_and_json(tmp_path):
    good, bad = tmp_path / "good.onnx", tmp_path / "bad.onnx"
    onnx.save(CLEAN, str(good))
    onnx.save(model_of([helper.make_node("Unique", ["x"], ["y"])], [vi("x", [6])], [vi("y", None)]), str(bad))
    proc = run_cli("check", str(good))
    assert proc.returncode == 0 and "PASS" in proc.stdout
    proc = run_cli("check", str(bad), "--json", "-")
    assert proc.returncode == 1 and json.loads(proc.stdout)["findings"][0]["code"] == "op-unsupported"
    proc = run_cli("check", str(tmp_path / "missing.onnx"))
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
    proc = run_cli("check", str(good), "--data", str(tmp_path))
    assert proc.returncode == 2 and "--fp16" in proc.stderr


def test_fp16_data_folder(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.full((1, 3, 8, 8), 2.0, np.float32))
    np.savez(tmp_path / "b.npz", x=np.full((1, 3, 8, 8), 3.0, np.float32))
    report = check_model(CLEAN, fp16=True, data=tmp_path)
    assert report.summary["fp16_samples"] == 2 and report.passed
    np.savez(tmp_path / "c.npz", x=np.ones((1, 3, 4, 4), np.float32))
    with pytest.raises(BadInputError, match="shape"):
        check_model(CLEAN, fp16=True, data=tmp_path)
