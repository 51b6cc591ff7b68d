"""The Triton Python-backend model that runs a deploykit engine through `deploykit.runtime`.

The repository's `model.py` is one import of `TritonPythonModel` from here, so the logic lives in
the package (tested, versioned) and the repository only names the engine file beside it.
`triton_python_backend_utils` exists only inside Triton's stub process, so it is imported there.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _error(pb, exc: Exception):
    """The request's error: INVALID_ARG (HTTP 400) for a BadInputError, INTERNAL (500) for anything else."""
    from ..errors import BadInputError

    msg = f"{type(exc).__name__}: {exc}"
    code = getattr(pb.TritonError, "INVALID_ARG", None) if isinstance(exc, BadInputError) else None
    return pb.TritonError(msg, code) if code is not None else pb.TritonError(msg)


class TritonPythonModel:
    """Triton calls initialize(args) once, execute(requests) per scheduled batch, finalize() at unload."""

    def initialize(self, args) -> None:
        import triton_python_backend_utils as pb_utils  # only inside Triton's stub

        from ..runtime import Engine

        self._pb = pb_utils
        cfg = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in (cfg.get("parameters") or {}).items()}
        here = Path(args["model_repository"]) / args["model_version"]
        # one ONNX Runtime thread per instance: Triton's instance_group gives the parallelism
        self._engine = Engine.load(here / params["engine_file"], threads=int(params.get("threads", "1"))).activate()
        self._inputs = [s.name for s in self._engine.inputs]
        self._outputs = [s.name for s in self._engine.outputs]

    def execute(self, requests):
        """One response per request. Each request runs as its own `Engine.infer` call (its own batch):
        the answer is then bit-identical to calling the engine in-process with the same tensors,
        whatever other requests Triton's dynamic batcher scheduled beside it."""
        pb = self._pb
        responses = []
        for req in requests:
            try:
                feeds = {n: pb.get_input_tensor_by_name(req, n).as_numpy() for n in self._inputs}
                out = self._engine.infer(feeds)
                responses.append(pb.InferenceResponse([pb.Tensor(n, out[n]) for n in self._outputs]))
            except Exception as exc:  # a bad request fails alone; the model keeps serving
                responses.append(pb.InferenceResponse(error=_error(pb, exc)))
        return responses

    def finalize(self) -> None:
        self._engine.deactivate()


class StageModel:
    """A pre or post step of an ensemble (`serve/stages.py`): parameters `stage` ("pose_pre", ...) and
    `manifest_file` (the engine's manifest, in the version folder)."""

    def initialize(self, args) -> None:
        import triton_python_backend_utils as pb_utils  # only inside Triton's stub

        from .. import manifest as mf
        from .stages import STAGES

        self._pb = pb_utils
        cfg = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in (cfg.get("parameters") or {}).items()}
        family, which = params["stage"].rsplit("_", 1)
        manifest = mf.read(Path(args["model_repository"]) / args["model_version"] / params["manifest_file"])
        self._stage = STAGES[family][0 if which == "pre" else 1](manifest)

    def execute(self, requests):
        """One response per request; a stage's BadInputError becomes that request's error response."""
        pb = self._pb
        responses = []
        for req in requests:
            try:
                feeds = {n: pb.get_input_tensor_by_name(req, n).as_numpy() for n, _, _ in self._stage.inputs}
                out = self._stage(**feeds)
                responses.append(pb.InferenceResponse([pb.Tensor(n, np.ascontiguousarray(out[n], d))
                                                       for n, d, _ in self._stage.outputs]))
            except Exception as exc:
                responses.append(pb.InferenceResponse(error=_error(pb, exc)))
        return responses
