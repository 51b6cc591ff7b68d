"""The ensemble part of a Triton repository: NAME_pre and NAME_post (Python backend, `serve/stages.py`)
and NAME_ensemble (`platform: "ensemble"`) chaining NAME_pre -> NAME (the engine's Python-backend
model) -> NAME_post. On a GPU host the middle step can name NAME_tensorrt / NAME_onnxruntime instead
(`engine_model`); their tensors are the engine's, so the pre/post models are unchanged.

Ensemble layout: https://github.com/triton-inference-server/server docs/user_guide/ensemble_models.md
(steps' input_map/output_map: key = the composing model's tensor, value = the ensemble's tensor).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .stages import ENGINE_INPUT, Tensor, stages_for

STAGE_MODEL_PY = "from deploykit.serve.python_model import StageModel as TritonPythonModel  # noqa: F401\n"

# Triton's model-config data types (model_config.proto DataType) by numpy dtype name
TRITON_DTYPE = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "float64": "TYPE_FP64", "int64": "TYPE_INT64",
                "int32": "TYPE_INT32", "int8": "TYPE_INT8", "uint8": "TYPE_UINT8", "bool": "TYPE_BOOL"}


def tensor_line(name: str, dtype: str, dims: Sequence[int]) -> str:
    """One `input`/`output` entry of config.pbtxt."""
    return f'  {{ name: "{name}" data_type: {TRITON_DTYPE[dtype]} dims: [ {", ".join(str(int(d)) for d in dims)} ] }}'


def _io(inputs: Sequence[Tensor], outputs: Sequence[Tensor]) -> list[str]:
    return ["input [", ",\n".join(tensor_line(*t) for t in inputs), "]",
            "output [", ",\n".join(tensor_line(*t) for t in outputs), "]"]


def stage_config(name: str, stage: Any, stage_id: str, manifest_file: str, count: int) -> str:
    """config.pbtxt of a pre/post model: Python backend, unbatched (one request = one image/sequence)."""
    lines = [f'name: "{name}"', 'backend: "python"', "max_batch_size: 0", *_io(stage.inputs, stage.outputs),
             f"instance_group [ {{ kind: KIND_CPU count: {int(count)} }} ]",
             f'parameters {{ key: "stage" value {{ string_value: "{stage_id}" }} }}',
             f'parameters {{ key: "manifest_file" value {{ string_value: "{manifest_file}" }} }}']
    return "\n".join(lines) + "\n"


def _maps(kind: str, pairs: Sequence[tuple[str, str]]) -> str:
    return " ".join(f'{kind} {{ key: "{k}" value: "{v}" }}' for k, v in pairs)


def _step(model: str, ins: Sequence[tuple[str, str]], outs: Sequence[tuple[str, str]]) -> str:
    return f'  {{ model_name: "{model}" model_version: -1 {_maps("input_map", ins)} {_maps("output_map", outs)} }}'


def ensemble_config(name: str, engine_model: str, manifest: Mapping[str, Any], pre: Any, post: Any) -> str:
    """config.pbtxt of NAME_ensemble. Tensors between steps are named `pre_X` / `engine_X`; a pre
    output that neither the engine nor post reads (gait's WINDOWS) is an ensemble output."""
    from .. import manifest as mf

    eng_in = mf.inputs_of(manifest)[0].name
    eng_outs = [s.name for s in mf.outputs_of(manifest)]
    post_in = {n for n, _, _ in post.inputs}
    passed = [t for t in pre.outputs if t[0] != ENGINE_INPUT and t[0] not in post_in]
    steps = [_step(f"{name}_pre", [(n, n) for n, _, _ in pre.inputs],
                   [(n, n if t in passed else f"pre_{n}") for t in pre.outputs for n in [t[0]]]),
             _step(engine_model, [(eng_in, f"pre_{ENGINE_INPUT}")], [(o, f"engine_{o}") for o in eng_outs]),
             _step(f"{name}_post", [(n, f"engine_{n}" if n in eng_outs else f"pre_{n}") for n, _, _ in post.inputs],
                   [(n, n) for n, _, _ in post.outputs])]
    lines = [f'name: "{name}_ensemble"', 'platform: "ensemble"', "max_batch_size: 0",
             *_io(pre.inputs, [*post.outputs, *passed]),
             "ensemble_scheduling {", "step [", ",\n".join(steps), "]", "}"]
    return "\n".join(lines) + "\n"


def ensemble_models(name: str, manifest: Mapping[str, Any], manifest_file: str, count: int,
                    engine_model: str = "") -> dict[str, str]:
    """{model name: config.pbtxt} of NAME_pre, NAME_post and NAME_ensemble; the middle step is
    `engine_model` (default NAME, the Python-backend model; NAME_tensorrt on a GPU host).

    Raises:
        BadInputError: the family has no stages, the engine has several inputs or no dynamic batch.
    """
    family = manifest["model"]["family"]
    pre, post = stages_for(manifest)
    return {f"{name}_pre": stage_config(f"{name}_pre", pre, f"{family}_pre", manifest_file, count),
            f"{name}_post": stage_config(f"{name}_post", post, f"{family}_post", manifest_file, count),
            f"{name}_ensemble": ensemble_config(name, engine_model or name, manifest, pre, post)}
