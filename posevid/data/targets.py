"""DEKR training targets (Geng et al., "Bottom-Up Human Pose Estimation via Disentangled Keypoint
Regression", CVPR 2021), as pure array functions: no I/O, no config object.

Coordinates: a keypoint at input pixel (x, y) sits at output-map position (x / stride, y / stride);
map pixel (row i, col j) covers input coordinate (stride * j, stride * i).

Channels:
    heatmaps      (K + 1, h, w): K keypoint heatmaps (Gaussian, sigma 2 map pixels) then the center
                  heatmap (sigma 4); a pixel takes the max over people.
    heatmap_weight(K + 1, h, w): 0 where ignored, 1 where the heatmap is > 0, `bg_weight` (0.1) elsewhere.
    offsets       (2K, h, w): at pixels within a square of radius 4 around a person's center,
                  channel 2k = x and 2k + 1 = y of `location - keypoint` in map pixels, so
                  keypoint_k = location - offset_k.
    offset_weight (2K, h, w): 1 / diagonal of the person's keypoint box (map pixels) for labelled
                  keypoints; where people overlap the pixel belongs to the smaller person (as DEKR).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DekrTargets:
    heatmaps: np.ndarray  # (K + 1, h, w) float32
    heatmap_weight: np.ndarray  # (K + 1, h, w) float32
    offsets: np.ndarray  # (2K, h, w) float32
    offset_weight: np.ndarray  # (2K, h, w) float32
    centers: np.ndarray  # (N, 2) float32 center (x, y) per person in map pixels, NaN if unlabelled


def person_centers(keypoints: np.ndarray) -> np.ndarray:
    """(N, 2) mean (x, y) of the labelled (v > 0) keypoints of (N, K, 3) input; NaN without any."""
    vis = keypoints[..., 2] > 0  # (N, K)
    n = vis.sum(1, keepdims=True)
    s = (keypoints[..., :2] * vis[..., None]).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def gaussian(size: tuple[int, int], center: tuple[float, float], sigma: float,
             truncate: float = 3.0) -> tuple[np.ndarray, tuple[slice, slice]]:
    """A Gaussian patch exp(-d^2 / 2 sigma^2) around (x, y) on an (h, w) grid, cut at truncate * sigma.

    Returns the patch and the (rows, cols) slices it covers in the grid.
    """
    h, w = size
    x, y = center
    r = truncate * sigma
    x0, x1 = max(int(np.floor(x - r)), 0), min(int(np.ceil(x + r)) + 1, w)
    y0, y1 = max(int(np.floor(y - r)), 0), min(int(np.ceil(y + r)) + 1, h)
    if x0 >= x1 or y0 >= y1:
        return np.zeros((0, 0), np.float32), (slice(0, 0), slice(0, 0))
    xs = np.arange(x0, x1) - x
    ys = np.arange(y0, y1) - y
    g = np.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma ** 2)).astype(np.float32)
    return g, (slice(y0, y1), slice(x0, x1))


def downsample_mask(mask: np.ndarray, stride: int, out_size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool input mask -> (h, w) bool: a map pixel is set if any input pixel of its cell is.

    Cell of map pixel (i, j): input rows [stride*i - stride/2, stride*i + stride/2) (same for cols).
    """
    h, w = out_size
    H, W = mask.shape
    half = stride // 2
    padded = np.zeros((h * stride, w * stride), bool)
    src = mask[: max(0, min(H, h * stride - half)), : max(0, min(W, w * stride - half))]
    padded[half:half + src.shape[0], half:half + src.shape[1]] = src
    return padded.reshape(h, stride, w, stride).any(axis=(1, 3))


def encode_dekr(
    keypoints: np.ndarray,
    out_size: tuple[int, int],
    stride: int = 4,
    sigma: float = 2.0,
    center_sigma: float = 4.0,
    offset_radius: int = 4,
    bg_weight: float = 0.1,
    ignore: np.ndarray | None = None,
) -> DekrTargets:
    """Targets for one image.

    keypoints: (N, K, 3) per person (x, y, v) in input pixels; v > 0 means labelled.
    out_size: (h, w) of the output maps. ignore: optional (h, w) bool map of pixels without loss
    (crowds, people without labelled keypoints) at output resolution.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[2] != 3:
        raise ValueError(f"keypoints must have shape (N, K, 3), got {kp.shape}")
    N, K = kp.shape[0], kp.shape[1]
    h, w = out_size
    heat = np.zeros((K + 1, h, w), np.float32)
    offsets = np.zeros((2 * K, h, w), np.float32)
    off_w = np.zeros((2 * K, h, w), np.float32)
    owner_area = np.full((h, w), np.inf)  # box area of the person owning each offset pixel
    pts = kp[..., :2] / stride  # map coordinates
    vis = kp[..., 2] > 0
    centers = person_centers(kp) / stride

    for n in range(N):
        if not vis[n].any():
            continue
        for k in range(K):
            if vis[n, k]:
                g, (rs, cs) = gaussian(out_size, tuple(pts[n, k]), sigma)
                np.maximum(heat[k, rs, cs], g, out=heat[k, rs, cs])
        cx, cy = centers[n]
        g, (rs, cs) = gaussian(out_size, (cx, cy), center_sigma)
        np.maximum(heat[K, rs, cs], g, out=heat[K, rs, cs])

        p = pts[n, vis[n]]
        bw, bh = p[:, 0].max() - p[:, 0].min(), p[:, 1].max() - p[:, 1].min()
        area = bw * bh
        weight = 1.0 / max(np.sqrt(bw ** 2 + bh ** 2), 1.0)
        ci, cj = int(round(cy)), int(round(cx))
        for i in range(max(ci - offset_radius, 0), min(ci + offset_radius + 1, h)):
            for j in range(max(cj - offset_radius, 0), min(cj + offset_radius + 1, w)):
                if owner_area[i, j] < area:
                    continue  # a smaller person already owns this pixel
                owner_area[i, j] = area
                offsets[:, i, j] = 0.0
                off_w[:, i, j] = 0.0
                for k in np.nonzero(vis[n])[0]:
                    offsets[2 * k, i, j] = j - pts[n, k, 0]
                    offsets[2 * k + 1, i, j] = i - pts[n, k, 1]
                    off_w[2 * k:2 * k + 2, i, j] = weight

    hw = np.where(heat > 0, 1.0, bg_weight).astype(np.float32)
    if ignore is not None:
        keep = ~np.asarray(ignore, bool)
        hw *= keep[None]
        off_w *= keep[None]
    return DekrTargets(heat, hw, offsets, off_w, centers.astype(np.float32))


def decode_offsets(offsets: np.ndarray, i: int, j: int, stride: int = 4) -> np.ndarray:
    """(K, 2) keypoints in input pixels from the offsets at map pixel (row i, col j): location - offset."""
    K = offsets.shape[0] // 2
    o = offsets[:, i, j].reshape(K, 2)
    return (np.array([j, i], np.float64)[None] - o) * stride
