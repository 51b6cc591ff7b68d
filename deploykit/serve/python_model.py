"""The Triton Python-backend model that runs a deploykit engine through `deploykit.runtime`.

The repository's `model.py` is one import of `TritonPythonModel` from here, so the logic lives in
the package (tested, versioned) and the repository only names the engine file beside it.
`triton_python_backend_utils` exists only inside Triton's stub process, so it is imported there.
"""

from __future__ import annotations

import json
from pathlib import Path


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
                responses.append(pb.InferenceResponse(error=pb.TritonError(f"{type(exc).__name__}: {exc}")))
        return responses

    def finalize(self) -> None:
        self._engine.deactivate()
