"""`deploykit build-engine`: an engine for a backend from a model name or an ONNX file."""

from __future__ import annotations

import click

from ._app import main
from ._common import _err, handle_errors, model_shape_options


@main.command("build-engine")
@click.argument("target", metavar="NAME|MODEL.onnx")
@model_shape_options
@click.option("--fp16", is_flag=True, help="FP16 graph (range-critical tensors/ops kept FP32). TensorRT only.")
@click.option("--bf16", is_flag=True, help="BF16 (OpenVINO, CPUs with AVX512_BF16/AMX).")
@click.option("--int8", is_flag=True, help="INT8: calibrate, then Q/DQ model (and TensorRT calibration cache).")
@click.option("--calib-data", type=click.Path(), default=None,
              help="Image folder, video, .npy/.npz, or silhouette sequence folders. Default: seeded synthetic "
                   "data (warns: smoke runs only).")
@click.option("--calib-method", type=click.Choice(["entropy", "percentile", "max"]), default="entropy",
              show_default=True, help="Range method (entropy = TensorRT's KL method; percentile = 99.99).")
@click.option("--calib-samples", type=int, default=64, show_default=True, help="At most this many calibration samples.")
@click.option("--sensitivity", is_flag=True, help="Per-layer INT8 sensitivity sweep; hurting layers stay float.")
@click.option("--backend", type=click.Choice(["auto", "tensorrt", "onnxruntime", "openvino"]), default="auto", show_default=True,
              help="auto: TensorRT when importable and a GPU is present, else ONNX Runtime.")
@click.option("--workspace", "workspace_mib", type=int, default=1024, show_default=True,
              help="TensorRT workspace pool, MiB.")
@click.option("--timing-cache", type=click.Path(dir_okay=False), default=None,
              help="TensorRT timing cache (read if present, written after the build).")
@click.option("--dla-core", type=int, default=None, help="Jetson DLA core, with GPU fallback.")
@click.option("--trt-path", type=click.Choice(["auto", "strong", "flags"]), default="auto", show_default=True,
              help="TensorRT: strongly typed (10.1+, the only path on 11) or builder flags + calibration cache (8.5-10.x).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="engines", show_default=True,
              help="Folder for the engine, its manifest and the calibration files.")
@handle_errors
def build_engine(target, checkpoint, batch, frames, seed, fp16, bf16, int8, calib_data, calib_method, calib_samples,
                 sensitivity, backend, workspace_mib, timing_cache, dla_core, trt_path, out_dir) -> None:
    """Build an engine from model NAME (exported first, export defaults) or from MODEL.onnx (used as is).

    \b
    ONNX Runtime: FP32 = optimised ONNX; --int8 = U8S8 Q/DQ ONNX (plus the S8S8 Q/DQ model for
    TensorRT, NAME.ranges.json and NAME.calib.cache); --fp16 is refused on CPU.
    TensorRT: a .plan beside its manifest (TensorRT version, GPU, flags, ONNX sha256).
    """
    import warnings
    from pathlib import Path

    from ..calib import SyntheticCalibrationWarning
    from ..export.build_engine import BuildOptions, EngineFromOnnx, choose_backend, preflight

    warnings.simplefilter("ignore", SyntheticCalibrationWarning)  # said once below, in the CLI's words

    options = BuildOptions(fp16=fp16, bf16=bf16, int8=int8, calib_data=calib_data, calib_method=calib_method,
                           calib_samples=calib_samples, sensitivity=sensitivity, workspace_mib=workspace_mib,
                           timing_cache=timing_cache, dla_core=dla_core, trt_path=trt_path, seed=seed)
    name, why = choose_backend(backend)
    preflight(name, options)
    if backend == "auto" and name == "onnxruntime" and not bf16:
        from ..export.auto_cpu import usable_cpu_backends

        if len(usable_cpu_backends()) > 1:
            name, why = "/".join(usable_cpu_backends()), f"{why}; auto times each CPU backend and keeps the fastest"
    _err(f"backend: {name} ({why})", "cyan")
    if target.endswith(".onnx") or Path(target).is_file():
        onnx_path = Path(target)
    else:
        from ..export import OnnxFromModel

        stage = OnnxFromModel(target, checkpoint=checkpoint, batch=batch, frames=frames, seed=seed)
        stage.validate()
        if checkpoint is None:
            _err(f"WARNING: no --checkpoint given: {target} is exported with SEEDED RANDOM weights (seed {seed}); "
                 f"the engine is for parity and speed work only.", "yellow")
        onnx_path = stage(out_dir).onnx_path
        _err(f"exported {onnx_path}", "cyan")
    if int8 and calib_data is None:
        _err("WARNING: no --calib-data: calibrating on SEEDED SYNTHETIC data; not for a deployed engine.", "yellow")
    result = EngineFromOnnx(onnx_path, options, backend=backend)(out_dir)  # auto measures on a CPU
    for note in result.notes[1:]:
        _err(f"note: {note}", "yellow")
    eng = result.manifest["engine"]
    click.echo(f"wrote {result.engine_path} ({eng['backend']}, {eng['precision']}) and {result.manifest_path}")
    for key, path in result.extras.items():
        click.echo(f"  {key}: {path}")
