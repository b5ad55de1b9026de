"""DEKR training targets (Geng et al., "Bottom-Up Human Pose Estimation via Disentangled Keypoint
Regression", CVPR 2021), as pure array functions: no I/O, no config object, no Python loop over pixels.

Coordinates: a keypoint at input pixel (x, y) sits at output-map position (x / stride, y / stride);
map pixel (row i, col j) covers input coordinate (stride * j, stride * i).

Two views of each person: `keypoints`, the labels left inside the training crop (v > 0 only there), and
`full`, all of the person's labels before cropping (coordinates may lie outside). As DEKR does, the person's
centre and size come from `full`, so a person cut by the crop keeps the centre and scale of the whole
body; heatmaps and offsets are only drawn for keypoints inside.

Channels:
    heatmaps      (K + 1, h, w): K keypoint heatmaps (Gaussian, sigma 2 map pixels) then the center
                  heatmap (sigma 4); a pixel takes the max over people.
    heatmap_weight(K + 1, h, w): 0 where ignored, 1 where the heatmap is > 0, `bg_weight` (0.1) elsewhere;
                  on the center channel also 0 around the centres of people too small for a centre.
    offsets       (2K, h, w): at pixels within a square of radius 4 around a person's center,
                  channel 2k = x and 2k + 1 = y of `location - keypoint` in map pixels, so
                  keypoint_k = location - offset_k.
    offset_weight (2K, h, w): 1 / diagonal of the person's keypoint box in *input* pixels (DEKR), for the
                  keypoints inside; where people's squares overlap the pixel belongs to the smaller person.
People whose keypoint box is under `min_area` input pixels (DEKR: 32²) get keypoint heatmaps but neither
a centre nor offsets, and their centre is ignored (weight 0), not taught as background.
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
    full: np.ndarray | None = None,
    min_area: float = 32 ** 2,
) -> DekrTargets:
    """Targets for one image.

    keypoints: (N, K, 3) per person (x, y, v) in input pixels; v > 0 means labelled and inside the crop.
    full: (N, K, 3) the same people's labels before cropping (default: `keypoints`); centres and sizes.
    out_size: (h, w) of the output maps. ignore: optional (h, w) bool map of pixels without loss
    (crowds, people without labelled keypoints) at output resolution.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[2] != 3:
        raise ValueError(f"keypoints must have shape (N, K, 3), got {kp.shape}")
    full = kp if full is None else np.asarray(full, dtype=np.float64)
    if full.shape != kp.shape:
        raise ValueError(f"full must have the shape of keypoints {kp.shape}, got {full.shape}")
    N, K = kp.shape[0], kp.shape[1]
    h, w = out_size
    vis = kp[..., 2] > 0
    pts = kp[..., :2] / stride  # map coordinates
    centers = person_centers(full) / stride  # (N, 2), NaN without labels

    # size of each person's whole labelled keypoint box, in input pixels
    fvis = full[..., 2] > 0
    labelled = fvis.any(1)
    lo = np.where(fvis[..., None], full[..., :2], np.inf).min(1)
    hi = np.where(fvis[..., None], full[..., :2], -np.inf).max(1)
    span = np.where(labelled[:, None], hi - lo, 0.0)  # (N, 2) box width, height
    diag2 = (span ** 2).sum(1)  # DEKR's "area": the squared diagonal
    small = labelled & (span[:, 0] * span[:, 1] < min_area)
    ci = np.round(np.nan_to_num(centers[:, 1], nan=-1e9)).astype(np.int64)
    cj = np.round(np.nan_to_num(centers[:, 0], nan=-1e9)).astype(np.int64)
    inside = labelled & (ci >= 0) & (ci < h) & (cj >= 0) & (cj < w)
    has_center = inside & ~small

    heat = np.zeros((K + 1, h, w), np.float32)
    if vis.any():  # keypoint heatmaps: max over people of each keypoint's Gaussian
        per_person = np.zeros((N, K, h, w), np.float32)
        per_person[vis] = _gaussians(pts[vis], (h, w), sigma)
        heat[:K] = per_person.max(0)
    if has_center.any():
        heat[K] = _gaussians(centers[has_center], (h, w), center_sigma).max(0)

    hw = np.where(heat > 0, 1.0, bg_weight).astype(np.float32)
    if (small & inside).any():  # too small for a centre: neither positive nor negative there
        g = _gaussians(centers[small & inside], (h, w), center_sigma).max(0)
        hw[K][(g >= np.exp(-2.0)) & (g > heat[K])] = 0.0  # within 2 sigma, unless a larger person's centre is higher

    offsets = np.zeros((2 * K, h, w), np.float32)
    off_w = np.zeros((2 * K, h, w), np.float32)
    if has_center.any():
        people = np.nonzero(has_center)[0]
        ii, jj = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
        square = (np.abs(ii - ci[people, None, None]) <= offset_radius) & \
                 (np.abs(jj - cj[people, None, None]) <= offset_radius)  # (P, h, w)
        # owner of each pixel: the smallest person whose square covers it (the later one on a tie)
        cost = np.where(square, diag2[people, None, None], np.inf)[::-1]
        owner = people[::-1][cost.argmin(0)]  # (h, w)
        owned = np.isfinite(cost.min(0))
        rows, cols = np.nonzero(owned)
        n = owner[rows, cols]
        k_vis = vis[n]  # (Q, K) keypoints inside the crop of each owned pixel's person
        dx = cols[:, None] - pts[n, :, 0]
        dy = rows[:, None] - pts[n, :, 1]
        weight = 1.0 / np.maximum(np.sqrt(diag2[n]), 1.0)  # 1 / diagonal in input pixels
        offsets[0::2, rows, cols] = np.where(k_vis, dx, 0.0).T
        offsets[1::2, rows, cols] = np.where(k_vis, dy, 0.0).T
        off_w[0::2, rows, cols] = off_w[1::2, rows, cols] = np.where(k_vis, weight[:, None], 0.0).T

    if ignore is not None:
        keep = ~np.asarray(ignore, bool)
        hw *= keep[None]
        off_w *= keep[None]
    return DekrTargets(heat, hw, offsets, off_w, centers.astype(np.float32))


def _gaussians(xy: np.ndarray, size: tuple[int, int], sigma: float, truncate: float = 3.0) -> np.ndarray:
    """(M, 2) centres (x, y) → (M, h, w) Gaussians exp(-d² / 2σ²), each cut to the square of map pixels
    from floor(c − 3σ) to ceil(c + 3σ) (as `gaussian` cuts its patch)."""
    h, w = size
    r = truncate * sigma
    out = []
    for axis, n in ((1, h), (0, w)):  # separable: rows from y, columns from x
        c = xy[:, axis, None]
        grid = np.arange(n)[None]
        g = np.exp(-((grid - c) ** 2) / (2 * sigma ** 2))
        out.append(np.where((grid >= np.floor(c - r)) & (grid <= np.ceil(c + r)), g, 0.0).astype(np.float32))
    return out[0][:, :, None] * out[1][:, None, :]


def decode_offsets(offsets: np.ndarray, i: int, j: int, stride: int = 4) -> np.ndarray:
    """(K, 2) keypoints in input pixels from the offsets at map pixel (row i, col j): location - offset."""
    K = offsets.shape[0] // 2
    o = offsets[:, i, j].reshape(K, 2)
    return (np.array([j, i], np.float64)[None] - o) * stride
