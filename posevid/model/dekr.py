"""DEKR with a ConvGRU: HRNet features → (temporal context) → heatmap head + per-keypoint offset branches."""
from __future__ import annotations

from typing import NamedTuple

import torch

from posevid.config import ModelConfig
from posevid.model.heads import head_transition, heatmap_head, offset_branches, offsets_grouped
from posevid.model.hrnet import HRNet
from posevid.model.temporal import ConvGRU


class DEKROutput(NamedTuple):
    heatmaps: torch.Tensor  # (N, K+1, H/4, W/4): K keypoint heatmaps, then the center heatmap
    offsets: torch.Tensor  # (N, 2K, H/4, W/4): per keypoint (x, y) of center − keypoint, official layout
    state: torch.Tensor | None  # ConvGRU state to pass with the next frame (None without temporal module)


class DEKR(HRNet):
    """The official DEKR network (same parameter names) plus an optional ConvGRU under `temporal.`."""

    def __init__(self, cfg: ModelConfig, temporal: bool = True):
        super().__init__(cfg)
        self.cfg = cfg
        k, fused = cfg.num_keypoints, cfg.fused_channels
        self.transition_heatmap = head_transition(fused, cfg.heatmap_channels)
        self.transition_offset = head_transition(fused, k * cfg.offset_channels)
        self.head_heatmap = heatmap_head(cfg.heatmap_channels, cfg.heatmap_blocks, k + 1)
        self.offset_feature_layers, self.offset_final_layer = offset_branches(
            k, cfg.offset_channels, cfg.offset_blocks)
        self.temporal = ConvGRU(fused, cfg.temporal_channels) if temporal else None

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> DEKROutput:
        """x: (N, 3, H, W) ImageNet-normalised RGB, H and W multiples of 32; state from the previous frame."""
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"input height and width must be multiples of 32, got {tuple(x.shape[-2:])}")
        features = self.backbone(x)  # (N, fused, H/4, W/4)
        if self.temporal is not None:
            features, state = self.temporal(features, state)
        heatmaps = self.head_heatmap[1](self.head_heatmap[0](self.transition_heatmap(features)))
        offsets = offsets_grouped(self.transition_offset(features), self.offset_feature_layers,
                                  self.offset_final_layer)
        return DEKROutput(heatmaps, offsets, state)
