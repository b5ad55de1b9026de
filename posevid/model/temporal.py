"""ConvGRU carrying video context from frame to frame between the backbone features and the heads."""
from __future__ import annotations

import torch
from torch import nn


class ConvGRU(nn.Module):
    """Residual convolutional GRU: features + W_out · h_t, with h_t = GRU(project(features), h_{t-1}).

    W_out starts at zero, so a network loaded from a DEKR checkpoint without GRU weights computes exactly
    what DEKR computes until the GRU is trained. The caller owns the state: pass `None` at a video's start
    or after a scene cut; a state of another shape (other batch or frame size) is an error.

    `min_update` > 0 floors the update gate z, so the carried state h_{t-1} keeps at most a 1 - min_update
    share each frame and old frames fade whatever the gates learn: states from hundreds of frames at
    inference then look like those of the short clips the GRU was trained on (a plain GRU drifted there).
    """

    def __init__(self, channels: int, hidden: int, min_update: float = 0.0):
        super().__init__()
        if not 0.0 <= min_update < 1.0:
            raise ValueError(f"min_update must be in [0, 1), got {min_update}")
        self.hidden = hidden
        self.min_update = min_update
        self.project = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                                     nn.ReLU(inplace=True))
        self.gates = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1)  # update z and reset r
        self.candidate = nn.Conv2d(2 * hidden, hidden, 3, padding=1)
        self.out = nn.Conv2d(hidden, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def is_identity(self) -> bool:
        """True while W_out is zero (untrained, or weights trained without the GRU): the features pass
        through unchanged, so the network equals its per-frame twin."""
        return not (self.out.weight.any() or self.out.bias.any())

    def forward(self, x: torch.Tensor, h: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (N, C, H, W) fused features; h: (N, hidden, H, W) or None → (features, new state).

        In eval mode an identity GRU is skipped: x and h come back as they are (h may stay None), which
        saves its cost (14 % of `small`'s network at 256) where the weights never trained it."""
        expected = (x.shape[0], self.hidden, *x.shape[2:])
        if h is not None and h.shape != expected:
            raise ValueError(f"ConvGRU state has shape {tuple(h.shape)}, expected {expected} for input "
                             f"{tuple(x.shape)}; pass None to start a new stream")
        if not self.training and self.is_identity:
            return x, h
        u = self.project(x)  # (N, hidden, H, W)
        if h is None:  # a stream's start
            h = torch.zeros_like(u)
        z, r = torch.sigmoid(self.gates(torch.cat([u, h], 1))).chunk(2, dim=1)
        z = self.min_update + (1 - self.min_update) * z
        q = torch.tanh(self.candidate(torch.cat([u, r * h], 1)))
        h = (1 - z) * h + z * q
        return x + self.out(h), h
