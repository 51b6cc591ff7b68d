"""`deploykit gallery add|search|evaluate`: embedding galleries."""

from __future__ import annotations

import click

from ._app import main
from ._common import _warn as warn, handle_errors
from ._report import emit, json_option, say_counts


@main.group()
def gallery() -> None:
    """Embedding galleries: add `deploykit infer` results, search them, evaluate CMC/mAP.

    \b
    A gallery keeps one metric, the model/engine/output its embeddings came from, and each row's
    source path. Identities are strings parsed from the paths. Writes hold a lock on GALLERY.lock.
    """


_ID_REGEX = click.option("--id-regex", default=None,
                         help="Regex on each input path with groups 'id' (and 'cam'). Default: Market-1501 names "
                              "(0002_c1s1_000451_03.jpg), OpenGait folders ROOT/<id>/<type>/<view>/ (view = camera), "
                              "else the name up to '_' with an optional _c<cam>.")
_OUTPUT = click.option("--output", default=None,
                       help="Which engine output to use (default: the gallery's, else the manifest's embedding).")
_METRIC = click.option("--metric", default=None,
                       help="Refuse to run unless the gallery uses this metric.")


def _embeddings(res, output, g, where):
    """(embeddings, results, output name) of read results `res`, checked against gallery `g`'s source."""
    from ..runtime import results as results_io

    res = results_io.read(res) if isinstance(res, str) else res
    emb, out = res.embeddings(output or g.source.get("output"))
    note = g.check_source(res.source(out), where)
    if note:
        warn(note)
    return emb, res, out


@gallery.command("add")
@click.argument("gallery_file", type=click.Path(dir_okay=False))
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("--metric", default=None, help="Metric of a new gallery (default: the manifest's, else "
                                             "euclidean_per_part_mean for [n, c, p] embeddings, cosine otherwise); "
                                             "on an existing gallery it must be the gallery's.")
@_ID_REGEX
@_OUTPUT
@handle_errors
def gallery_add(gallery_file, results, metric, id_regex, output) -> None:
    """Add the embeddings in RESULTS (from `deploykit infer --out`) to GALLERY_FILE (.npz, created if new)."""
    from ..runtime import results as results_io
    from ..runtime.match import labels_from_paths, update

    res = results_io.read(results)  # read before taking the lock: a bad file fails without touching the gallery
    emb0, _ = res.embeddings(output)
    labels = labels_from_paths(res.inputs, id_regex)
    default = res.meta.get("metric") or ("euclidean_per_part_mean" if getattr(emb0, "ndim", 0) == 3 else "cosine")
    with update(gallery_file, metric, default) as g:
        emb, _, _ = _embeddings(res, output, g, "gallery add")
        added = g.add(emb, ids=labels.ids, cams=labels.cams, paths=res.inputs)
    if added < len(res.inputs):
        warn(f"skipped {len(res.inputs) - added} of {len(res.inputs)} embedding(s) whose input path is already in "
             f"{gallery_file}")
    click.echo(f"{gallery_file}: {len(g)} embeddings ({g.metric}), {added} added")


@gallery.command("search")
@click.argument("gallery_file", type=click.Path(dir_okay=False))
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("-k", "k", type=int, default=5, show_default=True, help="Matches per query.")
@_OUTPUT
@_METRIC
@json_option
@handle_errors
def gallery_search(gallery_file, results, k, output, metric, json_path) -> None:
    """The k nearest gallery entries (id, cam, source path, distance) for each query in RESULTS, as JSON."""
    from ..runtime.match import Gallery

    g = Gallery.load(gallery_file)
    g.check_metric(metric, "gallery search")
    emb, res, _ = _embeddings(results, output, g, "gallery search")
    hits = g.search(emb, k=k)
    report = [{"query": n, "matches": m} for n, m in zip(res.inputs, hits.to_json())]
    emit(report, json_path or "-")  # the matches are the output: stdout unless --json FILE


@gallery.command("evaluate")
@click.argument("gallery_file", type=click.Path(dir_okay=False))
@click.argument("results", type=click.Path(dir_okay=False))
@_ID_REGEX
@_OUTPUT
@_METRIC
@json_option
@handle_errors
def gallery_evaluate(gallery_file, results, id_regex, output, metric, json_path) -> None:
    """CMC and mAP of the queries in RESULTS against GALLERY_FILE (same-id same-camera matches excluded).

    Identity -1 (Market-1501's junk) is ignored in the gallery. Prints how many queries counted.
    """
    from ..runtime.match import JUNK_IDS, Gallery, labels_from_paths

    g = Gallery.load(gallery_file)
    g.check_metric(metric, "gallery evaluate")
    emb, res, _ = _embeddings(results, output, g, "gallery evaluate")
    labels = labels_from_paths(res.inputs, id_regex)
    r = g.evaluate(emb, labels.ids, labels.cams if g.cams is not None else None, junk_ids=JUNK_IDS)
    say_counts(r["num_valid_queries"], r["num_queries"], r["skipped"])
    cmc = [float(x) for x in r["cmc"][:10]]
    report = {"rank1": cmc[0], "cmc@1..10": cmc, "mAP": float(r["mAP"]), "num_queries": r["num_queries"],
              "num_valid_queries": r["num_valid_queries"], "skipped": r["skipped"]}
    emit(report, json_path or "-")  # the scores are the output: stdout unless --json FILE
