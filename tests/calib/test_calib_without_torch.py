"""Calibration needs numpy, onnx, onnxruntime and OpenCV, never torch (it may run on the target)."""

import subprocess
import sys
from pathlib import Path

from conftest import BLOCK_TORCH


def test_calibration_runs_without_torch(tmp_path):
    here = Path(__file__).parent
    code = BLOCK_TORCH + f"""
sys.path.insert(0, {str(here)!r})
from tiny_graphs import tiny_convnet, tiny_feeds
from deploykit.calib import RangeCollector, quantize, trt_cache
m = tiny_convnet({str(tmp_path / 'tiny.onnx')!r})
rg = RangeCollector(m).collect(tiny_feeds(4)).ranges("entropy")
quantize(m, rg, "u8s8", {str(tmp_path / 'q.onnx')!r})
trt_cache.write({str(tmp_path / 'c.cache')!r}, rg)
print("ok", "torch" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok False")
