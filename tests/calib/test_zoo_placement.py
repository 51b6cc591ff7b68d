"""Every S8S8 model of the zoo follows TensorRT's Q/DQ placement and passes `deploykit check` on 10 and 11.

On 8.5 the S8S8 model may carry no error its FP32 model does not: PRTR's transformer exports
LayerNormalization (opset 17), which the 8.5 parser table marks unsupported for the FP32 graph
already; quantization must not add any blocker of its own.

Fast run: the small gait models (zoo_exports.FAST); the whole registry is marked slow. Ranges are
"max" over two of the model's own sample inputs: the placement does not depend on the values.
"""

import tempfile
from pathlib import Path

import onnx
import pytest

from deploykit import models
from deploykit.calib import placement, qdq
from deploykit.calib.ranges import RangeCollector
from deploykit.export import OnnxFromModel
from deploykit.export.lint import check_model
from zoo_exports import TEST_FRAMES, sample_feeds, zoo_params


@pytest.mark.parametrize("name", zoo_params(models.names(), fast={"gaitgl", "gaitset"}))
def test_s8s8_placement_and_check(name):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = TEST_FRAMES if models.spec(name).has_frames else None
        src = OnnxFromModel(name, frames=frames, seed=3)(tmp).onnx_path
        opt = qdq.optimize_for_quantization(src, tmp / "opt.onnx")
        fp32 = onnx.load(str(opt))
        feeds = [sample_feeds(name, fp32, seed=s) for s in (1, 2)]
        rg = RangeCollector(opt).collect(feeds).ranges("max")
        out = qdq.quantize(opt, rg, "s8s8", tmp / "s8.onnx")
        m = onnx.load(str(out))
        assert qdq.count_qdq(out)["QuantizeLinear"] > 0
        assert placement.violations(m, skips=placement.residual_skips(fp32)) == []
        for version in ("10", "11"):
            report = check_model(m, trt_version=version)
            assert report.passed, f"TensorRT {version}:\n{report.table()}"
        errors = lambda r: {(f.code, f.op) for f in r.findings if f.severity == "error"}  # noqa: E731
        added = errors(check_model(m, trt_version="8.5")) - errors(check_model(onnx.load(str(src)), trt_version="8.5"))
        assert not added, f"TensorRT 8.5: quantization added blockers {sorted(added)}"
