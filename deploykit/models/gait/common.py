"""Facts shared by the OpenGait models: silhouette inputs, embedding outputs, pre/post-processing.

Values from shared/model_facts/opengait_facts.md sections 6 and 7.
"""

from __future__ import annotations

from ...records import EmbeddingPostprocess, Metric, SilhouettePreprocess
from ..registry import InputTemplate, OutputTemplate

OPENGAIT = "ShiqiYu/OpenGait@0efafd4"
OPENGAIT_LICENCE = "OpenGait code: MIT. Released weights follow each dataset's licence (research use)."
DEFAULT_FRAMES = 30


def silhouettes(h: int = 64, w: int = 44, name: str = "sils") -> InputTemplate:
    """A `[n, s, h, w]` float32 silhouette clip in [0, 1] (OpenGait pretreatment, then /255)."""
    cut = (h - w) // 2  # pretreatment makes h x h frames, the cutting transform removes the sides
    return InputTemplate(name, ("batch", "frames", h, w), "float32",
                         f"[n, s, {h}, {w}] silhouettes in [0, 1]: OpenGait pretreatment "
                         f"(height {h}, centred, {cut} px cut each side), /255")


EMBEDDINGS = OutputTemplate("embeddings", "[n, c, p] per-part embeddings; compare with Euclidean distance "
                                          "per part, averaged over parts")


def preprocess(img_size: int = 64) -> dict:
    """Silhouette pretreatment facts (runtime/gait.py applies them)."""
    return SilhouettePreprocess(img_size, cutting=(img_size // 64) * 10, divisor=255.0, sampler="all_ordered").to_json()


POSTPROCESS = EmbeddingPostprocess(Metric.EUCLIDEAN_PER_PART_MEAN, output="embeddings",
                                   extra={"layout": "[n, c, p]"}).to_json()
