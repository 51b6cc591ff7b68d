"""The runtime runs on a Jetson without PyTorch: it must import and run with torch blocked."""

import subprocess
import sys
from importlib import metadata

from conftest import BLOCK_TORCH


def test_runtime_imports_without_torch():
    code = BLOCK_TORCH + ("import deploykit.runtime, deploykit.manifest\n"
                          "import deploykit.runtime.pose, deploykit.runtime.gait, deploykit.runtime.reid\n"
                          "import deploykit.runtime.match, deploykit.runtime.imageops, deploykit.runtime.results\n"
                          "import deploykit.runtime.coco_eval, deploykit.runtime.match.faiss_gallery\n"
                          "import deploykit.runtime.batching, deploykit.runtime.infer, deploykit.runtime.media\n"
                          "import deploykit.runtime.gait_windows, deploykit.runtime.reid_pose\n"
                          "import deploykit.runtime.pose.detections, deploykit.runtime.pose.pipeline\n"
                          "print('ok', 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok False"


def test_runtime_runs_an_engine_without_torch(tmp_path):
    from deploykit.export import OnnxFromModel

    res = OnnxFromModel("gaitgl", frames=3)(tmp_path)
    code = BLOCK_TORCH + f"""
import numpy as np
from deploykit.runtime import Engine
with Engine.load({str(res.onnx_path)!r}) as e:
    out = e.infer({{"sils": np.random.rand(1, 3, 64, 44).astype(np.float32)}})
print(out["embeddings"].shape, "torch" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(1, 128, 64) False"


def test_models_without_torch_name_the_extra():
    code = BLOCK_TORCH.replace(' or name.startswith("deploykit.models")', "") + """
try:
    import deploykit.models
except ImportError as e:
    print(e)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'deploykit[export]'" in proc.stdout


def test_base_install_does_not_require_torch():
    reqs = metadata.requires("deploykit") or []
    base = [r for r in reqs if "extra ==" not in r]
    assert base, "the base install should require the runtime's packages"
    assert not any(r.lower().startswith(("torch", "onnx-graphsurgeon", "onnx ", "onnx>", "onnx=")) for r in base), base
    assert any(r.startswith("onnxruntime") for r in base)
