"""`deploykit infer`: keypoints or embeddings from an engine on input files."""

from __future__ import annotations

import json

import click

from ._app import main
from ._common import handle_errors


@main.command()
@click.argument("engine", type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1, required=True)
@click.option("--boxes", type=click.Path(dir_okay=False), default=None,
              help='Pose: person boxes JSON, {"img.jpg": [[x1, y1, x2, y2], ...]} (default: the whole image).')
@click.option("--out", "out_json", type=click.Path(dir_okay=False), default=None,
              help="Write the results here: .npz (compact, the default) or, for a name ending in .json, JSON "
                   "(default: print JSON).")
@click.option("--visualize", type=click.Path(file_okay=False), default=None,
              help="Pose: write PNG overlays of the skeletons into this folder.")
@click.option("--threads", type=int, default=None, help="ONNX Runtime intra-op threads.")
@handle_errors
def infer(engine, inputs, boxes, out_json, visualize, threads) -> None:
    """Run ENGINE on INPUT files: keypoints (pose images) or embeddings (re-ID crops, gait sequences).

    \b
    pose:  deploykit infer artifacts/hrnet-w32.onnx street.jpg --boxes boxes.json --visualize viz/
    re-ID: deploykit infer artifacts/rga.onnx crops/*.jpg --out emb.npz
    gait:  deploykit infer artifacts/gaitgl.onnx seqs/001/nm-01/090/ --out emb.npz
    """
    from .. import atomic
    from ..runtime import results as results_io
    from ..runtime.infer import infer_files

    if out_json:
        atomic.ensure_file_writable(out_json, "--out")  # before any inference, not after it
    if visualize:
        atomic.ensure_folder(visualize, "--visualize")
    result = infer_files(engine, list(inputs), boxes=boxes, visualize=visualize, threads=threads)
    result = {**result, **results_io.describe_engine(engine)}  # model, engine sha256, metric, output
    if out_json:
        results_io.write(out_json, result)
        click.echo(f"wrote {len(result['results'])} result(s) to {out_json}")
    else:
        click.echo(json.dumps(result, indent=1))
