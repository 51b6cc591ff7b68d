"""RGA: Relation-Aware Global Attention for Person Re-identification (Zhang, Lan, Zeng, Jin, Chen;
CVPR 2020, arXiv:1904.02998).

Upstream: microsoft/Relation-Aware-Global-Attention-Networks@cdc9965 `reid/models/rga_model.py`
(`ResNet50_RGA_Model`, branch "rgasc"), `models_utils/rga_branches.py`, `models_utils/rga_modules.py`.
Licence: MIT (code). The repository releases no trained re-ID weights (only ImageNet ResNet-50 is used
to initialise training).

Export notes: upstream pools with `avg_pool2d(x, x.size()[2:])`, which the TorchScript exporter cannot
trace under a dynamic batch axis; here it is `mean((2, 3))`. Every reshape keeps the batch as -1 and
uses the spatial size fixed at construction, so the graph exports with a static or a dynamic batch.
The spatial size itself cannot vary: H*W is baked into conv channel counts (input exactly 256x128).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ...errors import BadInputError
from ...records import EmbeddingPostprocess, Metric, Resample
from ..backbones import Bottleneck, ResNet
from ..images import image_input, image_preprocess
from ..registry import ModelSpec, OutputTemplate, register_model


def _embed(cin: int, cout: int) -> nn.Sequential:
    """1x1 conv (no bias) + BN + ReLU: every RGA embedding function."""
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def _attention_head(cin: int, down_ratio: int) -> nn.Sequential:
    """conv 1x1 cin -> cin//r, BN, ReLU, conv 1x1 -> 1, BN(1): maps relation features to one logit."""
    mid = cin // down_ratio
    return nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
                         nn.Conv2d(mid, 1, 1, bias=False), nn.BatchNorm2d(1))


class RGAModule(nn.Module):
    """Spatial (RGA-S) then channel (RGA-C) relation-aware attention on a fixed-size map.

    Args:
        channels: C of the input map.
        height: H of the input map (fixed: H*W sets channel counts of the channel branch).
        width: W of the input map.
        ratio: C and H*W reduction of the embeddings (upstream cha_ratio = spa_ratio); default 8.
        down_ratio: reduction inside the attention heads; default 8.
    """

    def __init__(self, channels: int, height: int, width: int, ratio: int = 8, down_ratio: int = 8) -> None:
        super().__init__()
        self.channels, self.height, self.width = channels, height, width
        hw = height * width
        ic, ihw = channels // ratio, hw // ratio
        self.inter_channels = ic
        # registration order = upstream state-dict order
        self.gx_spatial = _embed(channels, ic)
        self.gx_channel = _embed(hw, ihw)
        self.gg_spatial = _embed(2 * hw, ihw)
        self.gg_channel = _embed(2 * channels, ic)
        self.W_spatial = _attention_head(1 + ihw, down_ratio)
        self.W_channel = _attention_head(1 + ic, down_ratio)
        self.theta_spatial = _embed(channels, ic)
        self.phi_spatial = _embed(channels, ic)
        self.theta_channel = _embed(hw, ihw)
        self.phi_channel = _embed(hw, ihw)

    def spatial(self, x: torch.Tensor) -> torch.Tensor:
        """RGA-S: [n, c, h, w] -> [n, c, h, w] weighted by one sigmoid attention value per position."""
        h, w, ic = self.height, self.width, self.inter_channels  # static: reshapes need no Shape ops
        theta = self.theta_spatial(x).reshape(-1, ic, h * w).transpose(1, 2)  # [n, hw, c/8]
        phi = self.phi_spatial(x).reshape(-1, ic, h * w)  # [n, c/8, hw]
        gs = torch.matmul(theta, phi)  # [n, hw, hw]: relation of position i to j
        gs_in = gs.transpose(1, 2).reshape(-1, h * w, h, w)  # [n, hw, h, w]
        gs_out = gs.reshape(-1, h * w, h, w)
        relations = self.gg_spatial(torch.cat((gs_in, gs_out), 1))  # [n, 2hw, h, w] -> [n, hw/8, h, w]
        g_x = self.gx_spatial(x).mean(dim=1, keepdim=True)  # [n, 1, h, w]
        logit = self.W_spatial(torch.cat((g_x, relations), 1))  # [n, 1, h, w]
        return torch.sigmoid(logit) * x

    def channel(self, x: torch.Tensor) -> torch.Tensor:
        """RGA-C: [n, c, h, w] -> [n, c, h, w] weighted by one sigmoid attention value per channel."""
        xc = x.reshape(-1, self.channels, self.height * self.width).transpose(1, 2).unsqueeze(-1)  # [n, hw, c, 1]
        theta = self.theta_channel(xc).squeeze(-1).transpose(1, 2)  # [n, c, hw/8]
        phi = self.phi_channel(xc).squeeze(-1)  # [n, hw/8, c]
        gc = torch.matmul(theta, phi)  # [n, c, c]
        gc_in = gc.transpose(1, 2).unsqueeze(-1)  # [n, c, c, 1]
        gc_out = gc.unsqueeze(-1)
        relations = self.gg_channel(torch.cat((gc_in, gc_out), 1))  # [n, 2c, c, 1] -> [n, c/8, c, 1]
        g_x = self.gx_channel(xc).mean(dim=1, keepdim=True)  # [n, 1, c, 1]
        logit = self.W_channel(torch.cat((g_x, relations), 1)).transpose(1, 2)  # [n, 1, c, 1] -> [n, c, 1, 1]
        return torch.sigmoid(logit) * x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, c, h, w] float32 -> [n, c, h, w] float32 (spatial, then channel attention)."""
        return self.channel(self.spatial(x))


class RGABackbone(ResNet):
    """ResNet-50 (last stride 1, no fc) with an RGA module after each stage (upstream `RGA_Branch`)."""

    def __init__(self, height: int = 256, width: int = 128, ratio: int = 8, down_ratio: int = 8) -> None:
        super().__init__(Bottleneck, [3, 4, 6, 3], last_stride=1, num_classes=None)
        sizes = [(height // s, width // s) for s in (4, 8, 16, 16)]  # stage outputs with last stride 1
        for i, (c, (h, w)) in enumerate(zip((256, 512, 1024, 2048), sizes)):
            setattr(self, f"rga_att{i + 1}", RGAModule(c, h, w, ratio, down_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, 3, 256, 128] -> [n, 2048, 16, 8]."""
        x = self.forward_stem(x)
        x = self.rga_att1(self.layer1(x))  # [n, 256, 64, 32]
        x = self.rga_att2(self.layer2(x))  # [n, 512, 32, 16]
        x = self.rga_att3(self.layer3(x))  # [n, 1024, 16, 8]
        return self.rga_att4(self.layer4(x))  # [n, 2048, 16, 8]


