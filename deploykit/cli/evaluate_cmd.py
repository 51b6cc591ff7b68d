"""`deploykit evaluate coco-keypoints|market1501|casia-b`: an engine on a standard benchmark's protocol."""

from __future__ import annotations

from pathlib import Path

import click

from ._app import main
from . import _common
from ._common import handle_errors
from ._report import emit, json_option, say_counts, summary

_CHUNK = 256  # inputs per `infer_files` call (progress granularity)


@main.group()
def evaluate() -> None:
    """Standard evaluations: COCO keypoint AP, Market-1501 rank-k/mAP, CASIA-B rank-1.

    Each prints how many queries (or images) counted and how many were skipped and why; `--json
    FILE` writes the full report ('-' = standard output).
    """


def _progress(label: str):
    def report(done: int, total: int) -> None:
        step = max(1, total // 10)
        if not _common.quiet() and (done == total or done % step == 0):
            click.secho(f"{label}: {done}/{total}", err=True, fg="cyan")

    return report


_THREADS = click.option("--threads", type=int, default=None, help="ONNX Runtime intra-op threads.")


def _embed(engine, paths, output, threads, label):
    """Embeddings of `paths` through `deploykit infer`'s library path, in chunks with progress."""
    from ..runtime import results as results_io
    from ..runtime.infer import infer_files

    info = results_io.describe_engine(engine)
    rows, model, family = [], None, None
    step = _progress(label)
    for s in range(0, len(paths), _CHUNK):
        r = infer_files(engine, [str(p) for p in paths[s:s + _CHUNK]], threads=threads)
        rows += r["results"]
        model, family = r["model"], r["family"]
        step(min(s + _CHUNK, len(paths)), len(paths))
    res = results_io.from_dict({"model": model, "family": family, **info, "results": rows})
    emb, _ = res.embeddings(output)
    return emb, info


def _files(folder: Path, what: str):
    from ..errors import BadInputError

    if not folder.is_dir():
        raise BadInputError(f"{folder} is not a folder; {what}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"))


@evaluate.command("market1501")
@click.argument("root", type=click.Path(file_okay=False))
@click.argument("engine", type=click.Path(dir_okay=False))
@click.option("--output", default=None, help="Engine output to match on (default: the manifest's embedding).")
@click.option("--metric", default=None, help="Distance (default: the manifest's).")
@_THREADS
@json_option
@handle_errors
def evaluate_market1501(root, engine, output, metric, threads, json_path) -> None:
    """Rank-1/5/10 and mAP on ROOT/query vs ROOT/bounding_box_test, as RGA's evaluation computes them.

    Junk crops (identity -1) are dropped, distractors (0000) stay in the gallery, same-identity
    same-camera gallery crops are excluded per query.
    """
    from ..errors import BadInputError
    from ..runtime.match import LAYOUTS, distance, labels_from_paths
    from ..runtime.match import evaluate_market1501 as score

    root = Path(root)
    fix = "give the Market-1501 root with query/ and bounding_box_test/"
    query, gallery = _files(root / "query", fix), _files(root / "bounding_box_test", fix)
    if not query or not gallery:
        raise BadInputError(f"{root}: query/ has {len(query)} and bounding_box_test/ {len(gallery)} images; {fix}")
    pattern = LAYOUTS["market1501"].pattern
    ql, gl = labels_from_paths([str(p) for p in query], pattern), labels_from_paths([str(p) for p in gallery], pattern)
    q, info = _embed(engine, query, output, threads, "query")
    g, _ = _embed(engine, gallery, output, threads, "gallery")
    m = metric or info["metric"] or "cosine"
    r = score(distance(q, g, m), ql.ids, gl.ids, ql.cams, gl.cams)
    say_counts(r["num_valid_queries"], r["num_queries"], r["skipped"])
    summary(f"market1501: rank-1 {r['rank1']:.4f}  rank-5 {r['rank5']:.4f}  rank-10 {r['rank10']:.4f}  "
            f"mAP {r['mAP']:.4f}  ({m}; {r['gallery_junk']} junk gallery crops dropped)", json_path)
    emit({"metric": m, **{k: v for k, v in r.items() if k != "cmc"}, "cmc@1..20": r["cmc"][:20],
          "engine_sha256": info["engine_sha256"]}, json_path)


