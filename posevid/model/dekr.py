"""DEKR with a ConvGRU: HRNet features → (temporal context) → heatmap head + per-keypoint offset branches."""
from __future__ import annotations

from typing import NamedTuple

import torch

from posevid.config import ModelConfig
from posevid.model.heads import head_transition, heatmap_head, offset_branches, offsets_grouped
from posevid.model.hrnet import HRNet
from posevid.model.temporal import ConvGRU


class DEKROutput(NamedTuple):
    heatmaps: torch.Tensor  # (N, [T,] K+1, H/4, W/4): K keypoint heatmaps, then the center heatmap
    offsets: torch.Tensor  # (N, [T,] 2K, H/4, W/4): per keypoint (x, y) of center − keypoint, official layout
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
        self.temporal = ConvGRU(fused, cfg.temporal_channels, cfg.temporal_min_update) if temporal else None

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> DEKROutput:
        """One frame of N streams. x: (N, 3, H, W) ImageNet-normalised RGB, H and W multiples of 32;
        state: (N, hidden, H/4, W/4) from the previous frame, or None at a stream's start.
        A 5-D x (N, T, 3, H, W) is a clip: see `forward_clip` (DDP wrappers only call forward)."""
        if x.dim() == 5:
            return self.forward_clip(x, state)
        out = self.forward_clip(x[:, None], state)
        return DEKROutput(out.heatmaps[:, 0], out.offsets[:, 0], out.state)

    def forward_clip(self, x: torch.Tensor, state: torch.Tensor | None = None) -> DEKROutput:
        """T consecutive frames of N streams at once: x (N, T, 3, H, W) → outputs shaped (N, T, C, H/4, W/4).

        The backbone and the heads run on all N·T frames as one batch (faster than frame by frame); only
        the ConvGRU steps through time. Training unrolls the GRU over clips with this.
        """
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"input height and width must be multiples of 32, got {tuple(x.shape[-2:])}")
        n, t = x.shape[:2]
        features = self.backbone(x.flatten(0, 1))  # (N·T, fused, H/4, W/4)
        if self.temporal is not None:
            features = features.unflatten(0, (n, t))
            steps = []
            for i in range(t):
                f, state = self.temporal(features[:, i], state)
                steps.append(f)
            features = torch.stack(steps, 1).flatten(0, 1)
        heatmaps = self.head_heatmap[1](self.head_heatmap[0](self.transition_heatmap(features)))
        offsets = offsets_grouped(self.transition_offset(features), self.offset_feature_layers,
                                  self.offset_final_layer)
        return DEKROutput(heatmaps.unflatten(0, (n, t)), offsets.unflatten(0, (n, t)), state)
