"""`deploykit check`: the TensorRT lint."""

from __future__ import annotations

import sys

import click

from ._app import main
from ._common import handle_errors
from ._report import emit, json_option, summary


@main.command()
@click.argument("model", metavar="MODEL.onnx", type=click.Path(dir_okay=False))
@click.option("--trt-version", type=click.Choice(["8.5", "8.6", "10", "11"]), default="10", show_default=True,
              help="Target TensorRT (8.5: JetPack 5; 10: JetPack 6.1/6.2 ship 10.3; 11: desktop/server).")
@click.option("--dla", is_flag=True, help="Also list the layers a Jetson DLA core would leave to the GPU.")
@click.option("--fp16", is_flag=True, help="Also audit every tensor's range against FP16 in ONNX Runtime.")
@click.option("--data", type=click.Path(file_okay=False), default=None,
              help="Samples for --fp16: *.npz files (one per sample) or <input>.npy files. "
                   "Default: one seeded sample shaped by the manifest.")
@json_option
@handle_errors
def check(model, trt_version, dla, fp16, data, json_path) -> None:
    """Lint MODEL.onnx for TensorRT before any GPU is involved; exit 0 if nothing blocks a build.

    Checks every node against the ONNX-TensorRT parser's operator table for the version (with the
    attribute/dtype restrictions it states), dynamic dims, INT64 narrowing and dtypes. Exit codes:
    0 nothing blocks an engine build, 1 something does (or --fp16 finds overflow), 2 bad input.
    """
    from ..export.lint import check_model

    report = check_model(model, trt_version=trt_version, dla=dla, fp16=fp16, data=data)
    summary(report.table(), json_path)
    emit(report.to_json(), json_path)
    sys.exit(report.exit_code)