class RGA(nn.Module):
    """ResNet-50 + RGA-S/C, global average pool and a BNNeck; eval outputs (pre-BN, post-BN) features.

    Args:
        num_classes: identities of the training-only classifier `cls` (Linear, no bias); default 767
            (CUHK03 new protocol). Kept so upstream checkpoints load with strict=True.
        height: input height; default 256. Only 256x128 matches upstream checkpoints.
        width: input width; default 128.
    """

    def __init__(self, num_classes: int = 767, height: int = 256, width: int = 128) -> None:
        super().__init__()
        if height % 16 or width % 16:
            raise BadInputError(f"RGA: input {height}x{width} must be divisible by 16")
        if (height // 16) * (width // 16) // 8 + 1 < 8:  # the last RGA-S head would have 0 channels
            raise BadInputError(f"RGA: input {height}x{width} is too small: the stage-4 map needs at least 56 "
                                f"positions for the attention heads; use 192x96 or larger")
        self.height, self.width = height, width
        self.backbone = RGABackbone(height, width)
        self.feat_bn = nn.BatchNorm1d(2048)
        self.cls = nn.Linear(2048, num_classes, bias=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images [n, 3, 256, 128] float32 (RGB, ImageNet-normalised) -> (feat_pre_bn [n, 2048], feat [n, 2048])."""
        if not torch.jit.is_tracing() and tuple(images.shape[-2:]) != (self.height, self.width):
            raise BadInputError(f"RGA: input is {tuple(images.shape[-2:])} but this model was built for "
                                f"{self.height}x{self.width} (H*W is baked into its channel counts); "
                                f"resize the crops to {self.height}x{self.width}")
        feat_pre_bn = self.backbone(images).mean((2, 3))  # [n, 2048, 16, 8] -> [n, 2048]
        return feat_pre_bn, self.feat_bn(feat_pre_bn)


# Checkpoints: `checkpoint_{epoch}.pth.tar` = {'state_dict': model.module.state_dict(), ...}; the loader
# unwraps `state_dict` (and strips a `module.` prefix), so no adapter is needed.
SPEC = ModelSpec(
    name="rga", family="reid", upstream_keys="rga_resnet50.json",
    inputs=(image_input(256, 128),),
    outputs=(OutputTemplate("feat_pre_bn", "[n, 2048] global average pool of the attended ResNet-50 map "
                                           "(upstream feat_); compare with cosine distance"),
             OutputTemplate("feat", "[n, 2048] after the BNNeck BatchNorm1d (upstream feat); compare with "
                                    "cosine distance")),
    default_config={"num_classes": 767, "height": 256, "width": 128},  # height x width: the input (HxW baked in)
    upstream="microsoft/Relation-Aware-Global-Attention-Networks@cdc9965 reid/models/rga_model.py",
    paper="Relation-Aware Global Attention for Person Re-identification, CVPR 2020, arXiv:1904.02998",
    licence="RGA code: MIT (Microsoft). No trained re-ID weights are released; weights you train follow "
            "the dataset's licence (CUHK03/Market-1501/DukeMTMC: research use).",
    preprocess=image_preprocess(256, 128, resample=Resample.BILINEAR,
                                resize="PIL bilinear resize to 256x128 (RectScale), no crop", flip_embedding=False),
    input_size_keys=("height", "width"),  # H*W sets RGA's channel counts: a checkpoint fits one size only
    postprocess=EmbeddingPostprocess(
        Metric.COSINE, output="feat", outputs=("feat_pre_bn", "feat"),
        extra={"layout": "[n, 2048]", "distance": "1 - normalize(x) . normalize(y)",
               "note": "upstream evaluates both outputs with the cosine metric"}).to_json(),
)


@register_model(SPEC)
def rga(**config) -> RGA:
    return RGA(**config)
