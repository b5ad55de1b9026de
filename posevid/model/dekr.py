"""DEKR with a ConvGRU: encoder features → (temporal context) → heatmap head + per-keypoint offset branches.

Two encoders feed the same heads: DEKR's own HRNet (`DEKR`, official parameter names, so official
checkpoints load unchanged) and an ImageNet-pretrained EfficientNet-Lite0 whose stride 4/8/16/32 maps go
through an HRNet exchange module (`EfficientDEKR`). `build_model(cfg)` picks by `cfg.encoder`.
Both take 0-255 RGB: the input normalisation is part of the network (non-persistent buffers).
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from posevid.config import ModelConfig
from posevid.model import efficientnet
from posevid.model.heads import head_transition, heatmap_head, offset_branches, offsets_at, offsets_grouped
from posevid.model.hrnet import BN_MOMENTUM, HighResolutionModule, HRNet
from posevid.model.temporal import ConvGRU

# ImageNet statistics on 0-255 RGB, as the official DEKR networks were trained with.
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


class DEKROutput(NamedTuple):
    heatmaps: torch.Tensor  # (N, [T,] K+1, H/4, W/4): K keypoint heatmaps, then the center heatmap
    offsets: torch.Tensor  # (N, [T,] 2K, H/4, W/4): per keypoint (x, y) of center − keypoint, official layout
    state: torch.Tensor | None  # ConvGRU state to pass with the next frame (None without temporal module)


class ClipFeatures(NamedTuple):
    heatmaps: torch.Tensor  # (N, T, K+1, H/4, W/4)
    features: torch.Tensor  # (N, T, C_f, H/4, W/4): the fused features both heads read
    state: torch.Tensor | None


class PoseHeads(nn.Module):
    """The part every posevid network shares: input normalisation, ConvGRU and the DEKR heads.
    Subclasses build their encoder and implement `backbone` (normalised image → fused stride-4 features)."""

    def _build_heads(self, cfg: ModelConfig, temporal: bool, mean: tuple, std: tuple) -> None:
        self.cfg = cfg
        self.register_buffer("input_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        k, fused = cfg.num_keypoints, cfg.fused_channels
        self.transition_heatmap = head_transition(fused, cfg.heatmap_channels)
        self.transition_offset = head_transition(fused, k * cfg.offset_channels)
        self.head_heatmap = heatmap_head(cfg.heatmap_channels, cfg.heatmap_blocks, k + 1)
        self.offset_feature_layers, self.offset_final_layer = offset_branches(
            k, cfg.offset_channels, cfg.offset_blocks)
        self.temporal = ConvGRU(fused, cfg.temporal_channels, cfg.temporal_min_update) if temporal else None

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> DEKROutput:
        """One frame of N streams. x: (N, 3, H, W) RGB in 0-255, H and W multiples of 32;
        state: (N, hidden, H/4, W/4) from the previous frame, or None at a stream's start.
        A 5-D x (N, T, 3, H, W) is a clip: see `forward_clip` (DDP wrappers only call forward)."""
        if x.dim() == 5:
            return self.forward_clip(x, state)
        out = self.forward_clip(x[:, None], state)
        return DEKROutput(out.heatmaps[:, 0], out.offsets[:, 0], out.state)

    def forward_clip(self, x: torch.Tensor, state: torch.Tensor | None = None, bf16: bool = False) -> DEKROutput:
        """T consecutive frames of N streams at once: x (N, T, 3, H, W) → outputs shaped (N, T, C, H/4, W/4).

        The backbone and the heads run on all N·T frames as one batch (faster than frame by frame); only
        the ConvGRU steps through time. Training unrolls the GRU over clips with this. bf16: see run_clip.
        """
        heatmaps, features, state = self.run_clip(x, state, bf16)
        n, t = x.shape[:2]
        offsets = offsets_grouped(self.transition_offset(features.flatten(0, 1)), self.offset_feature_layers,
                                  self.offset_final_layer)
        return DEKROutput(heatmaps, offsets.unflatten(0, (n, t)), state)

    def run_clip(self, x: torch.Tensor, state: torch.Tensor | None = None, bf16: bool = False) -> ClipFeatures:
        """Everything but the regression: heatmaps, and the fused features the regression reads, so that
        inference can regress only at the centres that survive local NMS (`offsets_at`).

        bf16: the backbone (most of the compute) in bfloat16, for inference on CPUs that compute it natively;
        the GRU and the heads stay in float32: in bfloat16 they cost accuracy (docs/benchmark.md)."""
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"input height and width must be multiples of 32, got {tuple(x.shape[-2:])}")
        n, t = x.shape[:2]
        # not autocast(enabled=bf16): disabled, it would also switch off the caller's autocast (train --amp)
        with torch.autocast(x.device.type, dtype=torch.bfloat16) if bf16 else nullcontext():
            features = self.backbone((x.flatten(0, 1) - self.input_mean) / self.input_std)  # (N·T, fused, H/4, W/4)
        if bf16:
            features = features.float()
        if self.temporal is not None:
            features = features.unflatten(0, (n, t))
            steps = []
            for i in range(t):
                f, state = self.temporal(features[:, i], state)
                steps.append(f)
            features = torch.stack(steps, 1).flatten(0, 1)
        heatmaps = self.heatmaps(features)
        return ClipFeatures(heatmaps.unflatten(0, (n, t)), features.unflatten(0, (n, t)), state)

    def heatmaps(self, features: torch.Tensor) -> torch.Tensor:
        """The heatmap head: fused features (N, C_f, h, w) → (N, K+1, h, w)."""
        return self.head_heatmap[1](self.head_heatmap[0](self.transition_heatmap(features)))

    def offsets_at(self, features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The regression of one frame at chosen map pixels only: features (C_f, h, w) from `run_clip`,
        index (P,) flat pixel indices → (P, 2K), equal to the dense offsets there."""
        return offsets_at(features, index, self.offset_feature_layers, self.offset_final_layer, self.transition_offset)


