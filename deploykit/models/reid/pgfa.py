"""PGFA: Pose-Guided Feature Alignment for Occluded Person Re-Identification (Miao, Wu, Liu, Ding,
Yang; ICCV 2019).

Upstream: lightas/ICCV19_Pose_Guided_Occluded_Person_ReID@f3aaf4c `model.py` (`PCB`, `ClassBlock`) and
`test.py` (`extract_partial_feature`, `extract_pg_global_feature`). The repository states no licence
(all rights reserved by default): ask the authors before redistributing it or weights trained with it.

Test-time features (upstream `test.py`): the ResNet-50 map F [n, 2048, 24, 8] (last stride 1) gives
- part features: `part_num` horizontal stripes, average pooled, raw 2048-d (the part ClassBlocks are
  loaded upstream but never used at test time; they are kept here for strict loading);
- the pose-guided global feature: cat(GAP(F), max_j GAP(heatmap_j * F)) [n, 4096] -> Linear(4096, 256)
  + BatchNorm1d(256) (the global ClassBlock without its classifier).

Checkpoints are one plain state-dict file per upstream module (`net_59.pth`, `global_59.pth`,
`partial{i}_59.pth`); this module's state dict is their union under the prefixes of `KEY_PREFIXES`, and
`checkpoint_files` names them for `checkpoints.load_multi`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import BadInputError
from ...records import EmbeddingPostprocess, Metric, Resample
from ..backbones import resnet50
from ..images import image_input, image_preprocess
from ..registry import InputTemplate, ModelSpec, OutputTemplate, register_model

NUM_KEYPOINTS = 18  # OpenPose order, from old AlphaPose's "open" JSON


class ClassBlock(nn.Module):
    """Upstream `ClassBlock(input_dim, class_num, dropout=True, relu=False, num_bottleneck)`.

    `add_block` = [Linear(in, bottleneck), BatchNorm1d, Dropout(0.5)] (the embedding at test time);
    `classifier` = [Linear(bottleneck, class_num)] (training logits only).
    """

    def __init__(self, input_dim: int, class_num: int, num_bottleneck: int = 256) -> None:
        super().__init__()
        self.add_block = nn.Sequential(nn.Linear(input_dim, num_bottleneck), nn.BatchNorm1d(num_bottleneck),
                                       nn.Dropout(p=0.5))
        self.classifier = nn.Sequential(nn.Linear(num_bottleneck, class_num))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, input_dim] -> [n, num_bottleneck] (the test-time embedding; the classifier is skipped)."""
        return self.add_block(x)


