"""Hand-made graphs for the calibration tests."""

import numpy as np


def tiny_convnet(path, seed=0, cout=(8, 4)):
    """x [1, 3, 16, 16] -> Conv(3->8) -> Relu -> Conv(8->4) -> y, written with onnx.helper (IR 10)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((cout[0], 3, 3, 3)).astype(np.float32) * 0.3
    w2 = rng.standard_normal((cout[1], cout[0], 3, 3)).astype(np.float32) * 0.3
    b1 = rng.standard_normal(cout[0]).astype(np.float32) * 0.1
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["h"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2"], ["y"], name="conv2", pads=[1, 1, 1, 1])]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout[1], 16, 16])],
                          [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
                           numpy_helper.from_array(w2, "w2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path


def tiny_feeds(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)} for _ in range(n)]



def tiny_scoped_chain(path, blocks=3, seed=0):
    """x [1, 4, 8, 8] -> blocks x (Conv -> Relu -> Conv -> Relu) -> y, nodes named by module scope as the
    PyTorch exporter names them (`/block1/conv2/Conv`), so the coarse sweep can group them."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, x = [], [], "x"
    for b in range(blocks):
        for c in (1, 2):
            w = f"block{b}.conv{c}.weight"
            inits.append(numpy_helper.from_array((rng.standard_normal((4, 4, 3, 3)) * 0.25).astype(np.float32), w))
            nodes.append(helper.make_node("Conv", [x, w], [f"/block{b}/conv{c}/Conv_output_0"],
                                          name=f"/block{b}/conv{c}/Conv", pads=[1, 1, 1, 1]))
            x = f"/block{b}/conv{c}/Conv_output_0"
            out = "y" if (b, c) == (blocks - 1, 2) else f"/block{b}/relu{c}/Relu_output_0"
            nodes.append(helper.make_node("Relu", [x], [out], name=f"/block{b}/relu{c}/Relu"))
            x = out
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path


def chain_feeds(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.uniform(-1, 1, (1, 4, 8, 8)).astype(np.float32)} for _ in range(n)]
