"""`deploykit build-engine`: an engine for a backend from a model name or an ONNX file."""

from __future__ import annotations

import click

from ..constants import DEFAULT_CALIB_METHOD
from ..runtime import backend as backends
from ._app import main
from . import _common
from ._common import _err, _warn, handle_errors, model_shape_options


@main.command("build-engine")
@click.argument("target", metavar="NAME|MODEL.onnx")
@model_shape_options
@click.option("--fp16", is_flag=True, help="FP16 graph (range-critical tensors/ops kept FP32). TensorRT only.")
@click.option("--bf16", is_flag=True, help="BF16 (OpenVINO, CPUs with AVX512_BF16/AMX).")
@click.option("--int8", is_flag=True, help="INT8: calibrate, then Q/DQ model (and TensorRT calibration cache).")
@click.option("--calib-data", type=click.Path(), default=None,
              help="Image folder, video, .npy/.npz, or silhouette sequence folders. Default: seeded synthetic "
                   "data (warns: smoke runs only).")
@click.option("--calib-method", type=click.Choice(["entropy", "percentile", "max"]), default=DEFAULT_CALIB_METHOD,
              show_default=True, help="Range method: percentile = 99.99th of |x| (default: it kept every trained "
                                      "proxy within the INT8 gates); entropy = TensorRT's KL method; max.")
@click.option("--calib-samples", type=int, default=64, show_default=True, help="At most this many calibration samples.")
@click.option("--sensitivity", is_flag=True, help="Per-layer INT8 sensitivity sweep; hurting layers stay float. "
              "Exits 1 if the mixed model still misses the sweep's target (see --allow-miss).")
@click.option("--all-int8", is_flag=True, help="Skip the automatic mixed precision: every layer TensorRT's placement "
              "quantizes stays INT8 (as trtexec --int8), even when the all-INT8 model misses the parity gates. "
              "Fastest; check it with `deploykit parity`.")
@click.option("--allow-miss", is_flag=True, help="With --sensitivity: keep the engine and exit 0 when the target is missed.")
@click.option("--backend", type=click.Choice(["auto", *(b.name for b in backends.by_priority())]), default="auto",
              show_default=True, help="auto: the usable backend of the highest priority (TensorRT on a GPU); on a "
                                      "CPU every usable CPU backend is built and timed, the fastest accurate kept.")
@click.option("--threads", type=int, default=None,
              help="auto on a CPU: time the candidates at this many threads, the count you will run the engine "
                   "with (Engine.load(..., threads=N), bench --threads N). Default: each backend's own default.")
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
                 sensitivity, all_int8, allow_miss, backend, threads, workspace_mib, timing_cache, dla_core, trt_path, out_dir) -> None:
    """Build an engine from model NAME (exported first, export defaults) or from MODEL.onnx (used as is).

    \b
    ONNX Runtime: FP32 = optimised ONNX; --int8 = U8S8 Q/DQ ONNX (plus the S8S8 Q/DQ model for
    TensorRT, NAME.ranges.json and NAME.calib.cache); --fp16 is refused on CPU.
    TensorRT: a .plan beside its manifest (TensorRT version, GPU, flags, ONNX sha256).
    """
    import warnings
    from pathlib import Path

    from ..calib import SyntheticCalibrationWarning
    from .. import artifact_set
    from ..build.build_engine import BuildOptions, EngineFromOnnx, plan_backends, preflight_inputs

    warnings.simplefilter("ignore", SyntheticCalibrationWarning)  # said once below, in the CLI's words

    options = BuildOptions(fp16=fp16, bf16=bf16, int8=int8, calib_data=calib_data, calib_method=calib_method,
                           calib_samples=calib_samples, sensitivity=sensitivity, workspace_mib=workspace_mib,
                           timing_cache=timing_cache, dla_core=dla_core, trt_path=trt_path, seed=seed,
                           progress=not _common.quiet(), threads=threads, all_int8=all_int8)
    names, why = plan_backends(backend, options)
    _err(f"backend: {'/'.join(names)} ({why})", "cyan")
    from_model = not (target.endswith(".onnx") or Path(target).is_file())
    stage = None
    if from_model:
        from .. import models
        from ..export import OnnxFromModel

        stage = OnnxFromModel(target, checkpoint=checkpoint, batch=batch, frames=frames, seed=seed)
        specs = stage.validate()
        spec = models.spec(target)
        # --out and --calib-data are checked against the model's facts before the export starts
        preflight_inputs(options, {"inputs": [s.to_json() for s in specs], "preprocess": dict(spec.preprocess),
                                   "model": spec.manifest_entry()}, out_dir)
        if checkpoint is None:
            _warn(f"no --checkpoint given: {target} is exported with SEEDED RANDOM weights (seed {seed}); "
                  f"the engine is for parity and speed work only")
    if int8 and calib_data is None:
        _warn("no --calib-data: calibrating on SEEDED SYNTHETIC data; not for a deployed engine")
    with artifact_set.staged(out_dir, target if from_model else Path(target).stem) as (dst, final):
        # the library's chain: EngineFromOnnx(OnnxFromModel(...)) calls the export into the same stage, so
        # for a model name the export and the engine are one set, committed together; auto measures on a CPU
        result = EngineFromOnnx(stage if from_model else target, options, backend=backend)(dst)
    for note in result.notes[1:]:
        _err(f"note: {note}", "yellow")
    eng = result.manifest["engine"]
    if from_model:
        click.echo(f"wrote {final(result.source.path)} and {final(result.source.manifest_path)}")
    click.echo(f"wrote {final(result.engine_path)} ({eng['backend']}, {eng['precision']}) and "
               f"{final(result.manifest_path)}")
    for key, path in result.extras.items():
        click.echo(f"  {key}: {final(path)}")
    _sensitivity_outcome(eng.get("mixed_precision") or {}, sensitivity, allow_miss)


def _sensitivity_outcome(mixed: dict, asked: bool, allow_miss: bool) -> None:
    """Say when the mixed-precision choice missed its own target; with --sensitivity that fails the build."""
    from ..calib.sensitivity import SensitivityMiss

    rep = mixed.get("sensitivity")
    if not rep or rep.get("met_target", True):
        return
    msg = (f"sensitivity: output NSR {rep['final_nsr']:.3g} misses the target {rep['target_nsr']:.3g} with "
           f"{len(rep['float_nodes'])} layer(s) float (at most "
           + (f"{rep['max_float_entries']}" if "max_float_entries" in rep else f"{rep.get('max_float_fraction', 0.25):.0%}")
           + f" of {rep['candidates']} sweep entries may be)")
    if asked and not allow_miss:
        raise SensitivityMiss(f"{msg}; calibrate on real data or a real checkpoint, or accept it with --allow-miss")
    _err(f"WARNING: {msg}{' (accepted: --allow-miss)' if asked else ''}.", "yellow")
