"""Serving engines from NVIDIA Triton Inference Server (runtime-only, no torch).

`repo.write_repository` writes a Triton model repository from engines; `ensemble` adds the pre/post
models and the ensemble chaining them, whose steps are `stages` (numpy functions of the manifest);
`server` starts the tritonserver of the `[serve]` extra on it; `python_model` holds the
Python-backend model classes the repository's `model.py` files import.
"""