class DEKR(PoseHeads, HRNet):
    """The official DEKR network (same parameter names) plus an optional ConvGRU under `temporal.`."""

    def __init__(self, cfg: ModelConfig, temporal: bool = True):
        if cfg.encoder != "hrnet":
            raise ValueError(f"{cfg.name} has the {cfg.encoder} encoder: build it with build_model")
        HRNet.__init__(self, cfg)  # `backbone` comes from HRNet
        self._build_heads(cfg, temporal, IMAGENET_MEAN, IMAGENET_STD)


class EfficientDEKR(PoseHeads):
    """EfficientNet-Lite0 taps (stride 4/8/16/32) → 1×1 lateral projections → HRNet exchange module(s)
    (strided 3×3 convs high→low, 1×1 + upsampling low→high, summed) → every branch brought to stride 4
    and summed → ConvGRU → DEKR heads."""

    def __init__(self, cfg: ModelConfig, temporal: bool = True):
        super().__init__()
        if cfg.encoder != "efficientnet":
            raise ValueError(f"{cfg.name} has the {cfg.encoder} encoder: build it with build_model")
        widths = cfg.stages[0].channels
        self.encoder = efficientnet.EfficientNetLite0(classifier=False)
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin, c, 1, bias=False), nn.BatchNorm2d(c, momentum=BN_MOMENTUM), nn.ReLU(inplace=True))
            for cin, c in zip(efficientnet.TAP_CHANNELS, widths))
        self.exchange = nn.Sequential(*(HighResolutionModule(widths, stage.num_blocks, stage.channels)
                                        for stage in cfg.stages for _ in range(stage.num_modules)))
        self.fuse = nn.ModuleList(nn.Sequential(nn.Conv2d(c, cfg.fused_width, 1, bias=False),
                                                nn.BatchNorm2d(cfg.fused_width, momentum=BN_MOMENTUM))
                                  for c in cfg.stages[-1].channels)
        self._build_heads(cfg, temporal, efficientnet.INPUT_MEAN, efficientnet.INPUT_STD)

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse_taps(self.encoder.features(x))

    def fuse_taps(self, taps: list[torch.Tensor]) -> torch.Tensor:
        """The encoder's stride 4/8/16/32 maps → the fused stride-4 map (lateral, exchange, fusion)."""
        xs = [lateral(f) for lateral, f in zip(self.lateral, taps)]
        xs = self.exchange(xs)
        size = xs[0].shape[-2:]
        y = self.fuse[0](xs[0])
        for fuse, f in zip(self.fuse[1:], xs[1:]):  # 1×1 at low resolution first: cheaper than after upsampling
            y = y + F.interpolate(fuse(f), size=size, mode="bilinear", align_corners=False)
        return F.relu(y)

    def load_imagenet(self, path=None) -> None:
        """Starts the encoder from the ImageNet checkpoint (training extra `posevid[imagenet]`)."""
        efficientnet.load_imagenet(self.encoder, path)


def build_model(cfg: ModelConfig, temporal: bool = True) -> PoseHeads:
    """The network a config describes, with random weights (the ConvGRU at its identity start)."""
    return (EfficientDEKR if cfg.encoder == "efficientnet" else DEKR)(cfg, temporal)
