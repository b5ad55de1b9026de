"""From DEKR's heatmaps and offsets to poses: pure tensor functions, all in output-map coordinates.

Steps, each a named function: offsets → pose map; (optional) merge with the mirrored pass; local NMS on
the center heatmap; keypoints regressed at the kept centers; (optional) each regressed keypoint moved to
the nearest peak of its own heatmap within a radius set by the pose's size (as CenterNet does; not in
DEKR); keypoint scores read from the keypoint heatmaps at the final positions; pose scores; pose NMS. Mapping to
source pixels happens in `frames.Resize`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from posevid.config import check_pose_score


@dataclass
class Poses:
    """People found in one image. Coordinates are (x, y) in whatever frame the producer states."""

    keypoints: np.ndarray  # (P, K, 3): x, y, keypoint score
    scores: np.ndarray  # (P,) pose score: center score × mean keypoint score, or center score (decode's pose_score)
    center_scores: np.ndarray  # (P,) peak value of the center heatmap that seeded each pose

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, keep: np.ndarray) -> "Poses":
        return Poses(self.keypoints[keep], self.scores[keep], self.center_scores[keep])

    @classmethod
    def empty(cls, num_keypoints: int) -> "Poses":
        return cls(np.zeros((0, num_keypoints, 3)), np.zeros(0), np.zeros(0))


def pose_map(offsets: torch.Tensor) -> torch.Tensor:
    """(2K, h, w) offsets → (h, w, K, 2) keypoint positions: location − offset (official DEKR convention)."""
    k2, h, w = offsets.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=offsets.dtype, device=offsets.device),
                            torch.arange(w, dtype=offsets.dtype, device=offsets.device), indexing="ij")
    loc = torch.stack((xs, ys), dim=-1)[:, :, None, :]  # (h, w, 1, 2)
    return loc - offsets.permute(1, 2, 0).reshape(h, w, k2 // 2, 2)


def merge_flipped(heatmaps: torch.Tensor, poses: torch.Tensor, heatmaps_f: torch.Tensor, poses_f: torch.Tensor,
                  flip_index: tuple[int, ...], content_width: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Averages a pass on the image with a pass on its mirror image (flip test).

    heatmaps: (K+1, h, w); poses: (h, w, K, 2) from `pose_map`; `_f` the same for the mirrored input whose
    content was `content_width` input pixels wide (input x ↔ content_width − 1 − x). Map column j of the
    mirrored pass lies over column (content_width − 1)/4 − j of the original.
    """
    k = len(flip_index)
    w = heatmaps.shape[-1]
    mirror = (content_width - 1) / 4.0
    src = torch.round(mirror - torch.arange(w, dtype=torch.float32)).long()  # mirrored column under column j
    valid = (src >= 0) & (src < w)
    src = src.clamp(0, w - 1)
    order = torch.tensor(list(flip_index) + [k])  # mirrored channel c holds keypoint flip_index[c]; center stays
    hf = heatmaps_f[order][:, :, src]
    hf = torch.where(valid, hf, heatmaps)
    pf = poses_f[:, src][:, :, list(flip_index)].clone()
    pf[..., 0] = mirror - pf[..., 0]
    pf = torch.where(valid[None, :, None, None], pf, poses)
    return (heatmaps + hf) / 2, (poses + pf) / 2


