"""Accuracy along time, pure functions on arrays: keypoint jitter against the ground truth and the
tracker's identity switches, both along the ground-truth tracks."""
from __future__ import annotations

import numpy as np

from posevid.evaluate.accuracy import FrameEval, match_frame, mean_and_count

# A person counts as found by a pose for tracking at AP50's criterion; below it, OKS matching pairs
# people with stray poses far away, and their ids would count as switches of the tracker.
ID_MIN_OKS = 0.5


def track_acceleration_errors(frame_ids: np.ndarray, pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Acceleration error of one ground-truth track, at every frame whose two neighbours are there too.

    Args:
        frame_ids: (T,) increasing frame numbers where the track is matched to a prediction.
        pred: (T, K, 2|3) the matched predictions (x, y[, score]).
        gt: (T, K, 3) the ground truth (x, y, v).

    Returns:
        (n,) one error per frame t with frames t−1 and t+1 also present (frame numbers exactly
        consecutive): the mean, over keypoints labelled (v > 0) in all three frames, of
        ‖a_pred − a_gt‖ with a_t = x_{t+1} − 2 x_t + x_{t−1} (px/frame²). A frame whose three
        frames share no labelled keypoint gives no error.
    """
    f = np.asarray(frame_ids, dtype=np.int64).reshape(-1)
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape[0] != len(f) or gt.shape[0] != len(f) or pred.shape[1] != gt.shape[1]:
        raise ValueError(f"track_acceleration_errors: {len(f)} frame ids, pred {pred.shape}, gt {gt.shape}")
    if len(f) < 3:
        return np.zeros(0)
    mid = np.flatnonzero((f[1:-1] - f[:-2] == 1) & (f[2:] - f[1:-1] == 1)) + 1  # centre frames
    if len(mid) == 0:
        return np.zeros(0)
    window = np.stack([mid - 1, mid, mid + 1])  # (3, n)
    acc_pred = pred[window[2], :, :2] - 2 * pred[window[1], :, :2] + pred[window[0], :, :2]  # (n, K, 2)
    acc_gt = gt[window[2], :, :2] - 2 * gt[window[1], :, :2] + gt[window[0], :, :2]  # (n, K, 2)
    labelled = (gt[window, :, 2] > 0).all(axis=0)  # (n, K)
    err = np.linalg.norm(acc_pred - acc_gt, axis=2)  # (n, K)
    n = labelled.sum(axis=1)
    keep = n > 0
    return (err * labelled).sum(axis=1)[keep] / n[keep]


def _matched_tracks(frames: list[FrameEval], tracked_only: bool = False,
                    min_oks: float = 0.0) -> list[list[tuple[FrameEval, int, int]]]:
    """Each ground-truth track (video, track_id ≥ 0) followed through the frames where the per-frame OKS
    matching gives it a prediction: (frame, prediction index, ground-truth index) in frame order; a
    track id twice in one frame keeps its first person. tracked_only: match only the predictions the
    tracker gave an id (the people `posevid infer` reports); min_oks: keep only pairs at least this good."""
    tracks: dict[tuple[int, int], dict[int, tuple[FrameEval, int, int]]] = {}
    for fr in frames:
        candidates = np.flatnonzero(fr.pred_track_ids >= 0) if tracked_only else np.arange(len(fr.pred))
        pi, gi, values = match_frame(fr.pred[candidates], fr.gt, fr.areas)
        good = values >= min_oks
        for p, g in zip(candidates[pi[good]], gi[good]):
            tid = int(fr.track_ids[g])
            if tid >= 0:
                tracks.setdefault((fr.video, tid), {}).setdefault(fr.frame_id, (fr, int(p), int(g)))
    return [[track[f] for f in sorted(track)] for track in tracks.values()]


def jitter_score(frames: list[FrameEval]) -> tuple[float | None, int]:
    """Mean keypoint acceleration error against the ground truth (px/frame²) and how many terms.

    Each ground-truth track is followed through the frames where the per-frame OKS matching gives it
    a prediction (`_matched_tracks`); see `track_acceleration_errors`. None when no track is matched
    in three consecutive frames.
    """
    return mean_and_count([track_acceleration_errors(np.array([fr.frame_id for fr, _, _ in items]),
                                                     np.stack([fr.pred[p] for fr, p, _ in items]),
                                                     np.stack([fr.gt[g] for fr, _, g in items]))
                           for items in _matched_tracks(frames)])


def id_switches(frames: list[FrameEval]) -> tuple[int | None, int]:
    """Identity switches of the tracker and the number of (track, frame) matches they are counted over.

    Along each ground-truth track, the tracker's id of the reported person matched to it with OKS ≥
    ID_MIN_OKS; every change from the id it was last matched to is a switch, as CLEAR MOT's IDSW counts
    them (frames where the person is not matched are skipped). Both a track broken in two and two
    people's ids swapped count; a person matched to a stray pose in some frame does not. None when
    nothing is matched (or the frames carry no tracker ids).
    """
    switches = matched = 0
    for items in _matched_tracks(frames, tracked_only=True, min_oks=ID_MIN_OKS):
        ids = np.array([fr.pred_track_ids[p] for fr, p, _ in items])
        switches += int((ids[1:] != ids[:-1]).sum())
        matched += len(ids)
    return (switches if matched else None), matched
