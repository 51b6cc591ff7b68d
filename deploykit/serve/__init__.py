"""Serving engines from NVIDIA Triton Inference Server (runtime-only, no torch).

`repo.write_repository` writes a Triton model repository from engines; `server` starts the
tritonserver of the `[serve]` extra on it; `python_model` is the Python-backend model class the
repository's `model.py` files import.
"""
