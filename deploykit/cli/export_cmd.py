"""`deploykit export` and `deploykit patch`: ONNX from a model, graph patches on an ONNX file."""

from __future__ import annotations

import click

from ._app import main
from ._common import _err, _hw, _say_applied, _warn, _selected_patches, handle_errors, model_shape_options, patch_options


@main.command()
@click.argument("name")
@model_shape_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="artifacts", show_default=True,
              help="Folder for NAME.onnx and NAME.manifest.json.")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset (TensorRT 8.5 reads <= 17).")
@click.option("--allow-mismatch", is_flag=True, help="Load a checkpoint even if some keys do not fit.")
@click.option("--dynamic-batch", "dynamic_batch", type=int, default=None, metavar="MAX",
              help="Dynamic batch axis 1..MAX (frame axis stays static); checked in ONNX Runtime at 1 and MAX.")
@click.option("--opt-batch", type=int, default=None, metavar="K",
              help="With --dynamic-batch: the optimization profile's opt batch (default MAX).")
@click.option("--input-size", default=None, metavar="HxW",
              help="Image input size other than upstream's (hrnet-w32/w48, rga), e.g. 128x96; default upstream's, "
                   "or the size a proxy checkpoint was trained at.")
@patch_options
@handle_errors
def export(name, checkpoint, batch, frames, seed, out_dir, opset, allow_mismatch, dynamic_batch, opt_batch,
           input_size, patch_names, no_patch) -> None:
    """Export model NAME to static-shape ONNX plus a manifest (atomic writes).

    The default graph patches for TensorRT are applied (the manifest lists those that matched);
    --patch NAME chooses others, --no-patch none. Without --checkpoint the weights are seeded
    random: fine for parity and speed work, useless for recognition.
    """
    from .. import atomic
    from ..export import OnnxFromModel

    stage = OnnxFromModel(name, checkpoint=checkpoint, batch=batch, frames=frames, opset=opset, seed=seed,
                          allow_mismatch=allow_mismatch, patches=_selected_patches(patch_names, no_patch),
                          dynamic_batch=dynamic_batch, opt_batch=opt_batch, input_size=_hw(input_size))
    if opt_batch is not None and dynamic_batch is None:
        from ..errors import BadInputError

        raise BadInputError("--opt-batch needs --dynamic-batch MAX; add it or drop --opt-batch")
    specs = stage.validate()  # name, shapes, memory, opset, patches and checkpoint, before any warning or work
    atomic.ensure_folder(out_dir, "--out")
    if checkpoint is None:
        _warn(f"no --checkpoint given: {name} is exported with SEEDED RANDOM weights (seed {seed}); its outputs "
              f"are meaningless for recognition, use it for parity and speed work only")
    _err(f"exporting {name} ({', '.join(f'{s.name} {list(s.shape)}' for s in specs)}) at opset {opset} ...", "cyan")
    result = stage(out_dir)
    _say_applied(result.manifest["patches"])
    _warn_mismatch(result.manifest)
    outs = ", ".join(f"{o['name']} {o['shape']}" for o in result.manifest["outputs"])
    prof = result.manifest.get("dynamic_batch")
    dyn = f"; dynamic batch {prof['min']}..{prof['max']} (opt {prof['opt']})" if prof else ""
    click.echo(f"wrote {result.onnx_path} ({outs}) and {result.manifest_path}{dyn}")


def _warn_mismatch(man: dict) -> None:
    """--allow-mismatch: say on the terminal which keys did not load (those layers keep random weights)."""
    report = (man.get("weights") or {}).get("load_report")
    if report and report != "all keys match":
        _warn(f"--allow-mismatch: the checkpoint did not fit ({report}); those layers keep RANDOM weights, so "
              f"the outputs are not the upstream model's")


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
    from ..errors import BadInputError
    from ..export.patches import get, names

    if list_patches:
        for n in names():
            p = get(n)
            click.echo(f"{n:<14} {'default' if p.default else 'opt-in ':<8} {p.summary}")
        return
    if not src or not dst:
        raise BadInputError("deploykit patch needs IN.onnx and OUT.onnx (or --list); e.g. "
                            "deploykit patch model.onnx model.patched.onnx --patch focal-fold")
    from .. import atomic
    from ..export.patch_file import PatchedOnnx

    atomic.ensure_file_writable(dst, "OUT.onnx")

    result = PatchedOnnx(src, _selected_patches(patch_names, no_patch))(dst)
    _say_applied(result.applied)
    click.echo(f"wrote {result.onnx_path}" + (f" and {result.manifest_path}" if result.manifest_path else ""))
