"""Object keypoint similarity (OKS), exactly as COCO's evaluation defines it, on plain numpy arrays.

All coordinates are (x, y) in pixels. Nothing here does I/O; evaluation and tracking both call these, greedy_match included.
"""
from __future__ import annotations

import numpy as np

from posevid.skeleton import COCO


def oks(
    pred: np.ndarray,
    gt: np.ndarray,
    areas: np.ndarray,
    sigmas=COCO.sigmas,
    boxes: np.ndarray | None = None,
) -> np.ndarray:
    """OKS between every prediction and every ground truth, as pycocotools' ``COCOeval.computeOks``.

    Args:
        pred: (P, K, 2) or (P, K, 3) predicted keypoints, (x, y[, score]); a score column is ignored.
        gt: (G, K, 3) ground-truth keypoints, (x, y, v) with v the COCO visibility 0/1/2.
        areas: (G,) ground-truth object areas (the OKS scale s², in pixels²).
        sigmas: (K,) per-keypoint falloffs (COCO's by default).
        boxes: optional (G, 4) ground-truth boxes (x, y, w, h). Only used for a ground truth with no
            labelled keypoint: then, like pycocotools, each predicted keypoint's distance is measured to
            the box doubled around itself ([x - w, x + 2w] × [y - h, y + 2h]) and all K keypoints count.
            Without ``boxes`` such a ground truth gets OKS 0 against every prediction.

    Returns:
        (P, G) float64 OKS in [0, 1].

    Only keypoints with visibility > 0 count, and the mean is over those keypoints (as pycocotools).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    sig = np.asarray(sigmas, dtype=np.float64)
    P, G = pred.shape[0], gt.shape[0]
    if pred.ndim != 3 or gt.ndim != 3 or pred.shape[1] != gt.shape[1] or pred.shape[1] != sig.shape[0]:
        raise ValueError(
            f"oks: expected pred (P, K, 2|3), gt (G, K, 3) and K sigmas, got {pred.shape}, {gt.shape}, "
            f"{sig.shape}"
        )
    if areas.shape[0] != G:
        raise ValueError(f"oks: expected {G} areas, got {areas.shape[0]}")
    out = np.zeros((P, G), dtype=np.float64)
    if P == 0 or G == 0:
        return out

    var2 = (sig * 2) ** 2  # (K,) pycocotools' "vars"
    # (P, G, K) squared distances
    dx = pred[:, None, :, 0] - gt[None, :, :, 0]
    dy = pred[:, None, :, 1] - gt[None, :, :, 1]
    # pycocotools adds np.spacing(1) to the area so a zero-area object does not divide by zero
    e = (dx**2 + dy**2) / var2 / (areas[None, :, None] + np.spacing(1)) / 2
    vis = gt[:, :, 2] > 0  # (G, K)
    nvis = vis.sum(axis=1)  # (G,)
    labelled = nvis > 0
    if labelled.any():
        summed = (np.exp(-e) * vis[None]).sum(axis=2)  # (P, G)
        out[:, labelled] = summed[:, labelled] / nvis[labelled]

    if boxes is not None and (~labelled).any():
        boxes = np.asarray(boxes, dtype=np.float64).reshape(G, 4)
        for j in np.flatnonzero(~labelled):
            bx, by, bw, bh = boxes[j]
            x0, x1 = bx - bw, bx + bw * 2
            y0, y1 = by - bh, by + bh * 2
            xd, yd = pred[:, :, 0], pred[:, :, 1]  # (P, K)
            ddx = np.maximum(0, x0 - xd) + np.maximum(0, xd - x1)
            ddy = np.maximum(0, y0 - yd) + np.maximum(0, yd - y1)
            ej = (ddx**2 + ddy**2) / var2 / (areas[j] + np.spacing(1)) / 2
            out[:, j] = np.exp(-ej).mean(axis=1)
    return out


def pose_area(keypoints: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Area (pixels²) of each pose's keypoint bounding box, the OKS scale between two predictions.

    Args:
        keypoints: (P, K, 2) or (P, K, 3) keypoints, (x, y[, score]).
        threshold: if given (needs the score column), only keypoints with score > threshold span the
            box; a pose with no such keypoint gets area 0.

    Returns:
        (P,) float64 areas, width × height of the tight box.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[2] < 2:
        raise ValueError(f"pose_area: expected (P, K, 2|3) keypoints, got {kp.shape}")
    P = kp.shape[0]
    if P == 0 or kp.shape[1] == 0:
        return np.zeros(P, dtype=np.float64)
    if threshold is None:
        valid = np.ones(kp.shape[:2], dtype=bool)
    else:
        if kp.shape[2] < 3:
            raise ValueError("pose_area: a threshold needs (P, K, 3) keypoints with scores")
        valid = kp[:, :, 2] > threshold
    xy = kp[:, :, :2]
    lo = np.where(valid[..., None], xy, np.inf).min(axis=1)  # (P, 2)
    hi = np.where(valid[..., None], xy, -np.inf).max(axis=1)  # (P, 2)
    wh = np.where(valid.any(axis=1)[:, None], hi - lo, 0.0)
    return wh[:, 0] * wh[:, 1]


def pose_oks(
    a: np.ndarray,
    b: np.ndarray,
    areas: np.ndarray,
    sigmas=COCO.sigmas,
    threshold: float = 0.1,
) -> np.ndarray:
    """OKS between two sets of predicted poses, counting only keypoints confident in both.

    The COCO formula with prediction scores in place of ground-truth visibility: for each pair, only
    keypoints with score > ``threshold`` in both poses count, and a pair with none gets 0. Used by the
    tracker (b = the tracks' last poses, areas = their ``pose_area``) where no ground truth exists.

    Args:
        a: (P, K, 3) poses, (x, y, score).
        b: (T, K, 3) poses, (x, y, score).
        areas: (T,) scale (pixels²) of each pose in ``b``.
        sigmas: (K,) per-keypoint falloffs.
        threshold: minimum keypoint score to count.

    Returns:
        (P, T) float64 OKS in [0, 1].
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    P, T = a.shape[0], b.shape[0]
    if P == 0 or T == 0:
        return np.zeros((P, T), dtype=np.float64)
    var2 = (np.asarray(sigmas, dtype=np.float64) * 2) ** 2  # (K,)
    d2 = ((a[:, None, :, :2] - b[None, :, :, :2]) ** 2).sum(axis=3)  # (P, T, K)
    e = d2 / var2 / (areas[None, :, None] + np.spacing(1)) / 2
    valid = (a[:, None, :, 2] > threshold) & (b[None, :, :, 2] > threshold)  # (P, T, K)
    n = valid.sum(axis=2)
    total = (np.exp(-e) * valid).sum(axis=2)
    return np.where(n > 0, total / np.maximum(n, 1), 0.0)


def greedy_match(similarity: np.ndarray, min_similarity: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching, highest similarity first (as COCO's evaluation matches greedily).

    Args:
        similarity: (P, G) e.g. OKS of every prediction against every ground truth.
        min_similarity: a pair needs a similarity strictly above this to be matched.

    Returns:
        (pred_index, gt_index), two (M,) int arrays in matching order (best pair first).
    """
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2:
        raise ValueError(f"greedy_match: expected a (P, G) matrix, got shape {sim.shape}")
    order = np.argsort(-sim, axis=None, kind="stable")  # flat indices, best first; ties row-major
    used_p = np.zeros(sim.shape[0], bool)
    used_g = np.zeros(sim.shape[1], bool)
    pi, gi = [], []
    for flat in order:
        p, g = divmod(int(flat), sim.shape[1])
        if sim[p, g] <= min_similarity:
            break
        if used_p[p] or used_g[g]:
            continue
        used_p[p] = used_g[g] = True
        pi.append(p)
        gi.append(g)
        if len(pi) == min(sim.shape):
            break
    return np.asarray(pi, dtype=np.int64), np.asarray(gi, dtype=np.int64)
