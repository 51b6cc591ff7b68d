"""The `deploykit` command line: one thin verb per stage; the logic lives in the library.

Errors are printed as one line (`error: ...`) and exit non-zero: 2 for bad input, 3 for a missing
extra or backend, 1 for anything else deploykit detects.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Callable

import click

from .errors import DeploykitError


def _err(msg: str, color: str = "red") -> None:
    click.secho(msg, fg=color, err=True)


def handle_errors(fn: Callable) -> Callable:
    """Turn DeploykitError into one line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DeploykitError as exc:
            _err(f"error: {exc}")
            sys.exit(exc.exit_code)

    return wrapper


def model_shape_options(fn: Callable) -> Callable:
    """--batch / --frames / --seed / --checkpoint, shared by every verb that builds a model."""
    for deco in reversed([
        click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
                     help="Upstream checkpoint (.pt/.pth). Default: seeded random weights (parity work only)."),
        click.option("--batch", type=int, default=1, show_default=True, help="Static batch size."),
        click.option("--frames", type=int, default=None,
                     help="Static frames per sequence for gait models (default 30)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of random weights and inputs."),
    ]):
        fn = deco(fn)
    return fn


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


@main.command("list")
@click.option("--family", type=click.Choice(["gait", "reid", "pose"]), default=None, help="Only one family.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def list_cmd(family, as_json) -> None:
    """List the registered models with their static input shapes (batch 1, default frames)."""
    from . import models

    rows = []
    for name in models.names(family):
        s = models.spec(name)
        rows.append({"name": name, "family": s.family,
                     "inputs": [i.to_json() for i in s.input_specs()], "outputs": [o.name for o in s.outputs]})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        shapes = ", ".join(f"{i['name']} {'x'.join(map(str, i['shape']))}" for i in r["inputs"])
        click.echo(f"{r['name']:<{width}}  {r['family']:<5}  {shapes}  ->  {', '.join(r['outputs'])}")


def patch_options(fn: Callable) -> Callable:
    """--patch NAME (repeatable) / --no-patch, shared by `export` and `patch`."""
    fn = click.option("--no-patch", is_flag=True, help="Apply no graph patch.")(fn)
    return click.option("--patch", "patch_names", multiple=True, metavar="NAME",
                        help="Apply this graph patch (repeatable; default: the default set, see "
                             "`deploykit patch --list`).")(fn)


def _selected_patches(patch_names, no_patch):
    """None (the default set), [] (none) or the chosen names; both flags together are an error."""
    from .errors import BadInputError

    if no_patch and patch_names:
        raise BadInputError(f"--no-patch and --patch {' '.join(patch_names)} contradict each other; give one")
    return [] if no_patch else (list(patch_names) or None)


def _say_applied(applied) -> None:
    done = ", ".join(f"{a['name']} x{a['matches']}" for a in applied) or "none matched"
    _err(f"graph patches applied: {done}", "cyan")


@main.command()
@click.argument("name")
@model_shape_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="artifacts", show_default=True,
              help="Folder for NAME.onnx and NAME.manifest.json.")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset (TensorRT 8.5 reads <= 17).")
