"""PRTR two-stage: Pose Recognition with Cascade Transformers (Li, Wang, Zhang, Xu, Xu, Tu; CVPR 2021,
arXiv:2104.06976), the keypoint-detection transformer run on person crops.

Upstream: mlpc-ucsd/PRTR@64970b8 `two_stage/lib/models/{pose_transformer,transformer,backbone,hrnet,
positional_encoding}.py`, configs `two_stage/experiments/coco/transformer/{res50,w32}_384x288_adamw_lr1e-4.yaml`.
Licence: Apache-2.0 (DETR-derived).

Graph: backbone (ResNet-50 with FrozenBatchNorm2d, or HRNet-W32 with the classification head) ->
2048 x h/32 x w/32 -> input_proj Conv1x1 -> 256 -> DETR transformer (post-norm, 6 encoder + 6
decoder layers, 8 heads, FFN 2048, dropout 0) with 100 learned queries -> class logits over 17 joints
+ no-object, sigmoid (x, y) in [0, 1] of the input crop. Only the last decoder layer is returned
(the auxiliary outputs are training-only). The sine position encoding depends only on the feature
map size, so it is computed once at build time for `image_size` and held as a non-persistent buffer:
the ONNX graph gets a constant instead of CumSum/Sin/Cos.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...constants import COCO_FLIP_PAIRS, COCO_JOINTS
from ...errors import BadInputError
from ...records import Decoder, HeatmapPostprocess
from ..backbones.hrnet import HRNet
from ..backbones.resnet import FrozenBatchNorm2d, resnet50, resnet101
from ..registry import ModelSpec, OutputTemplate, register_model
from . import common

UPSTREAM = "mlpc-ucsd/PRTR@64970b8 two_stage/lib/models/pose_transformer.py"
PAPER = "PRTR, CVPR 2021, arXiv:2104.06976"
BACKBONE_STRIDES = 5  # stride-2 steps to the 2048-channel map, each ceil(n / 2) (k3/p1 or k7/p3 convs, pools)


def sine_position_encoding(h: int, w: int, num_pos_feats: int = 128, temperature: float = 10000.0) -> torch.Tensor:
    """DETR's normalised sine encoding with an all-valid mask: [1, 2 * num_pos_feats, h, w] float32.

    Same float32 arithmetic as upstream `PositionEmbeddingSine(normalize=True, scale=2 pi)`, so the
    values are bit-identical to what it computes at run time.
    """
    not_mask = torch.ones(1, h, w)
    y_embed = not_mask.cumsum(1, dtype=torch.float32)
    x_embed = not_mask.cumsum(2, dtype=torch.float32)
    eps, scale = 1e-6, 2 * math.pi
    y_embed = y_embed / (y_embed[:, -1:, :] + eps) * scale
    x_embed = x_embed / (x_embed[:, :, -1:] + eps) * scale
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32)
    dim_t = temperature ** (2 * (dim_t // 2) / num_pos_feats)
    pos_x = x_embed[:, :, :, None] / dim_t  # [1, h, w, f]
    pos_y = y_embed[:, :, :, None] / dim_t
    pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
    pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
    return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2).contiguous()  # [1, 2f, h, w]


class PositionEmbeddingSine(nn.Module):
    """Upstream's Joiner slot 1: the encoding for a fixed feature size, as a buffer outside the state dict.

    Args:
        hidden_dim: d_model; the encoding has hidden_dim channels (hidden_dim / 2 per axis).
        feature_hw: (h, w) of the backbone map the encoding is made for.
    """

    def __init__(self, hidden_dim: int, feature_hw: Sequence[int]) -> None:
        super().__init__()
        self.num_pos_feats = hidden_dim // 2
        self.register_buffer("pos", sine_position_encoding(*feature_hw, self.num_pos_feats), persistent=False)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        """feature [n, c, h, w] -> encoding [1, hidden_dim, h, w] (broadcast over n)."""
        h, w = feature.shape[-2:]
        if (h, w) == tuple(self.pos.shape[-2:]):
            return self.pos
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            raise BadInputError(f"PRTR was built for a {tuple(self.pos.shape[-2:])} feature map but got "
                                f"{(h, w)}; export with the config image_size matching the input")
        return sine_position_encoding(h, w, self.num_pos_feats).to(feature)


class BackboneBody(nn.Module):
    """Upstream's Joiner slot 0 (`backbone.0.body.*`): the stride-32, 2048-channel feature extractor."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, 3, h, w] -> [n, 2048, h/32, w/32]."""
        return self.body(x)


