"""The `deploykit` click group; every verb module adds itself to it."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deploykit")
def main() -> None:
    """deploykit: gait, re-ID and pose models from PyTorch to verified ONNX Runtime / TensorRT.

    \b
    Typical flow:
      deploykit list                      # models and their input shapes
      deploykit export gaitgl --checkpoint GaitGL-80000.pt --out artifacts
      deploykit parity gaitgl --engine artifacts/gaitgl.onnx
    """
