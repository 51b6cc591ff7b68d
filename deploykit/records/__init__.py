"""Typed pre/post-processing records of the manifest (schema 2), torch-free.

A manifest's `preprocess` and `postprocess` entries are the `to_json()` of these frozen records:
the model specs build them, every runtime `from_manifest` reads them back with `preprocess_of` /
`postprocess_of`, so nothing is decided by reading prose. Method facts the runtime does not
interpret (PGFA's heatmap recipe, a note) ride along in `extra`, written and read back unchanged.

Schema 1 manifests (deploykit 0.x) hold the same records without the typed fields; they still
load: a missing field takes the value schema 1 implied (the `_v1_*` functions, the one place that
reads the old prose). In a schema >= 2 manifest the typed fields are required. A bad value raises
BadInputError naming the field ("manifest preprocess.resample='lanczos' is not one of ...").

This package sits beside `manifest.py`, below the runtime: it imports only `errors` and `constants`.
"""

from .base import ALIASES, RECORDS_SINCE, ColorOrder, CropMethod, Decoder, Metric, Resample, member
from .post import EmbeddingPostprocess, HeatmapPostprocess, PoseNMS, Postprocess, postprocess_of
from .pre import Crop, ImagePreprocess, Preprocess, SilhouettePreprocess, preprocess_of, strict_for

__all__ = ["ALIASES", "RECORDS_SINCE", "ColorOrder", "Crop", "CropMethod", "Decoder", "EmbeddingPostprocess",
           "HeatmapPostprocess", "ImagePreprocess", "Metric", "PoseNMS", "Postprocess", "Preprocess", "Resample",
           "SilhouettePreprocess", "member", "postprocess_of", "preprocess_of", "strict_for"]
