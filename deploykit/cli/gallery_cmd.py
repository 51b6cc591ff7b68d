"""`deploykit gallery add|search|evaluate`: embedding galleries."""

from __future__ import annotations

import json

import click

from ._app import main
from ._common import handle_errors


@main.group()
def gallery() -> None:
    """Embedding galleries: add `deploykit infer` results, search them, evaluate CMC/mAP."""


def _labels(names, regex):
    import re

    from ..errors import BadInputError

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
    from ..errors import BadInputError
    from ..runtime.infer import embeddings_from_results

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

    from ..runtime.match import Gallery

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
    from ..runtime.match import Gallery

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
    from ..runtime.match import Gallery

    emb, names = _results(results, output)
    ids, cams = _labels(names, id_regex)
    r = Gallery.load(gallery_file).evaluate(emb, ids, cams)
    cmc = [float(x) for x in r["cmc"][:10]]
    click.echo(json.dumps({"rank1": cmc[0] if cmc else None, "cmc@1..10": cmc, "mAP": float(r["mAP"])}, indent=1))