@click.option("--allow-mismatch", is_flag=True, help="Load a checkpoint even if some keys do not fit.")
@patch_options
@handle_errors
def export(name, checkpoint, batch, frames, seed, out_dir, opset, allow_mismatch, patch_names, no_patch) -> None:
    """Export model NAME to static-shape ONNX plus a manifest (atomic writes).

    The default graph patches for TensorRT are applied (the manifest lists those that matched);
    --patch NAME chooses others, --no-patch none. Without --checkpoint the weights are seeded
    random: fine for parity and speed work, useless for recognition.
    """
    from .export import OnnxFromModel

    stage = OnnxFromModel(name, checkpoint=checkpoint, batch=batch, frames=frames, opset=opset, seed=seed,
                          allow_mismatch=allow_mismatch, patches=_selected_patches(patch_names, no_patch))
    specs = stage.validate()  # name, shapes, opset, patches and checkpoint, before any warning or work
    if checkpoint is None:
        _err(f"WARNING: no --checkpoint given: {name} is exported with SEEDED RANDOM weights (seed {seed}). "
             f"Its outputs are meaningless for recognition; use it for parity and speed work only.", "yellow")
    _err(f"exporting {name} ({', '.join(f'{s.name} {list(s.shape)}' for s in specs)}) at opset {opset} ...", "cyan")
    result = stage(out_dir)
    _say_applied(result.manifest["patches"])
    outs = ", ".join(f"{o['name']} {o['shape']}" for o in result.manifest["outputs"])
    click.echo(f"wrote {result.onnx_path} ({outs}) and {result.manifest_path}")


@main.command("patch")
@click.argument("src", metavar="IN.onnx", required=False, type=click.Path(dir_okay=False))
@click.argument("dst", metavar="OUT.onnx", required=False, type=click.Path(dir_okay=False))
@patch_options
@click.option("--list", "list_patches", is_flag=True, help="List the graph patches and exit.")
@handle_errors
def patch_cmd(src, dst, patch_names, no_patch, list_patches) -> None:
    """Apply graph patches to IN.onnx (exported anywhere) and write OUT.onnx atomically.

    With a manifest beside IN.onnx, OUT's manifest is written too, with the patches appended and
    the sha256 of OUT.onnx.
    """
    from .errors import BadInputError
    from .export.patches import get, names

    if list_patches:
        for n in names():
            p = get(n)
            click.echo(f"{n:<14} {'default' if p.default else 'opt-in ':<8} {p.summary}")
        return
    if not src or not dst:
        raise BadInputError("deploykit patch needs IN.onnx and OUT.onnx (or --list); e.g. "
                            "deploykit patch model.onnx model.patched.onnx --patch focal-fold")
    from .export.patch_file import PatchedOnnx

    result = PatchedOnnx(src, _selected_patches(patch_names, no_patch))(dst)
    _say_applied(result.applied)
    click.echo(f"wrote {result.onnx_path}" + (f" and {result.manifest_path}" if result.manifest_path else ""))


@main.command()
@click.argument("model", metavar="MODEL.onnx", type=click.Path(dir_okay=False))
@click.option("--trt-version", type=click.Choice(["8.5", "8.6", "10", "11"]), default="10", show_default=True,
              help="Target TensorRT (8.5: JetPack 5; 10: JetPack 6.1/6.2 ship 10.3; 11: desktop/server).")