class EncoderLayer(nn.Module):
    """DETR post-norm encoder layer: x = norm1(x + attn(x + pos, x + pos, x)); x = norm2(x + ffn(x))."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, src: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """src [hw, n, d], pos [hw, 1, d] -> [hw, n, d]."""
        q = src + pos
        src = self.norm1(src + self.self_attn(q, q, src, need_weights=False)[0])
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


class DecoderLayer(nn.Module):
    """DETR post-norm decoder layer: self-attention, cross-attention on the memory, FFN; each + norm."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead)
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        """tgt [q, n, d], memory [hw, n, d], pos [hw, 1, d], query_pos [q, n, d] -> [q, n, d]."""
        q = tgt + query_pos
        tgt = self.norm1(tgt + self.self_attn(q, q, tgt, need_weights=False)[0])
        tgt = self.norm2(tgt + self.multihead_attn(tgt + query_pos, memory + pos, memory, need_weights=False)[0])
        return self.norm3(tgt + self.linear2(F.relu(self.linear1(tgt))))


class Stack(nn.Module):
    """`layers` (ModuleList) plus an optional final `norm`: upstream's TransformerEncoder/Decoder keys."""

    def __init__(self, layers: list[nn.Module], norm: nn.Module | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = norm


class Transformer(nn.Module):
    """DETR's Transformer (post-norm, no encoder final norm); returns the normed last decoder layer."""

    def __init__(self, d_model: int = 256, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
                 dim_feedforward: int = 2048) -> None:
        super().__init__()
        self.encoder = Stack([EncoderLayer(d_model, nhead, dim_feedforward) for _ in range(num_encoder_layers)])
        self.decoder = Stack([DecoderLayer(d_model, nhead, dim_feedforward) for _ in range(num_decoder_layers)],
                             nn.LayerNorm(d_model))
        self.d_model = d_model

    def forward(self, src: torch.Tensor, query_embed: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """src [n, d, h, w], query_embed [q, d], pos [1, d, h, w] -> decoder output [n, q, d]."""
        n = src.shape[0]
        src = src.flatten(2).permute(2, 0, 1)  # [n, d, h, w] -> [hw, n, d]
        pos = pos.flatten(2).permute(2, 0, 1)  # [1, d, h, w] -> [hw, 1, d]
        query_pos = query_embed.unsqueeze(1).repeat(1, n, 1)  # [q, d] -> [q, n, d]
        memory = src
        for layer in self.encoder.layers:
            memory = layer(memory, pos)
        out = torch.zeros_like(query_pos)
        for layer in self.decoder.layers:
            out = layer(out, memory, pos, query_pos)
        return self.decoder.norm(out).transpose(0, 1)  # [q, n, d] -> [n, q, d]


class MLP(nn.Module):
    """`num_layers` Linear layers with ReLU between (key `layers.{i}`)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:] + [output_dim]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., input_dim] -> [..., output_dim]."""
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


def _feature_hw(image_size: Sequence[int]) -> tuple[int, int]:
    h, w = (int(v) for v in image_size)
    for _ in range(BACKBONE_STRIDES):
        h, w = (h + 1) // 2, (w + 1) // 2
    return h, w


class PRTR(nn.Module):
    """PRTR's `PoseTransformer` (two-stage, top-down), keys as upstream.

    Args:
        backbone: "resnet50", "resnet101" (FrozenBatchNorm2d, torchvision layout) or "hrnet_w32"
            (HRNet-W32 with the classification head). Default "resnet50".
        image_size: input [h, w]; fixes the position encoding. Default [384, 288].
        num_joints: joint classes; the classifier adds a no-object class. Default 17.
        num_queries: default 100.
        hidden_dim: transformer width; default 256.
        nheads: default 8.
        enc_layers: default 6.
        dec_layers: default 6.
        dim_feedforward: default 2048.
    """

    def __init__(self, backbone: str = "resnet50", image_size: Sequence[int] = (384, 288), num_joints: int = 17,
                 num_queries: int = 100, hidden_dim: int = 256, nheads: int = 8, enc_layers: int = 6,
                 dec_layers: int = 6, dim_feedforward: int = 2048) -> None:
        super().__init__()
        bodies = {"resnet50": lambda: resnet50(num_classes=None, norm_layer=FrozenBatchNorm2d),
                  "resnet101": lambda: resnet101(num_classes=None, norm_layer=FrozenBatchNorm2d),
                  "hrnet_w32": lambda: HRNet(width=32, head="cls")}
        if backbone not in bodies:
            raise ValueError(f"PRTR backbone {backbone!r} is not one of {sorted(bodies)}")
        self.transformer = Transformer(hidden_dim, nheads, enc_layers, dec_layers, dim_feedforward)
        self.backbone = nn.Sequential(BackboneBody(bodies[backbone]()),
                                      PositionEmbeddingSine(hidden_dim, _feature_hw(image_size)))
        self.class_embed = nn.Linear(hidden_dim, num_joints + 1)
        self.kpt_embed = MLP(hidden_dim, hidden_dim, 2, 3)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.input_proj = nn.Conv2d(2048, hidden_dim, kernel_size=1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images [n, 3, h, w] float32 -> (logits [n, q, J + 1], coords [n, q, 2] sigmoid (x, y)) float32."""
        feature = self.backbone[0](images)  # [n, 2048, h/32, w/32]
        pos = self.backbone[1](feature)  # [1, d, h/32, w/32]
        hs = self.transformer(self.input_proj(feature), self.query_embed.weight, pos)  # [n, q, d]
        return self.class_embed(hs), self.kpt_embed(hs).sigmoid()


_BODY = re.compile(r"^backbone\.body\.")


def adapt_checkpoint(state_dict: dict) -> dict:
    """PRTR's `model_key_helper`: old files name the backbone `backbone.body.*`, the model `backbone.0.body.*`.

    (`best_state_dict` unwrapping and `module.` stripping are the generic loader's.)
    """
    return {_BODY.sub("backbone.0.body.", k): v for k, v in state_dict.items()}


def _adapt_frozen(state_dict: dict) -> dict:
    """`adapt_checkpoint`, then drop backbone `num_batches_tracked` keys: FrozenBatchNorm2d has none and
    drops them itself on load (as DETR's does), but `compare` would report them as unexpected."""
    return {k: v for k, v in adapt_checkpoint(state_dict).items()
            if not (k.startswith("backbone.0.body.") and k.endswith(".num_batches_tracked"))}


OUTPUTS = (OutputTemplate("logits", "[n, 100, 18] class logits per query: 17 COCO joints then no-object"),
           OutputTemplate("coords", "[n, 100, 2] sigmoid (x, y) per query, normalised to the input crop"))
POSTPROCESS = HeatmapPostprocess(
    Decoder.PRTR, channels=17, flip_pairs=COCO_FLIP_PAIRS, flip_shift=None, flip_test=True, kind="keypoint_queries",
    extra={"upstream_decoder": "prtr_hungarian", "num_queries": 100, "no_object_last": True,
           "softmax": "over the 17 joint logits (no-object dropped first)",
           "match": "linear_sum_assignment(-prob.T): each joint gets a distinct query",
           "coords": "x * input_w, y * input_h, then the inverse crop affine", "score": "matched prob",
           "joints": list(COCO_JOINTS), "flip_pixel_align": False}).to_json()


def _spec(name: str, backbone: str, color: str, upstream_keys: str, adapt) -> ModelSpec:
    note = ("BGR (COLOR_RGB false): ImageNet mean/std are applied as listed to the B, G, R planes"
            if color == "BGR" else None)
    return ModelSpec(
        name=name, family="pose", inputs=(common.pose_input(384, 288, color=color),), outputs=OUTPUTS,
        default_config={"backbone": backbone, "image_size": [384, 288], "num_joints": 17, "num_queries": 100},
        upstream_keys=upstream_keys, upstream=UPSTREAM, paper=PAPER, licence=common.PRTR_LICENCE,
        preprocess=common.topdown_preprocess(384, 288, color=color, note=note), postprocess=POSTPROCESS,
        adapt_checkpoint=adapt)


@register_model(_spec("prtr-res50", "resnet50", "BGR", "prtr_res50_384x288.json", _adapt_frozen))
def prtr_res50(**config) -> PRTR:
    return PRTR(**config)


@register_model(_spec("prtr-hrnet-w32", "hrnet_w32", "RGB", "prtr_hrnet_w32_384x288.json", adapt_checkpoint))
def prtr_hrnet_w32(**config) -> PRTR:
    return PRTR(**config)
