"""Diagnosis, pure functions on arrays: the offset regression alone, read at the true person centers, and
the keypoint heatmaps alone, read around the true keypoints.

A network that has only learnt where people are and how big they are does as well as the mean-pose
oracle; articulation learnt shows as a smaller error than the oracle's. A keypoint heatmap whose maximum
near each true keypoint lands anywhere in that window scores like a uniform guess (`HEATMAP_CHANCE`);
joints seen show as a smaller error. Errors are fractions of the person's size (the diagonal of its
labelled keypoints' box)."""
from __future__ import annotations

import warnings

import numpy as np

from posevid.skeleton import COCO

MIN_LABELLED = 5  # fewer labelled keypoints give unstable person sizes
HEATMAP_WINDOW = 0.3  # half-width of the square searched around each true keypoint, × person size
# Median distance of a uniform point in a square of half-width 1 from its centre (numerically), scaled:
# what a heatmap with no idea of the joint scores.
HEATMAP_CHANCE = 0.798 * HEATMAP_WINDOW
# People whose keypoint box's diagonal is at least this many input pixels are "large" in the size ratio: effnet
# draws them shrunk (predict.PredictConfig.scale_max_size).
LARGE_PERSON = 200.0


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
    rows = []
    for n, pred, size in _at_true_centers(offsets, gt, stride):
        if swap:
            pred = pred[list(COCO.flip_index)]
        err = np.linalg.norm(pred - gt[n, :, :2], axis=1) / size
        rows.append(np.where(gt[n, :, 2] > 0, err, np.nan))
    return np.array(rows).reshape(-1, gt.shape[1])


def center_regression_sizes(offsets: np.ndarray, gt: np.ndarray, stride: int) -> np.ndarray:
    """How large the pose regressed at each person's true center is drawn: (M, 2) rows of the person's size
    (input pixels, as in center_regression_errors) and the ratio of the predicted to the true spread (root
    mean square distance from their mean) of its labelled keypoints; 1 is right, under 1 shrunk."""
    rows = []
    for n, pred, size in _at_true_centers(offsets, gt, stride):
        vis = gt[n, :, 2] > 0
        spread = [np.sqrt(((q - q.mean(0)) ** 2).sum(1).mean()) for q in (pred[vis], gt[n, vis, :2])]
        rows.append((size, spread[0] / spread[1]))
    return np.array(rows).reshape(-1, 2)


def _at_true_centers(offsets: np.ndarray, gt: np.ndarray, stride: int):
    """(person index, its (K, 2) keypoints regressed at its true center, its size) for each person with
    enough labelled keypoints and a center inside the map."""
    from posevid.data.targets import decode_offsets

    centers, size, ok = _person_geometry(gt)
    h, w = offsets.shape[1:]
    for n in np.nonzero(ok)[0]:
        j, i = (int(round(c)) for c in centers[n] / stride)
        if 0 <= i < h and 0 <= j < w:
            yield n, decode_offsets(offsets, i, j, stride), size[n]


def heatmap_window_errors(heatmaps: np.ndarray, gt: np.ndarray, stride: int,
                          window: float = HEATMAP_WINDOW) -> np.ndarray:
    """Error of each keypoint heatmap's maximum within `window` × size of the true keypoint, as a fraction
    of the person's size: the heatmaps' localisation on their own, given roughly where to look.

    heatmaps: (K[+1], h, w) one frame's maps (a center map after the K is ignored); gt: (N, K, 3) in input
    pixels. Returns (M, K) for the M people with enough labelled keypoints; NaN where a keypoint is not
    labelled or its window lies outside the map. Map pixel (i, j) is input pixel (j, i) × stride.
    """
    _, size, ok = _person_geometry(gt)
    k_count, h, w = gt.shape[1], *heatmaps.shape[1:]
    rows = []
    for n in np.nonzero(ok)[0]:
        r = max(1, int(round(window * size[n] / stride)))
        err = np.full(k_count, np.nan)
        for k in np.nonzero(gt[n, :, 2] > 0)[0]:
            cx, cy = (int(round(v)) for v in gt[n, k, :2] / stride)
            x0, x1, y0, y1 = max(cx - r, 0), min(cx + r + 1, w), max(cy - r, 0), min(cy + r + 1, h)
            if x1 <= x0 or y1 <= y0:
                continue
            i, j = np.unravel_index(np.argmax(heatmaps[k, y0:y1, x0:x1]), (y1 - y0, x1 - x0))
            err[k] = np.hypot((x0 + j) * stride - gt[n, k, 0], (y0 + i) * stride - gt[n, k, 1]) / size[n]
        rows.append(err)
    return np.array(rows).reshape(-1, k_count)


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
                       input_size: int, heatmap: list[np.ndarray] | None = None,
                       sizes: list[np.ndarray] | None = None) -> dict:
    """Median error at the true centers against the mean-pose oracle, overall and per keypoint, and the
    fraction of people whose prediction is closer with left and right exchanged (about 0 when the sides
    are learnt); with `heatmap`, also the heatmaps' median error against chance; with `sizes`, the median
    size ratio of the regressed poses, of all people and apart for those under and over LARGE_PERSON. One
    entry per frame: net and swapped, its center_regression_errors without and with swap; people, its
    (N, K, 3) keypoints in input pixels; heatmap, its heatmap_window_errors; sizes, its center_regression_sizes."""
    net_err, swap_err, hm_err = (np.concatenate(e) if e else np.zeros((0, len(COCO.names)))
                                 for e in (net, swapped, heatmap or []))
    oracle = mean_pose_errors(people)

    def med(x):
        x = x[np.isfinite(x)]
        return float(np.median(x)) if x.size else None

    closer = np.nanmean(swap_err, 1) < np.nanmean(net_err, 1)
    size, ratio = (np.concatenate(sizes) if sizes else np.zeros((0, 2))).T
    large = size >= LARGE_PERSON
    size_ratio = {"all": med(ratio), "small": med(ratio[~large]), "large": med(ratio[large]),
                  "large_people": int(large.sum()), "large_from_px": LARGE_PERSON}
    return {"people": len(net_err), "input_size": input_size,
            "median_error": {"network": med(net_err), "mean_pose_oracle": med(oracle)},
            "heatmap_median_error": {"network": med(hm_err), "chance": HEATMAP_CHANCE, "window": HEATMAP_WINDOW},
            "left_right_swapped_closer": float(closer.mean()) if len(closer) else None,
            "size_ratio": size_ratio,
            "per_keypoint": {name: {"network": med(net_err[:, k]), "mean_pose_oracle": med(oracle[:, k]),
                                    "heatmap": med(hm_err[:, k])} for k, name in enumerate(COCO.names)}}
