"""The committed gait proxy (proxies/gaitset-proxy.pt, made by scripts/train_proxy.py): it loads
strictly, exports through the normal --checkpoint path, and in ONNX Runtime FP32 recognises held-out
synthetic walkers far better than chance and than the same architecture with random weights,
without being perfect (so INT8/FP16 damage can show on it)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
PROXY = ROOT / "proxies" / "gaitset-proxy.pt"
# a small held-out set, not the one train_proxy.py reports on: other identities (seed 2000)
HELDOUT = dict(num_ids=12, seqs_per_id=4, frames=30, seed=2000)


def _rank1(emb: np.ndarray, ids: np.ndarray) -> float:
    from deploykit.runtime.match import distance, evaluate

    gal = np.arange(len(ids)) % HELDOUT["seqs_per_id"] == 0  # gallery: each walker's first sequence
    d = distance(emb[~gal], emb[gal], "euclidean_per_part_mean")
    return float(evaluate(d, ids[~gal], ids[gal])["cmc"][0])


def test_proxy_is_small_fp16_and_loads_strictly():
    import torch

    from deploykit import models
    from deploykit.models.checkpoints import load_into, read_state_dict

    assert PROXY.stat().st_size <= 20e6
    raw = torch.load(PROXY, map_location="cpu", weights_only=True)
    assert raw["iteration"] > 0 and "NOT a recognition model" in raw["proxy"]["what"]
    sd = read_state_dict(PROXY)
    assert all(v.dtype == torch.float16 for v in sd.values() if v.is_floating_point())
    report = load_into(models.build("gaitset"), sd)  # raises on any missing/unexpected/misshaped key
    assert report.ok


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("proxy")
    proc = run_cli("export", "gaitset", "--checkpoint", str(PROXY), "--out", str(out), "--frames", "30", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out / "gaitset.onnx"


def _embed(onnx_path, sils):
    from deploykit.runtime import Engine

    with Engine.load(onnx_path) as eng:
        return np.concatenate([eng.infer({"sils": sils[i:i + 1]})["embeddings"] for i in range(len(sils))])


def test_proxy_recognises_heldout_walkers_in_onnxruntime(exported, tmp_path):
    from deploykit.synth import walkers

    manifest = json.loads(exported.with_suffix(".manifest.json").read_text())
    assert "sha256" in json.dumps(manifest["weights"])  # the checkpoint path, not seeded random weights
    sils, ids, _, _ = walkers(**HELDOUT)
    trained = _rank1(_embed(exported, sils), ids)
    proc = run_cli("export", "gaitset", "--out", str(tmp_path), "--frames", "30", cwd=ROOT)  # seeded random
    assert proc.returncode == 0, proc.stderr[-2000:]
    random = _rank1(_embed(tmp_path / "gaitset.onnx", sils), ids)
    # chance is 1/12 = 0.083; 36 probes, so one probe is 0.028. Bounds: the trained proxy must be
    # informative (>= 0.6 and 0.15 above random weights) and not saturated (<= 0.97, one miss at least).
    assert 0.6 <= trained <= 0.97, (trained, random)
    assert trained >= random + 0.15, (trained, random)


@pytest.mark.slow  # two short training runs: about 1 minute idle, 4 on a loaded 2-core machine
def test_train_proxy_is_deterministic(tmp_path):
    import torch

    args = ["gait", "--steps", "2", "--train-ids", "4", "--seqs-per-id", "3", "--p", "2", "--k", "2",
            "--train-frames", "2", "--eval-ids", "3", "--log-every", "1"]
    outs = []
    for k in range(2):
        out = tmp_path / f"p{k}.pt"
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_proxy.py"), *args, "--out", str(out)],
                              capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "held-out" in proc.stdout and "step 2/2" in proc.stdout
        outs.append(torch.load(out, weights_only=True)["model"])
    assert outs[0].keys() == outs[1].keys()
    assert all(torch.equal(outs[0][k], outs[1][k]) for k in outs[0])