@evaluate.command("casia-b")
@click.argument("root", type=click.Path(file_okay=False))
@click.argument("engine", type=click.Path(dir_okay=False))
@click.option("--metric", default=None, help="Distance (default: the manifest's, OpenGait's euc).")
@click.option("--cross-view-gallery", is_flag=True, help="OpenGait's cross_view_gallery=True variant (rank-1 + mAP).")
@_THREADS
@json_option
@handle_errors
def evaluate_casia_b(root, engine, metric, cross_view_gallery, threads, json_path) -> None:
    """OpenGait's CASIA-B protocol on ROOT/<id>/<type>/<view>/ silhouette folders.

    Gallery nm-01..04; probes NM (nm-05/06), BG (bg-01/02), CL (cl-01/02); rank-1 per (probe view,
    gallery view) with identical views excluded, then the mean over probe views.
    """
    from ..errors import BadInputError
    from ..runtime.match import LAYOUTS, labels_from_paths
    from ..runtime.match import evaluate_casia_b as score
    from ..runtime.match.opengait import CROSS_VIEW, SINGLE_VIEW

    root = Path(root)
    seqs = sorted(p for p in root.glob("*/*/*") if p.is_dir())
    if not seqs:
        raise BadInputError(f"{root} holds no ROOT/<id>/<type>/<view>/ folders; give the CASIA-B silhouette root")
    lab = labels_from_paths([str(p) for p in seqs], LAYOUTS["opengait"].pattern)
    probes, gallery_types = (CROSS_VIEW if cross_view_gallery else SINGLE_VIEW)["CASIA-B"]
    known = set(gallery_types).union(*probes.values())
    keep = [i for i, t in enumerate(lab.types) if t in known]
    skipped = {"sequence type outside the protocol": len(seqs) - len(keep)}
    emb, info = _embed(engine, [seqs[i] for i in keep], None, threads, "sequences")
    m = metric or info["metric"] or "euclidean_per_part_mean"
    r = score(emb, [lab.ids[i] for i in keep], [lab.types[i] for i in keep], [lab.cams[i] for i in keep],
              metric=m, cross_view_gallery=cross_view_gallery)
    probes_n = sum(v["num_probes"] for v in r.values())
    say_counts(probes_n, probes_n + skipped["sequence type outside the protocol"], skipped, "probe sequences")
    key = "rank1_mean" if cross_view_gallery else "mean"
    summary("casia-b rank-1: " + "  ".join(f"{c} {v[key]:.2f}%" for c, v in r.items()) + f"  ({m})", json_path)
    emit({"metric": m, "conditions": r, "skipped": skipped, "engine_sha256": info["engine_sha256"]}, json_path)


@evaluate.command("coco-keypoints")
@click.argument("engine", type=click.Path(dir_okay=False))
@click.option("--ann", required=True, type=click.Path(dir_okay=False), help="COCO person_keypoints_*.json.")
@click.option("--images", required=True, type=click.Path(file_okay=False), help="Folder of the annotation's images.")
@click.option("--dets", type=click.Path(dir_okay=False), default=None,
              help="COCO detection results for the person boxes (default: --gt-boxes).")
@click.option("--gt-boxes", is_flag=True, help="Use the ground-truth person boxes (the default without --dets).")
@click.option("--det-thr", type=float, default=0.0, show_default=True, help="Drop detections below this score.")
@click.option("--flip", is_flag=True, help="Flip test (average with the mirrored crop).")
@click.option("--results-out", type=click.Path(dir_okay=False), default=None,
              help="Also write the COCO keypoint results file here.")
@_THREADS
@json_option
@handle_errors
def evaluate_coco(engine, ann, images, dets, gt_boxes, det_thr, flip, results_out, threads, json_path) -> None:
    """OKS AP/AR of ENGINE on a COCO keypoint annotation, scored by pycocotools (`pip install 'deploykit[eval]'`)."""
    from .. import atomic
    from ..errors import BadInputError, require
    from ..runtime.coco_eval import predict_keypoints, score_keypoints

    if dets and gt_boxes:
        raise BadInputError("--dets and --gt-boxes contradict each other; give one")
    require("pycocotools", "eval")  # before running the engine over every image
    res, counts = predict_keypoints(engine, ann, images, dets=dets, det_thr=det_thr, flip=flip, threads=threads,
                                    progress=_progress("images"))
    if results_out:
        import json

        atomic.write_bytes(results_out, json.dumps(res).encode())
    stats = score_keypoints(ann, res)
    say_counts(counts["images_with_people"], counts["images"], {"without a person box": counts["skipped_no_box"]},
               "images")
    summary("coco keypoints: " + "  ".join(f"{k} {v:.4f}" for k, v in stats.items()), json_path)
    emit({**stats, **counts, "boxes": "detections" if dets else "ground truth", "flip": flip}, json_path)
