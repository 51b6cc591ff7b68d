"""`deploykit check` on Q/DQ graphs: the int8 zero point Q and DQ share passes; a non-zero one still fails."""

import numpy as np
import pytest
from onnx import TensorProto, helper

from deploykit.export.lint import check_model
from onnx_helpers import init, make_model, vi


def _qdq_conv(zero_point: int):
    """x -> Q -> DQ -> Conv(w -> Q -> DQ, per channel) -> y, with activation zero point `zero_point`."""
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    inits = [init("w", w), init("x_s", np.float32(1 / 127)), init("x_z", np.int8(zero_point)),
             init("w_s", (np.abs(w).max(axis=(1, 2, 3)) / 127).astype(np.float32)), init("w_z", np.zeros(4, np.int8))]
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_s", "x_z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "x_s", "x_z"], ["xd"]),
             helper.make_node("QuantizeLinear", ["w", "w_s", "w_z"], ["wq"], axis=0),
             helper.make_node("DequantizeLinear", ["wq", "w_s", "w_z"], ["wd"], axis=0),
             helper.make_node("Conv", ["xd", "wd"], ["y"], pads=[1, 1, 1, 1])]
    return make_model(nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 8, 8], TensorProto.FLOAT)], inits)


@pytest.mark.parametrize("version", ["8.5", "10", "11"])
def test_symmetric_qdq_passes(version):
    report = check_model(_qdq_conv(0), trt_version=version)
    assert report.passed and report.exit_code == 0, report.table()


@pytest.mark.parametrize("version", ["8.5", "10", "11"])
def test_nonzero_zero_point_still_fails(version):
    report = check_model(_qdq_conv(3), trt_version=version)
    bad = [f for f in report.findings if f.severity == "error"]
    assert report.exit_code == 1 and any("zero point" in f.message for f in bad), report.table()
