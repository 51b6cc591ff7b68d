"""Zoo models exported once per test session (small frame counts), for the patch and lint tests."""

from __future__ import annotations

import functools
import tempfile

import onnx
import pytest

# Frames for test exports: enough for every gait model (GaitGL's LTA folds 3 frames into 1).
TEST_FRAMES = 6
# Models whose export and checks take a few seconds here; every other registered model is `slow`.
FAST = frozenset({"gaitgl", "gaitset", "gaitbase", "smplgait", "gaitpart"})


@functools.lru_cache(maxsize=None)
def raw_export(name: str, frames: int = TEST_FRAMES, seed: int = 3) -> bytes:
    """`name` exported without any graph patch, as serialized ONNX (cached per session)."""
    from deploykit import models
    from deploykit.export import OnnxFromModel

    frames = frames if models.spec(name).has_frames else None
    with tempfile.TemporaryDirectory() as tmp:
        return OnnxFromModel(name, frames=frames, seed=seed, patches=[])(tmp).onnx_path.read_bytes()


def raw_model(name: str) -> onnx.ModelProto:
    return onnx.load_from_string(raw_export(name))


def sample_feeds(name: str, model: onnx.ModelProto, seed: int = 100) -> dict:
    """The model's own seeded sample inputs, shaped like `model`'s graph inputs."""
    from deploykit import models
    from deploykit.manifest import TensorSpec

    dtypes = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64", onnx.TensorProto.BOOL: "bool"}
    specs = [TensorSpec(i.name, [d.dim_value for d in i.type.tensor_type.shape.dim],
                        dtypes[i.type.tensor_type.elem_type]) for i in model.graph.input]
    return models.spec(name).sample_inputs(specs, seed=seed)


def zoo_params(names, fast=FAST):
    """pytest params over `names` (default marks: `slow` unless in `fast`); an unknown name is an error."""
    from deploykit import models

    unknown = sorted(set(names) - set(models.names()))
    assert not unknown, f"zoo_params got names that are not registered: {unknown}"
    return [pytest.param(name, marks=[] if name in fast else [pytest.mark.slow], id=name) for name in sorted(names)]
