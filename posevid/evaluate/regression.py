"""Diagnosis, pure functions on arrays: the offset regression alone, read at the true person centers.

A network that has only learnt where people are and how big they are does as well as the mean-pose
oracle; articulation learnt shows as a smaller error than the oracle's. Errors are fractions of the
person's size (the diagonal of its labelled keypoints' box)."""
from __future__ import annotations

import warnings

import numpy as np

from posevid.skeleton import COCO

MIN_LABELLED = 5  # fewer labelled keypoints give unstable person sizes


def _person_geometry(gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, K, 3) keypoints → centers (N, 2), sizes (N,) = diagonal of the labelled keypoints' box,
    and which people have enough labelled keypoints (N,) to be scored."""
    from posevid.data.targets import person_centers

    vis = gt[..., 2] > 0
    usable = vis.sum(1) >= MIN_LABELLED
    size = np.full(len(gt), np.nan)
    for n in np.nonzero(usable)[0]:
        p = gt[n, vis[n], :2]
        size[n] = np.hypot(*(p.max(0) - p.min(0)))
    return person_centers(gt), size, usable & (size > 0)


def center_regression_errors(offsets: np.ndarray, gt: np.ndarray, stride: int, swap: bool = False) -> np.ndarray:
    """Error of the keypoints regressed at each person's true center, as a fraction of the person's size.

    offsets: (2K, h, w) one frame's offset maps (official layout); gt: (N, K, 3) keypoints in input pixels.
    swap=True scores the prediction with left and right exchanged (a network that confuses the person's
    sides scores better so). Returns (M, K) for the M people with enough labelled keypoints and a center
    inside the map; NaN where a keypoint is not labelled.
    """
    from posevid.data.targets import decode_offsets

    centers, size, ok = _person_geometry(gt)
    h, w = offsets.shape[1:]
    rows = []
    for n in np.nonzero(ok)[0]:
        j, i = (int(round(c)) for c in centers[n] / stride)
        if not (0 <= i < h and 0 <= j < w):
            continue
        pred = decode_offsets(offsets, i, j, stride)
        if swap:
            pred = pred[list(COCO.flip_index)]
        err = np.linalg.norm(pred - gt[n, :, :2], axis=1) / size[n]
        rows.append(np.where(gt[n, :, 2] > 0, err, np.nan))
    return np.array(rows).reshape(-1, gt.shape[1])


def mean_pose_errors(people: list[np.ndarray]) -> np.ndarray:
    """The same error for an oracle that puts the data's mean pose (normalised by center and size) at
    each person's true center and size. people: (N, K, 3) arrays, one per frame → (M, K)."""
    rel = []
    for gt in people:
        centers, size, ok = _person_geometry(gt)
        r = (gt[ok, :, :2] - centers[ok, None]) / size[ok, None, None]
        rel.append(np.where(gt[ok, :, 2:] > 0, r, np.nan))
    rel = np.concatenate(rel) if rel else np.zeros((0, len(COCO.names), 2))
    if not len(rel):
        return np.zeros(rel.shape[:2])
    with warnings.catch_warnings():  # a keypoint nobody has labelled: its mean is NaN, no warning needed
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(rel, 0)
    return np.linalg.norm(rel - mean, axis=2)


def regression_summary(net: list[np.ndarray], swapped: list[np.ndarray], people: list[np.ndarray],
                       input_size: int) -> dict:
    """Median error at the true centers against the mean-pose oracle, overall and per keypoint, and the
    fraction of people whose prediction is closer with left and right exchanged (about 0 when the sides
    are learnt). One entry per frame: net and swapped, its center_regression_errors without and with
    swap; people, its (N, K, 3) keypoints in input pixels."""
    net_err, swap_err = (np.concatenate(e) if e else np.zeros((0, len(COCO.names))) for e in (net, swapped))
    oracle = mean_pose_errors(people)

    def med(x):
        x = x[np.isfinite(x)]
        return float(np.median(x)) if x.size else None

    closer = np.nanmean(swap_err, 1) < np.nanmean(net_err, 1)
    return {"people": len(net_err), "input_size": input_size,
            "median_error": {"network": med(net_err), "mean_pose_oracle": med(oracle)},
            "left_right_swapped_closer": float(closer.mean()) if len(closer) else None,
            "per_keypoint": {name: {"network": med(net_err[:, k]), "mean_pose_oracle": med(oracle[:, k])}
                             for k, name in enumerate(COCO.names)}}