class PCB(nn.Module):
    """Upstream `PCB`: a torchvision ResNet-50 under `model` with last stride 1 (its ImageNet fc stays
    in the state dict, unused)."""

    def __init__(self) -> None:
        super().__init__()
        self.model = resnet50(last_stride=1, num_classes=1000)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[n, 3, 384, 128] -> feature map [n, 2048, 24, 8]."""
        return self.model.forward_features(images)


class PGFA(nn.Module):
    """PGFA's test-time network: backbone, pose-guided global branch and part stripes.

    Args:
        part_num: horizontal stripes; 3 (Occluded-Duke, default) or 6 (the Partial-REID example). Must
            divide the 24 rows of the feature map.
        class_num: training identities of the ClassBlock classifiers; default 702 (Occluded-Duke).
        num_bottleneck: width of the global embedding; default 256.
        height: input height; default 384.
        width: input width; default 128.
    """

    def __init__(self, part_num: int = 3, class_num: int = 702, num_bottleneck: int = 256,
                 height: int = 384, width: int = 128) -> None:
        super().__init__()
        self.map_h, self.map_w = height // 16, width // 16  # last stride 1: output stride 16
        if part_num < 1 or self.map_h % part_num:
            raise ValueError(f"PGFA: part_num {part_num} must divide the {self.map_h} feature-map rows "
                             f"(upstream uses 3 or 6)")
        self.part_num = part_num
        self.backbone = PCB()
        self.global_head = ClassBlock(4096, class_num, num_bottleneck)
        self.part_heads = nn.ModuleList(ClassBlock(2048, class_num, num_bottleneck) for _ in range(part_num))

    def forward(self, images: torch.Tensor, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed a batch of person crops with their keypoint heatmaps.

        Args:
            images: [n, 3, 384, 128] float32, RGB, ImageNet-normalised.
            heatmaps: [n, 18, 24, 8] float32 in [0, 1], one map per OpenPose keypoint at the feature-map
                size (zeros for keypoints with confidence <= 0.2).

        Returns:
            global_feat [n, 256] float32 (pose-guided global feature) and part_feats [n, part_num, 2048]
            float32 (raw stripe features, top to bottom).
        """
        fmap = self.backbone(images)  # [n, 2048, 24, 8]
        want = (NUM_KEYPOINTS, self.map_h, self.map_w)
        if not torch.jit.is_tracing() and (tuple(fmap.shape[-2:]) != want[1:] or tuple(heatmaps.shape[1:]) != want):
            raise BadInputError(f"PGFA: images {tuple(images.shape[-2:])} give a {tuple(fmap.shape[-2:])} feature "
                                f"map and heatmaps are {tuple(heatmaps.shape[1:])}; this model needs images of "
                                f"{self.map_h * 16}x{self.map_w * 16} and heatmaps of {want}")
        cells = self.map_h * self.map_w
        flat = fmap.reshape(-1, 2048, cells)  # [n, 2048, 192] (static sizes: no Shape ops in the graph)
        pooled = flat.mean(-1)  # [n, 2048] = GAP(F)
        # GAP(m_j * F) for all j at once: sum over cells of m_j * F / cells (not normalised by the mask)
        masks = heatmaps.reshape(-1, NUM_KEYPOINTS, cells)  # [n, 18, 192]
        masked = torch.matmul(masks, flat.transpose(1, 2)) / cells  # [n, 18, 2048]
        pose_pooled = masked.amax(dim=1)  # [n, 2048]: max over the 18 keypoints
        global_feat = self.global_head(torch.cat((pooled, pose_pooled), 1))  # [n, 4096] -> [n, 256]
        stripes = F.avg_pool2d(fmap, (self.map_h // self.part_num, self.map_w))  # [n, 2048, part_num, 1]
        part_feats = stripes.squeeze(-1).transpose(1, 2)  # [n, part_num, 2048]
        return global_feat, part_feats


def key_prefixes(part_num: int = 3) -> dict[str, str]:
    """Our state-dict prefix -> upstream key-list file, one entry per upstream checkpoint file."""
    parts = {f"part_heads.{i}.": "pgfa_partial_classblock.json" for i in range(part_num)}
    return {"backbone.": "pgfa_resnet50.json", "global_head.": "pgfa_global_classblock.json", **parts}


def checkpoint_files(directory: str | os.PathLike, epoch: str | int = 59, part_num: int = 3) -> dict[str, Path]:
    """Our prefix -> upstream file in a training result directory (`result/<name>/` upstream).

    Upstream `train.py` saves `net_{epoch}.pth` (PCB), `global_{epoch}.pth` and `partial{i}_{epoch}.pth`
    with `network.cpu().state_dict()`; `test.py` loads epoch 59 by default.
    """
    d = Path(directory)
    parts = {f"part_heads.{i}.": d / f"partial{i}_{epoch}.pth" for i in range(part_num)}
    return {"backbone.": d / f"net_{epoch}.pth", "global_head.": d / f"global_{epoch}.pth", **parts}


def _heatmaps() -> InputTemplate:
    return InputTemplate("heatmaps", ("batch", NUM_KEYPOINTS, 24, 8), "float32",
                         "[n, 18, 24, 8] OpenPose-order keypoint heatmaps in [0, 1] at the feature-map size "
                         "(see preprocess.heatmaps)")


SPEC = ModelSpec(
    name="pgfa", family="reid", upstream_keys=key_prefixes(3),
    inputs=(image_input(384, 128), _heatmaps()),
    outputs=(OutputTemplate("global_feat", "[n, 256] pose-guided global feature (Linear 4096->256 + BN)"),
             OutputTemplate("part_feats", "[n, part_num, 2048] raw average-pooled horizontal stripes, top to "
                                          "bottom")),
    default_config={"part_num": 3, "class_num": 702},
    upstream="lightas/ICCV19_Pose_Guided_Occluded_Person_ReID@f3aaf4c model.py, test.py",
    paper="Pose-Guided Feature Alignment for Occluded Person Re-Identification, ICCV 2019",
    licence="PGFA code: no licence file upstream (all rights reserved); ask the authors before "
            "redistribution. Its weights were trained on Occluded-Duke (DukeMTMC-reID: research use only).",
    preprocess=image_preprocess(
        384, 128, resample=Resample.BICUBIC, resize="PIL Resize((384, 128), BICUBIC), no crop",
        heatmaps={"source": "old AlphaPose 'open' JSON: 18 OpenPose keypoints (COCO + neck = mean of "
                            "shoulders), person with the most keypoints of confidence > 0.2",
                  "gaussian": "exp(-d^2 / (2 sigma^2)) at the original image resolution, sigma = h * w / 1000",
                  "low_confidence": "keypoints with confidence <= 0.2 give an all-zero map",
                  "no_pose_file": "all maps are ones",
                  "resize": "x255 to uint8, PIL bilinear to (w=8, h=24), /255"}),
    postprocess=EmbeddingPostprocess(
        Metric.PGFA, output="global_feat+part_feats", outputs=("global_feat", "part_feats"),
        extra={"visibility": "part k visible if a keypoint with confidence > 0.2 (person with the most) has "
                             "k/P*H < y < (k+1)/P*H in the original image; all ones without pose or with "
                             "fewer than 3 keypoints",
               "similarity": "s_g = (cos(g_q, g_g) + 1) / 2; s_k = (cos(p_qk, p_gk) + 1) / 2 * v_qk * v_gk; "
                             "sim = (sum_k s_k + s_g) / (sum_k v_qk * v_gk + 1); rank descending"}).to_json(),
)


@register_model(SPEC)
def pgfa(**config) -> PGFA:
    return PGFA(**config)
