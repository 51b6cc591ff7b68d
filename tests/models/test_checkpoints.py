"""Checkpoint layouts round-trip; a misfit names the offending key."""

import numpy as np
import pytest
import torch

from deploykit.errors import CheckpointError
from deploykit.models import checkpoints
from deploykit.models.factory import reference_model

class Evil:  # a pickled object of a non-allow-listed class: weights_only must refuse it
    pass


LAYOUTS = ["opengait", "state_dict", "best_state_dict", "plain", "module"]


def _out(model, x):
    with torch.no_grad():
        return model(x).numpy()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_round_trip_gives_identical_outputs(tmp_path, layout):
    src, _ = reference_model("gaitgl", seed=11)
    path = tmp_path / f"ckpt_{layout}.pt"
    checkpoints.save_upstream_layout(src, path, layout)
    dst, weights = reference_model("gaitgl", seed=99, checkpoint=path)
    x = torch.rand(1, 6, 64, 44)
    np.testing.assert_array_equal(_out(src, x), _out(dst, x))  # same weights -> bit-identical
    assert weights["source"] == "checkpoint" and len(weights["sha256"]) == 64


def test_missing_key_is_named(tmp_path):
    src, _ = reference_model("gaitgl", seed=1)
    sd = src.state_dict()
    del sd["HPP.p"]
    torch.save({"model": sd}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"missing: HPP\.p"):
        reference_model("gaitgl", checkpoint=tmp_path / "m.pt")


def test_misshaped_key_is_named(tmp_path):
    src, _ = reference_model("gaitgl", seed=1)
    sd = src.state_dict()
    sd["Head0.fc_bin"] = torch.zeros(64, 128, 64)
    torch.save({"model": sd}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"Head0\.fc_bin checkpoint \[64, 128, 64\] vs model \[64, 128, 128\]"):
        reference_model("gaitgl", checkpoint=tmp_path / "m.pt")


def test_unexpected_key_is_named_and_allow_mismatch_loads_the_rest(tmp_path):
    src, _ = reference_model("gaitgl", seed=1)
    sd = dict(src.state_dict(), **{"extra.weight": torch.zeros(1)})
    torch.save(sd, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"unexpected: extra\.weight"):
        reference_model("gaitgl", checkpoint=tmp_path / "m.pt")
    model, weights = reference_model("gaitgl", checkpoint=tmp_path / "m.pt", allow_mismatch=True)
    assert "extra.weight" in weights["load_report"]
    assert torch.equal(model.HPP.p, src.HPP.p)


def test_missing_num_batches_tracked_is_tolerated(tmp_path):
    src, _ = reference_model("gaitgl", seed=1)
    sd = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "old.pt")
    model, _ = reference_model("gaitgl", checkpoint=tmp_path / "old.pt")
    x = torch.rand(1, 6, 64, 44)
    np.testing.assert_array_equal(_out(src, x), _out(model, x))


def test_unreadable_and_code_holding_files_are_refused(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        checkpoints.read_state_dict(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoints.read_state_dict(tmp_path / "nope.pt")
    torch.save({"model": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="weights_only"):
        checkpoints.read_state_dict(tmp_path / "evil.pt")


def test_no_state_dict_inside(tmp_path):
    torch.save({"iteration": torch.tensor(3), "note": {}}, tmp_path / "x.pt")
    torch.save({"foo": {"bar": 1}}, tmp_path / "y.pt")
    with pytest.raises(CheckpointError, match="holds no state dict"):
        checkpoints.read_state_dict(tmp_path / "y.pt")