def center_peaks(center: torch.Tensor, max_people: int = 30, threshold: float = 0.01,
                 kernel: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Local NMS on the (h, w) center heatmap: pixels equal to their kernel×kernel max, top `max_people`
    above `threshold`. Returns (flat indices (P,), scores (P,)), highest score first."""
    peaks = F.max_pool2d(center[None, None], kernel, 1, kernel // 2)[0, 0]
    scores = torch.where(peaks == center, center, torch.zeros_like(center)).flatten()
    scores, idx = scores.topk(min(max_people, scores.numel()))
    keep = scores > threshold
    return idx[keep], scores[keep]


def sample_bilinear(maps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Values of (K, h, w) maps at (P, K, 2) (x, y) points, map k read at points[:, k] → (P, K); 0 outside."""
    k, h, w = maps.shape
    p = points.shape[0]
    if p == 0:
        return points.new_zeros(0, k)
    gx = points[..., 0] * (2.0 / max(w - 1, 1)) - 1
    gy = points[..., 1] * (2.0 / max(h - 1, 1)) - 1
    grid = torch.stack((gx, gy), -1).permute(1, 0, 2)[:, :, None, :]  # (K, P, 1, 2)
    out = F.grid_sample(maps[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[:, 0, :, 0].T  # (P, K)


def keypoint_peaks(heatmaps: torch.Tensor, top: int = 20, kernel: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Local maxima of each (K, h, w) keypoint heatmap → positions (K, M, 2) (x, y) and values (K, M).

    The top M per map, highest first; each position moves a quarter pixel toward its higher neighbour
    (the usual sub-pixel step for heatmap peaks). Maps with fewer maxima pad with value 0.
    """
    k, h, w = heatmaps.shape
    pooled = F.max_pool2d(heatmaps[None], kernel, 1, kernel // 2)[0]
    flat = torch.where(pooled == heatmaps, heatmaps, torch.zeros_like(heatmaps)).flatten(1)
    values, idx = flat.topk(min(top, h * w), dim=1)
    ys, xs = idx // w, idx % w
    padded = F.pad(heatmaps, (1, 1, 1, 1), mode="replicate")
    ch = torch.arange(k)[:, None]
    dx = padded[ch, ys + 1, xs + 2] - padded[ch, ys + 1, xs]
    dy = padded[ch, ys + 2, xs + 1] - padded[ch, ys, xs + 1]
    pos = torch.stack((xs + 0.25 * torch.sign(dx), ys + 0.25 * torch.sign(dy)), -1).to(heatmaps.dtype)
    return pos, values


def snap_to_peaks(keypoints: torch.Tensor, peaks: torch.Tensor, peak_values: torch.Tensor, radius_ratio: float,
                  min_value: float = 0.1) -> torch.Tensor:
    """Moves each regressed keypoint to the nearest peak of its own heatmap, if one lies close enough.

    keypoints (P, K, 2); peaks (K, M, 2) and peak_values (K, M) from `keypoint_peaks`. A peak qualifies
    when its value is at least `min_value` and it lies within radius_ratio × the longer side of the pose's
    keypoint box; keypoints without one stay where regression put them.
    """
    if keypoints.shape[0] == 0 or radius_ratio <= 0:
        return keypoints
    span = (keypoints.amax(1) - keypoints.amin(1)).amax(-1)  # (P,) longer side of the pose box
    radius = (radius_ratio * span).clamp(min=1.0)
    dist = (keypoints[:, :, None, :] - peaks[None]).norm(dim=-1)  # (P, K, M)
    ok = (peak_values[None] >= min_value) & (dist <= radius[:, None, None])
    dist = torch.where(ok, dist, torch.full_like(dist, float("inf")))
    best = dist.argmin(-1)  # (P, K)
    p, k = best.shape
    nearest = peaks[torch.arange(k)[None].expand(p, k), best]  # (P, K, 2)
    return torch.where(ok.any(-1)[..., None], nearest, keypoints)


def pose_nms(keypoints: torch.Tensor, scores: torch.Tensor, dist_ratio: float = 0.05,
             min_close: int = 8) -> torch.Tensor:
    """Greedy pose NMS (DEKR's rule): pose j duplicates a kept pose i when more than `min_close` of their
    keypoints lie within dist_ratio · sqrt(area of i's keypoint box). keypoints (P, K, 2), scores (P,)
    → indices kept, best first."""
    p = keypoints.shape[0]
    if p == 0:
        return torch.zeros(0, dtype=torch.long)
    span = keypoints.amax(1) - keypoints.amin(1)  # (P, 2)
    area = span[:, 0] * span[:, 1]
    dist = (keypoints[:, None] - keypoints[None]).norm(dim=-1)  # (P, P, K)
    close = (dist < dist_ratio * area.sqrt()[:, None, None]).sum(-1) > min_close  # (P, P), row i's scale
    order = torch.argsort(scores, descending=True)
    suppressed = torch.zeros(p, dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= close[i]
    return torch.tensor(keep, dtype=torch.long)


def decode(heatmaps: torch.Tensor, poses: torch.Tensor, max_people: int = 30, center_threshold: float = 0.01,
           nms_kernel: int = 3, nms_dist_ratio: float = 0.05, nms_min_close: int = 8,
           snap_radius: float = 0.0, pose_score: str = "center-keypoints") -> Poses:
    """heatmaps (K+1, h, w) and pose map (h, w, K, 2) of one image → Poses in map coordinates.

    snap_radius > 0 moves regressed keypoints to nearby heatmap peaks (`snap_to_peaks`); 0 is DEKR's decoding.
    pose_score (config.POSE_SCORES): "center-keypoints", DEKR's center peak × mean keypoint score, or "center",
    the center peak alone. Pose NMS keeps the higher-scoring of two duplicates, so it follows the choice.
    """
    check_pose_score(pose_score)
    k = heatmaps.shape[0] - 1
    h, w = heatmaps.shape[-2:]
    idx, center_scores = center_peaks(heatmaps[k], max_people, center_threshold, nms_kernel)
    kpts = poses.reshape(h * w, k, 2)[idx]  # (P, K, 2)
    if snap_radius > 0 and len(idx):
        kpts = snap_to_peaks(kpts, *keypoint_peaks(heatmaps[:k]), snap_radius)
    kpt_scores = sample_bilinear(heatmaps[:k], kpts).clamp(0, 1)
    scores = center_scores if pose_score == "center" else center_scores * kpt_scores.mean(1)
    keep = pose_nms(kpts, scores, nms_dist_ratio, nms_min_close)
    out = torch.cat([kpts, kpt_scores[..., None]], -1)[keep]
    return Poses(out.numpy().astype(np.float64), scores[keep].numpy().astype(np.float64),
                 center_scores[keep].numpy().astype(np.float64))


def merge_scales(passes: list[Poses], zooms: list[float], max_size: float, nms_dist_ratio: float = 0.05,
                 nms_min_close: int = 8) -> Poses:
    """One image's poses from passes at several input scales → one set (multi-scale test).

    passes: the poses of each pass in source pixels, largest zoom first; zooms: each pass's input pixels
    per source pixel. Each person is taken from the largest zoom at which its keypoint box's diagonal is
    under `max_size` input pixels (the smallest zoom also takes the larger ones): the network regresses
    people larger than that shrunk, and smaller people are better seen at the larger zoom (the "valid
    ranges" of SNIP, Singh & Davis, CVPR 2018). The people kept then go through pose NMS together.
    """
    if len(passes) != len(zooms) or not passes:
        raise ValueError(f"merge_scales: {len(passes)} passes but {len(zooms)} zooms")
    if any(a <= b for a, b in zip(zooms, zooms[1:])):
        raise ValueError(f"merge_scales: zooms must decrease, got {zooms}")
    kept: list[Poses] = []
    for i, (poses, zoom) in enumerate(zip(passes, zooms)):
        xy = poses.keypoints[..., :2]
        diag = np.hypot(*(xy.max(1) - xy.min(1)).T) if len(poses) else np.zeros(0)  # source pixels
        keep = np.ones(len(poses), bool)
        if i + 1 < len(passes):
            keep &= diag * zoom < max_size
        if i > 0:
            keep &= diag * zooms[i - 1] >= max_size
        kept.append(poses.select(keep))
    keypoints = np.concatenate([p.keypoints for p in kept])
    scores = np.concatenate([p.scores for p in kept])
    center_scores = np.concatenate([p.center_scores for p in kept])
    keep = pose_nms(torch.from_numpy(keypoints[..., :2]), torch.from_numpy(scores), nms_dist_ratio,
                    nms_min_close).numpy()
    return Poses(keypoints[keep], scores[keep], center_scores[keep])
