"""Clip degradations. Two that only video context can undo: an occluder sliding across a person, a blurred frame.

They give the ConvGRU something to learn. On clean clips every frame holds all the evidence, so the
per-frame network is as good as the temporal one and the GRU learns nothing extra. Keypoints keep their
ground truth (the person is still there); covered ones become v = 1, as COCO marks occluded keypoints.
A third, `jitter_colours`, is for the per-frame network: other cameras and lighting than the training data's.
"""
from __future__ import annotations

import cv2
import numpy as np


def moving_occluder(rng: np.random.Generator, frames: np.ndarray, keypoints: list) -> bool:
    """Pastes one textured rectangle or ellipse that slides across a random person during the clip.

    frames: (T, H, W, 3) uint8, changed in place; keypoints: T arrays (N, K, 3), v of covered
    keypoints set to 1 in place. The occluder covers 30–80 % of the person's box on each side and
    travels about 1.5 box widths over the clip, so the person is hidden in some frames and seen in
    others. Its texture is a patch of the first frame from elsewhere (background-like clutter).
    Returns False (and changes nothing) when the first frame shows nobody.
    """
    t, h, w = frames.shape[:3]
    first = keypoints[0]
    people = [i for i in range(len(first)) if (first[i, :, 2] > 0).sum() >= 2]
    if not people:
        return False
    kp = first[people[int(rng.integers(len(people)))]]
    xy = kp[kp[:, 2] > 0, :2]
    (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
    bw, bh = max(x1 - x0, 8.0), max(y1 - y0, 8.0)
    ow = int(np.clip(bw * rng.uniform(0.3, 0.8), 6, w))
    oh = int(np.clip(bh * rng.uniform(0.3, 0.8), 6, h))
    sx, sy = int(rng.integers(0, w - ow + 1)), int(rng.integers(0, h - oh + 1))
    texture = frames[0, sy:sy + oh, sx:sx + ow].copy()
    texture = np.clip(texture.astype(np.float32) * rng.uniform(0.6, 1.4), 0, 255).astype(np.uint8)
    shape = np.zeros((oh, ow), np.uint8)
    if rng.uniform() < 0.5:
        shape[:] = 1
    else:
        cv2.ellipse(shape, (ow // 2, oh // 2), (max(ow // 2, 1), max(oh // 2, 1)), 0, 0, 360, 1, -1)
    # Start on one side of the person's center and pass it at mid-clip.
    cx, cy = (x0 + x1) / 2 + rng.uniform(-0.2, 0.2) * bw, (y0 + y1) / 2 + rng.uniform(-0.3, 0.3) * bh
    direction = 1.0 if rng.uniform() < 0.5 else -1.0
    travel = 1.5 * bw * rng.uniform(0.7, 1.3)
    for i in range(t):
        frac = i / (t - 1) - 0.5 if t > 1 else 0.0
        left = int(round(cx + direction * travel * frac - ow / 2))
        top = int(round(cy - oh / 2))
        # Clip the occluder to the frame.
        fx0, fy0, fx1, fy1 = max(left, 0), max(top, 0), min(left + ow, w), min(top + oh, h)
        if fx0 >= fx1 or fy0 >= fy1:
            continue
        m = shape[fy0 - top:fy1 - top, fx0 - left:fx1 - left].astype(bool)
        region = frames[i, fy0:fy1, fx0:fx1]
        region[m] = texture[fy0 - top:fy1 - top, fx0 - left:fx1 - left][m]
        k = keypoints[i]
        if len(k):
            px, py = np.round(k[..., 0]).astype(int), np.round(k[..., 1]).astype(int)
            inside = (k[..., 2] > 1) & (px >= fx0) & (px < fx1) & (py >= fy0) & (py < fy1)
            covered = np.zeros_like(inside)
            covered[inside] = m[py[inside] - fy0, px[inside] - fx0]
            k[covered, 2] = 1.0
    return True


def blur_one_frame(rng: np.random.Generator, frames: np.ndarray) -> int:
    """Motion-blurs one frame after the first (in place), as a fast pan or a shaken camera does; returns its index."""
    t = frames.shape[0]
    if t < 2:
        return -1
    i = int(rng.integers(1, t))
    length = int(rng.integers(7, 19))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    angle = float(rng.uniform(0, 180))
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    kernel /= max(kernel.sum(), 1e-6)
    frames[i] = cv2.filter2D(frames[i], -1, kernel, borderType=cv2.BORDER_REFLECT)
    return i


def jitter_colours(rng: np.random.Generator, frames: np.ndarray) -> tuple[float, float, float]:
    """Changes the saturation, contrast and brightness of the whole clip (in place, one draw per clip, so the
    frames stay consistent): the few real sources trained on share a handful of cameras and lights. A fifth of
    the clips turn grey. Returns (saturation, contrast, brightness)."""
    f = frames.astype(np.float32)
    grey = f @ np.array([0.114, 0.587, 0.299], np.float32)  # BGR luma
    saturation = 0.0 if rng.uniform() < 0.2 else float(rng.uniform(0.6, 1.4))
    contrast = float(rng.uniform(0.6, 1.4))
    brightness = float(rng.uniform(-32, 32))
    f = grey[..., None] + saturation * (f - grey[..., None])
    mean = grey.mean()
    f = (f - mean) * contrast + mean + brightness
    frames[:] = np.clip(f + 0.5, 0, 255).astype(np.uint8)
    return saturation, contrast, brightness
