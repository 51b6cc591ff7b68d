"""Embedding matching: metrics, CMC/mAP, the benchmark protocols, and galleries that persist.

Modules: `metrics` (one registered object per distance: prepare / pairwise / FAISS vectors),
`distance` (distance matrices, PGFA's embedding dict), `evaluation` (CMC/mAP with exclusions),
`market1501` (RGA's Market-1501 protocol), `opengait` (CASIA-B / OU-MVLP), `labels` (identities
and cameras from paths), `gallery` (a persistent, lockable gallery), `faiss_gallery` (FAISS
candidates re-scored exactly; extra `[faiss]`). No torch.
"""

from .distance import distance, pgfa_embeddings, pgfa_similarity
from .evaluation import average_precision, evaluate
from .faiss_gallery import FaissGallery
from .gallery import Gallery, SearchResult
from .locking import locked, update
from .labels import JUNK_IDS, LAYOUTS, PathLabels, labels_from_paths
from .market1501 import evaluate_market1501
from .metrics import METRICS, Embeddings, Metric
from .metrics import get as get_metric
from .opengait import de_diag, evaluate_casia_b

__all__ = [
    "JUNK_IDS", "LAYOUTS", "METRICS", "Embeddings", "FaissGallery", "Gallery", "Metric", "PathLabels", "SearchResult",
    "average_precision", "de_diag", "distance", "evaluate", "evaluate_casia_b", "evaluate_market1501",
    "get_metric", "labels_from_paths", "locked", "pgfa_embeddings", "pgfa_similarity", "update",
]
