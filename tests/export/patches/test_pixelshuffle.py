"""pixelshuffle: DepthToSpace becomes Reshape-Transpose-Reshape, bit-identical."""

import numpy as np
import onnx
import pytest
from onnx import helper

from patch_helpers import assert_parity_on_model, assert_unchanged, make_model, ops, patched, run, vi, zoo_params

X = np.random.default_rng(2).standard_normal((2, 12, 3, 5)).astype(np.float32)


@pytest.mark.parametrize("mode", ["CRD", "DCR"])
def test_depth_to_space_becomes_shuffles(mode):
    model = make_model([helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, mode=mode)],
                       [vi("x", list(X.shape))], [vi("y", None)])
    out, applied = patched(model, "pixelshuffle")
    assert [a.name for a in applied] == ["pixelshuffle"]
    assert ops(out) == ["Reshape", "Transpose", "Reshape"]
    np.testing.assert_array_equal(run(model, {"x": X})[0], run(out, {"x": X})[0])


def test_leaves_other_graphs_unchanged():
    model = make_model([helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=1),
                        helper.make_node("Relu", ["y"], ["z"])], [vi("x", list(X.shape))], [vi("z", None)])
    assert_unchanged(model, "pixelshuffle")


def test_is_opt_in():
    from deploykit.export import patches

    assert "pixelshuffle" in patches.names() and "pixelshuffle" not in patches.names(default_only=True)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_parity_on_torch_pixelshuffle(tmp_path):
    """nn.PixelShuffle as the TorchScript exporter writes it (DepthToSpace, mode CRD)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.PixelShuffle(2)).eval()
    path = tmp_path / "ps.onnx"
    x = np.random.default_rng(3).standard_normal((1, 3, 6, 4)).astype(np.float32)
    torch.onnx.export(net, (torch.from_numpy(x),), str(path), dynamo=False, opset_version=17, input_names=["x"])
    model = onnx.load(str(path))
    assert "DepthToSpace" in ops(model)
    out, applied = patched(model, "pixelshuffle")
    assert "DepthToSpace" not in ops(out)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(run(model, {"x": x})[0], run(out, {"x": x})[0])
    np.testing.assert_allclose(run(out, {"x": x})[0], ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", zoo_params({"fastpose", "fastpose-res50"}))
def test_parity_on_zoo_models(name):
    assert_parity_on_model(name, "pixelshuffle")
