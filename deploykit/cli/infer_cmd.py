"""`deploykit infer`: keypoints or embeddings from an engine on input files, folders and videos."""

from __future__ import annotations

import json
import logging

import click

from ._app import main
from . import _common
from ._common import handle_errors


@main.command()
@click.argument("engine", type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1, required=True)
@click.option("--boxes", type=click.Path(dir_okay=False), default=None,
              help="Pose / re-ID: person boxes: COCO detection results [{image_id, bbox: [x, y, w, h], score}], "
                   '{"img.jpg": [[x1, y1, x2, y2, score], ...]} or per-image lists (default: the whole image).')
@click.option("--ann", type=click.Path(dir_okay=False), default=None,
              help="COCO annotation file mapping the detections' image_id to file names (default: a file whose "
                   "stem is the id, e.g. 000000397133.jpg).")
@click.option("--det-thr", type=float, default=0.0, show_default=True, help="Drop boxes scoring below this.")
@click.option("--pose-nms", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="AlphaPose parametric pose NMS: auto = when the manifest records it (FastPose).")
@click.option("--coco-out", type=click.Path(dir_okay=False), default=None,
              help="Pose: also write the COCO keypoint results list (pycocotools loadRes) here.")
@click.option("--keypoints", type=click.Path(dir_okay=False), default=None,
              help="PGFA: results JSON of a pose engine run on the same crops (COCO-17 -> OpenPose-18).")
@click.option("--frame-step", type=int, default=1, show_default=True, help="Videos: every Nth frame.")
@click.option("--frame-range", default=None, metavar="START:STOP", help="Videos: frames START..STOP-1 (0-based).")
@click.option("--window-stride", type=int, default=None,
              help="Gait: frames between window starts (default: the engine's frame count, no overlap).")
@click.option("--short", type=click.Choice(["pad", "refuse"]), default="pad", show_default=True,
              help="Gait: a sequence shorter than the engine's frames is repeated cyclically (pad) or refused.")
@click.option("--sil-threshold", type=float, default=None,
              help="Gait: binarise colour silhouette frames at gray > T (default: refuse colour frames).")
@click.option("--out", "out_json", type=click.Path(dir_okay=False), default=None,
              help="Write the results here: .npz (compact, the default) or, for a name ending in .json, JSON "
                   "(default: print JSON).")
@click.option("--visualize", type=click.Path(file_okay=False), default=None,
              help="Pose: write PNG overlays of the skeletons into this folder.")
@click.option("--threads", type=int, default=None, help="ONNX Runtime intra-op threads.")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
@handle_errors
def infer(engine, inputs, boxes, ann, det_thr, pose_nms, coco_out, keypoints, frame_step, frame_range,
          window_stride, short, sil_threshold, out_json, visualize, threads, quiet) -> None:
    """Run ENGINE on INPUTS: keypoints (pose) or embeddings (re-ID crops, gait sequences).

    \b
    pose:  deploykit infer artifacts/hrnet-w32.onnx val2017/ --boxes dets.json --det-thr 0.3 --coco-out kp.json
           deploykit infer artifacts/hrnet-w32.onnx street.mp4 --boxes dets.json --frame-step 5
    re-ID: deploykit infer artifacts/rga.onnx crops/ --out emb.npz
    PGFA:  deploykit infer artifacts/hrnet-w32.onnx crops/ --out kp.json
           deploykit infer artifacts/pgfa.onnx crops/ --keypoints kp.json --out emb.npz
    gait:  deploykit infer artifacts/gaitgl.onnx seqs/001/nm-01/090/ walk_masks.mp4 --out emb.npz
    """
    from .. import atomic
    from ..runtime import results as results_io
    from ..runtime.infer import infer_files
    from ..runtime.media import FrameRange

    for path, flag in ((out_json, "--out"), (coco_out, "--coco-out")):
        if path:
            atomic.ensure_file_writable(path, flag)  # before any inference, not after it
    if visualize:
        atomic.ensure_folder(visualize, "--visualize")
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING)  # one line per skipped box etc.
    frames = FrameRange.parse(frame_range, frame_step)
    result = infer_files(engine, list(inputs), threads=threads, boxes=boxes, ann=ann, det_thr=det_thr,
                         pose_nms=pose_nms, keypoints=keypoints, frames=frames, window_stride=window_stride,
                         short=short, sil_threshold=sil_threshold, visualize=visualize,
                         progress=not (quiet or _common.quiet()))
    result = {**result, **results_io.describe_engine(engine)}  # model, engine sha256, metric, output
    if coco_out:
        if result["family"] != "pose":
            from ..errors import BadInputError

            raise BadInputError(f"--coco-out is for pose engines; this one is {result['family']}")
        atomic.write_bytes(coco_out, json.dumps(result["coco_keypoints"]).encode())
        click.echo(f"wrote {len(result['coco_keypoints'])} COCO keypoint result(s) to {coco_out}", err=True)
    if out_json:
        results_io.write(out_json, result)
        click.echo(f"wrote {len(result['results'])} result(s) to {out_json}")
    else:
        click.echo(json.dumps(result, indent=1))
