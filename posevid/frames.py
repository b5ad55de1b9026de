"""Frame → network input (DEKR test-time scaling) and network coordinates → source pixels."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

# Padding colour: ImageNet's mean RGB, which the HRNet networks' normalisation maps to exactly 0 (as the
# official pipeline pads) and EfficientNet's to about -0.03.
PAD_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STRIDE = 4  # output maps are 1/4 of the input; map pixel (i, j) sits at input pixel (4j, 4i)


@dataclass(frozen=True)
class Resize:
    """A frame scaled so its shorter side is `input_size`, then zero-padded right/bottom to multiples of 32."""

    src_w: int
    src_h: int
    out_w: int  # scaled content size
    out_h: int
    in_w: int  # network input size (content + padding)
    in_h: int

    @classmethod
    def plan(cls, width: int, height: int, input_size: int) -> "Resize":
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}×{height}")
        scale = input_size / min(width, height)
        out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
        return cls(width, height, out_w, out_h, math.ceil(out_w / 32) * 32, math.ceil(out_h / 32) * 32)

    def to_source(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) input-pixel (x, y) → source-pixel (x, y); pixel centres map onto pixel centres."""
        return _rescale(xy, self.src_w / self.out_w, self.src_h / self.out_h)

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        """Inverse of `to_source`: source-pixel (x, y) → input-pixel (x, y)."""
        return _rescale(xy, self.out_w / self.src_w, self.out_h / self.src_h)


def _rescale(xy: np.ndarray, sx: float, sy: float) -> np.ndarray:
    out = np.empty_like(xy, dtype=np.float64)
    out[..., 0] = (xy[..., 0] + 0.5) * sx - 0.5
    out[..., 1] = (xy[..., 1] + 0.5) * sy - 0.5
    return out


def to_tensor(image_bgr: np.ndarray, plan: Resize, flip: bool = False) -> torch.Tensor:
    """(H, W, 3) uint8 BGR → (1, 3, in_h, in_w) float32 RGB in 0-255 (the network normalises), padded
    right/bottom with PAD_RGB.

    With `flip` the scaled content is mirrored before padding, so padding stays right/bottom and a
    mirrored input x maps back as out_w − 1 − x.
    """
    if image_bgr.shape[:2] != (plan.src_h, plan.src_w):
        raise ValueError(f"frame is {image_bgr.shape[1]}×{image_bgr.shape[0]}, expected {plan.src_w}×{plan.src_h}")
    img = cv2.resize(image_bgr, (plan.out_w, plan.out_h), interpolation=cv2.INTER_LINEAR)
    if flip:
        img = img[:, ::-1]
    x = torch.tensor(PAD_RGB).view(1, 3, 1, 1).repeat(1, 1, plan.in_h, plan.in_w)
    x[0, :, : plan.out_h, : plan.out_w] = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1])).permute(2, 0, 1)
    return x
