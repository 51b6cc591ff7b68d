"""Inputs for the FP16 range audit: sample files, or one seeded random sample.

`--data DIR` holds either `*.npz` files (one sample each, one array per graph input name) or one
`<input name>.npy` per graph input (a single sample). Without data, the model's own sampler is
used when the manifest names a registered model and PyTorch is installed (realistic inputs, e.g.
GaitEdge's masks); otherwise floats are seeded uniform in [0, 1) and integers are zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import onnx

from ...errors import BadInputError
from ...manifest import TensorSpec, inputs_of
from .graph import DTYPE_NAMES

_NUMPY = {"FP32": np.float32, "FP16": np.float16, "INT64": np.int64, "INT32": np.int32, "UINT8": np.uint8,
          "BOOL": np.bool_, "DOUBLE": np.float64}


def _graph_inputs(model: onnx.ModelProto) -> dict[str, tuple[list, np.dtype]]:
    inits = {t.name for t in model.graph.initializer}
    out = {}
    for v in model.graph.input:
        if v.name in inits:
            continue
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        out[v.name] = (dims, np.dtype(_NUMPY.get(DTYPE_NAMES.get(t.elem_type, ""), np.float32)))
    return out


def _validate(sample: dict, inputs: dict, source: str) -> dict:
    missing = sorted(set(inputs) - set(sample))
    if missing:
        raise BadInputError(f"--data: {source} lacks input(s) {missing}; the model's inputs are {sorted(inputs)}")
    out = {}
    for name, (dims, dtype) in inputs.items():
        a = np.asarray(sample[name])
        if a.dtype != dtype:
            raise BadInputError(f"--data: {source} has {name} as {a.dtype}, the model takes {dtype}; "
                                f"save it with .astype(np.{dtype.name})")
        if len(a.shape) != len(dims) or any(d is not None and d != s for d, s in zip(dims, a.shape)):
            raise BadInputError(f"--data: {source} has {name} with shape {list(a.shape)}, the model takes "
                                f"{dims}; save one sample per file")
        out[name] = a
    return out


def load_samples(model: onnx.ModelProto, data_dir: str) -> list[dict]:
    """Every sample in `data_dir` (see module docstring), checked against the graph inputs.

    Raises:
        BadInputError: no such folder, no usable files, or a name/shape/dtype that does not fit.
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise BadInputError(f"--data {folder} is not a folder; give a folder of .npz samples or <input>.npy files")
    inputs = _graph_inputs(model)
    npz = sorted(folder.glob("*.npz"))
    if npz:
        samples = []
        for path in npz:
            with np.load(path) as f:
                samples.append(_validate({k: f[k] for k in f.files}, inputs, path.name))
        return samples
    npy = {name: folder / f"{name}.npy" for name in inputs}
    if all(p.is_file() for p in npy.values()):
        return [_validate({n: np.load(p) for n, p in npy.items()}, inputs, str(folder))]
    raise BadInputError(f"--data {folder} holds no *.npz samples and not every <input>.npy "
                        f"(expected {', '.join(f'{n}.npy' for n in inputs)})")


def seeded_sample(model: onnx.ModelProto, manifest: Optional[dict] = None, seed: int = 0) -> dict:
    """One seeded input: the registered model's sampler when available, else uniform [0, 1) floats."""
    inputs = _graph_inputs(model)
    for name, (dims, _) in inputs.items():
        if any(d is None or d <= 0 for d in dims):
            raise BadInputError(f"input {name} has dims {dims}, so no sample can be made up for the FP16 audit; "
                                f"pass --data DIR with real samples")
    if manifest is not None:
        sample = _model_sampler(manifest, seed)
        if sample is not None:
            return _validate(sample, inputs, "the model's sampler")
    rng = np.random.default_rng(seed)
    return {name: (rng.uniform(0.0, 1.0, dims) if dtype.kind == "f" else np.zeros(dims)).astype(dtype)
            for name, (dims, dtype) in inputs.items()}


def _model_sampler(manifest: dict, seed: int) -> Optional[dict]:
    try:
        from ... import models
    except ImportError:  # no torch: the runtime-only install
        return None
    name = manifest.get("model", {}).get("name")
    if name not in models.names():
        return None
    specs: list[TensorSpec] = inputs_of(manifest)
    return models.spec(name).sample_inputs(specs, seed=seed)