@click.option("--dla", is_flag=True, help="Also list the layers a Jetson DLA core would leave to the GPU.")
@click.option("--fp16", is_flag=True, help="Also audit every tensor's range against FP16 in ONNX Runtime.")
@click.option("--data", type=click.Path(file_okay=False), default=None,
              help="Samples for --fp16: *.npz files (one per sample) or <input>.npy files. "
                   "Default: one seeded sample shaped by the manifest.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def check(model, trt_version, dla, fp16, data, as_json) -> None:
    """Lint MODEL.onnx for TensorRT before any GPU is involved; exit 0 if nothing blocks a build.

    Checks every node against the ONNX-TensorRT parser's operator table for the version (with the
    attribute/dtype restrictions it states), dynamic dims, INT64 narrowing and dtypes. Exit codes:
    0 nothing blocks an engine build, 1 something does (or --fp16 finds overflow), 2 bad input.
    """
    from .export.lint import check_model

    report = check_model(model, trt_version=trt_version, dla=dla, fp16=fp16, data=data)
    click.echo(json.dumps(report.to_json(), indent=2) if as_json else report.table())
    sys.exit(report.exit_code)


@main.command()
@click.argument("name")
@click.option("--engine", type=click.Path(dir_okay=False), default=None,
              help="Engine artifact (.onnx or .plan, manifest beside it). Default: export NAME to FP32 ONNX now.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint the engine was made from (default: what its manifest says).")
@click.option("--samples", type=int, default=2, show_default=True, help="Seeded input samples to compare.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write the report here.")
@handle_errors
def parity(name, engine, checkpoint, samples, json_out) -> None:
    """Compare an engine of model NAME with the PyTorch reference on the same inputs; exit 1 on a miss.

    Reports max/mean absolute and relative error and cosine per output. FP32 gates: cosine >= 0.99999
    and max abs error <= 1e-4 x max|reference| per output.
    """
    from . import atomic
    from .verify.parity import run_parity

    report = run_parity(name, engine, checkpoint=checkpoint, samples=samples)
    for line in report.lines():
        click.echo(line)
    if json_out:
        atomic.write_json(json_out, report.to_json())
    sys.exit(0 if report.passed else 1)


@main.command()
@click.argument("name")
@click.option("--backends", default="torch,ort-fp32", show_default=True,
              help="Comma-separated: torch, ort-fp32, ort-int8, trt-fp32, trt-fp16, trt-int8.")
@click.option("--batch", type=int, default=1, show_default=True, help="Static batch size.")
@click.option("--frames", type=int, default=None, help="Frames per sequence for gait models (default 30).")
@click.option("--threads", type=int, default=None, help="Intra-op threads for every backend (default: library default).")
@click.option("--rounds", type=int, default=5, show_default=True, help="Interleaved timing rounds.")
@click.option("--iters", type=int, default=4, show_default=True, help="Timed calls per backend per round.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write the results here.")
@click.option("--markdown", "md_out", type=click.Path(dir_okay=False), default=None,
              help="Append the markdown table to this file (e.g. benchmarks/gaitgl.md).")
@handle_errors
def bench(name, backends, batch, frames, threads, rounds, iters, json_out, md_out) -> None:
    """Latency p50/p90/p99 and throughput of NAME per backend, in one interleaved run.

    Speed-ups are ratios against PyTorch eager measured in the same run (include `torch`).
    """
    from . import atomic
    from .verify.bench import run_bench

    report = run_bench(name, [b.strip() for b in backends.split(",") if b.strip()], batch=batch,
                       frames=frames, threads=threads, rounds=rounds, iters=iters,
                       progress=lambda m: _err(f"[bench {name}] {m}", "cyan"))
    table = report.markdown()
    click.echo(table)
    if json_out:
        atomic.write_json(json_out, report.to_json())
    if md_out:
        from pathlib import Path

        old = Path(md_out).read_text() if Path(md_out).exists() else ""
        atomic.write_bytes(md_out, (old + ("\n" if old else "") + table).encode())


@main.command("build-engine")
@click.argument("target", metavar="NAME|MODEL.onnx")
@model_shape_options
@click.option("--fp16", is_flag=True, help="FP16 graph (range-critical tensors/ops kept FP32). TensorRT only.")
@click.option("--int8", is_flag=True, help="INT8: calibrate, then Q/DQ model (and TensorRT calibration cache).")
@click.option("--calib-data", type=click.Path(), default=None,
              help="Image folder, video, .npy/.npz, or silhouette sequence folders. Default: seeded synthetic "
                   "data (warns: smoke runs only).")
@click.option("--calib-method", type=click.Choice(["entropy", "percentile", "max"]), default="entropy",
              show_default=True, help="Range method (entropy = TensorRT's KL method; percentile = 99.99).")
@click.option("--calib-samples", type=int, default=64, show_default=True, help="At most this many calibration samples.")
@click.option("--sensitivity", is_flag=True, help="Per-layer INT8 sensitivity sweep; hurting layers stay float.")
@click.option("--backend", type=click.Choice(["auto", "tensorrt", "onnxruntime"]), default="auto", show_default=True,
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
def build_engine(target, checkpoint, batch, frames, seed, fp16, int8, calib_data, calib_method, calib_samples,
                 sensitivity, backend, workspace_mib, timing_cache, dla_core, trt_path, out_dir) -> None:
    """Build an engine from model NAME (exported first, export defaults) or from MODEL.onnx (used as is).

    \b
    ONNX Runtime: FP32 = optimised ONNX; --int8 = U8S8 Q/DQ ONNX (plus the S8S8 Q/DQ model for
    TensorRT, NAME.ranges.json and NAME.calib.cache); --fp16 is refused on CPU.
    TensorRT: a .plan beside its manifest (TensorRT version, GPU, flags, ONNX sha256).
    """
    import warnings
    from pathlib import Path

    from .calib import SyntheticCalibrationWarning
    from .export.build_engine import BuildOptions, EngineFromOnnx, choose_backend, preflight

    warnings.simplefilter("ignore", SyntheticCalibrationWarning)  # said once below, in the CLI's words

    options = BuildOptions(fp16=fp16, int8=int8, calib_data=calib_data, calib_method=calib_method,
                           calib_samples=calib_samples, sensitivity=sensitivity, workspace_mib=workspace_mib,
                           timing_cache=timing_cache, dla_core=dla_core, trt_path=trt_path, seed=seed)
    name, why = choose_backend(backend)
    preflight(name, options)
    _err(f"backend: {name} ({why})", "cyan")
    if target.endswith(".onnx") or Path(target).is_file():
        onnx_path = Path(target)
    else:
        from .export import OnnxFromModel

        stage = OnnxFromModel(target, checkpoint=checkpoint, batch=batch, frames=frames, seed=seed)
        stage.validate()
        if checkpoint is None:
            _err(f"WARNING: no --checkpoint given: {target} is exported with SEEDED RANDOM weights (seed {seed}); "
                 f"the engine is for parity and speed work only.", "yellow")
        onnx_path = stage(out_dir).onnx_path
        _err(f"exported {onnx_path}", "cyan")
    if int8 and calib_data is None:
        _err("WARNING: no --calib-data: calibrating on SEEDED SYNTHETIC data; not for a deployed engine.", "yellow")
    result = EngineFromOnnx(onnx_path, options, backend=name)(out_dir)
    for note in result.notes[1:]:
        _err(f"note: {note}", "yellow")
    eng = result.manifest["engine"]
    click.echo(f"wrote {result.engine_path} ({eng['backend']}, {eng['precision']}) and {result.manifest_path}")
    for key, path in result.extras.items():
        click.echo(f"  {key}: {path}")


@main.command()
@click.argument("engine", type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1, required=True)
@click.option("--boxes", type=click.Path(dir_okay=False), default=None,
              help='Pose: person boxes JSON, {"img.jpg": [[x1, y1, x2, y2], ...]} (default: the whole image).')
@click.option("--out", "out_json", type=click.Path(dir_okay=False), default=None,
              help="Write the results JSON here (default: print it).")
@click.option("--visualize", type=click.Path(file_okay=False), default=None,
              help="Pose: write PNG overlays of the skeletons into this folder.")
@click.option("--threads", type=int, default=None, help="ONNX Runtime intra-op threads.")
@handle_errors
def infer(engine, inputs, boxes, out_json, visualize, threads) -> None:
    """Run ENGINE on INPUT files: keypoints (pose images) or embeddings (re-ID crops, gait sequences).

    \b
    pose:  deploykit infer artifacts/hrnet-w32.onnx street.jpg --boxes boxes.json --visualize viz/
    re-ID: deploykit infer artifacts/rga.onnx crops/*.jpg --out emb.json
    gait:  deploykit infer artifacts/gaitgl.onnx seqs/001/nm-01/090/ --out emb.json
    """
    from . import atomic
    from .runtime.infer import infer_files

    result = infer_files(engine, list(inputs), boxes=boxes, visualize=visualize, threads=threads)
    text = json.dumps(result, indent=1)
    if out_json:
        atomic.write_bytes(out_json, text.encode())
        click.echo(f"wrote {len(result['results'])} result(s) to {out_json}")
    else:
        click.echo(text)


@main.group()
def gallery() -> None:
    """Embedding galleries: add `deploykit infer` results, search them, evaluate CMC/mAP."""


def _labels(names, regex):
    import re

    from .errors import BadInputError

    pat = re.compile(regex)
    ids, cams = [], []
    for n in names:
        m = pat.search(n)
        if not m or "id" not in m.groupdict():
            raise BadInputError(f"--id-regex {regex!r} does not match {n!r} with a group named 'id'; "
                                f"give a regex with (?P<id>...) and optionally (?P<cam>...)")
        ids.append(m.group("id"))
        cams.append(m.groupdict().get("cam") or "0")
    return ids, cams


_ID_REGEX = click.option("--id-regex", default=r"(?P<id>[^/_]+)(?:_c(?P<cam>\d+))?[^/]*/?$", show_default=True,
                         help="Regex on each input path giving the identity (group 'id') and camera (group 'cam').")
_OUTPUT = click.option("--output", default=None, help="Which engine output to use (default: the embedding).")


def _results(path, output):
    from .errors import BadInputError
    from .runtime.infer import embeddings_from_results

    try:
        data = json.loads(open(path).read())
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{path}: cannot read `deploykit infer` results ({exc}); write them with --out") from None
    return embeddings_from_results(data, output)


@gallery.command("add")
@click.argument("gallery_file", type=click.Path(dir_okay=False))
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@click.option("--metric", default=None, help="Metric of a new gallery (default: euclidean_per_part_mean for gait "
                                             "[n, c, p] embeddings, cosine otherwise).")
@_ID_REGEX
@_OUTPUT
@handle_errors
def gallery_add(gallery_file, results, metric, id_regex, output) -> None:
    """Add the embeddings in RESULTS (from `deploykit infer --out`) to GALLERY_FILE (.npz, created if new)."""
    import os

    from .runtime.match import Gallery

    emb, names = _results(results, output)
    ids, cams = _labels(names, id_regex)
    if os.path.exists(gallery_file):
        g = Gallery.load(gallery_file)
    else:
        g = Gallery(metric or ("euclidean_per_part_mean" if emb.ndim == 3 else "cosine"))
    g.add(emb, ids=ids, cams=cams)
    g.save(gallery_file)
    click.echo(f"{gallery_file}: {len(g)} embeddings ({g.metric})")


@gallery.command("search")
@click.argument("gallery_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@click.option("-k", "k", type=int, default=5, show_default=True, help="Matches per query.")
@_OUTPUT
@handle_errors
def gallery_search(gallery_file, results, k, output) -> None:
    """The k nearest gallery entries for each query embedding in RESULTS, as JSON."""
    from .runtime.match import Gallery

    emb, names = _results(results, output)
    hits = Gallery.load(gallery_file).search(emb, k=k)
    click.echo(json.dumps([{"query": n, "matches": m} for n, m in zip(names, hits.to_json())], indent=1))


@gallery.command("evaluate")
@click.argument("gallery_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@_ID_REGEX
@_OUTPUT
@handle_errors
def gallery_evaluate(gallery_file, results, id_regex, output) -> None:
    """CMC and mAP of the queries in RESULTS against GALLERY_FILE (same-id same-camera matches excluded)."""
    from .runtime.match import Gallery

    emb, names = _results(results, output)
    ids, cams = _labels(names, id_regex)
    r = Gallery.load(gallery_file).evaluate(emb, ids, cams)
    cmc = [float(x) for x in r["cmc"][:10]]
    click.echo(json.dumps({"rank1": cmc[0] if cmc else None, "cmc@1..10": cmc, "mAP": float(r["mAP"])}, indent=1))


if __name__ == "__main__":
    main()
