"""Frame-to-frame identities: greedy OKS matching of each frame's poses to the tracks' last poses.

No motion model: at video frame rates people move little between frames, so the last known pose is a
good enough prediction, and greedy highest-OKS-first matching is what pose-tracking baselines use.
"""
from __future__ import annotations

import numpy as np

from posevid.metrics import pose_area, pose_oks
from posevid.skeleton import COCO

# Keypoints at or below this score neither span a track's box nor count in the OKS.
KEYPOINT_THRESHOLD = 0.1


class Tracker:
    """Assigns a track id to every pose of every frame; owns its state explicitly (``reset``, ``observe``).

    Args:
        max_age: a track unmatched for more than this many consecutive frames expires.
        min_oks: a detection and a track are matched only if their OKS is at least this.
        sigmas: (K,) OKS falloffs of the keypoints.

    Ids start at 1, increase by one per new track and are never reused (also not across ``reset``,
    so a restarted sequence cannot be confused with the earlier one).
    """

    def __init__(self, max_age: int = 30, min_oks: float = 0.3, sigmas=COCO.sigmas):
        if max_age < 0:
            raise ValueError(f"max_age must be >= 0, got {max_age}")
        if not 0.0 <= min_oks <= 1.0:
            raise ValueError(f"min_oks must be in [0, 1], got {min_oks}")
        self.max_age = max_age
        self.min_oks = min_oks
        self.sigmas = tuple(sigmas)
        self._next_id = 1
        self.reset()

    def reset(self) -> None:
        """Forget all tracks (e.g. at a scene cut). New ids continue after the last one given."""
        self._ids = np.zeros(0, dtype=np.int64)  # (T,) live track ids
        self._poses = np.zeros((0, len(self.sigmas), 3))  # (T, K, 3) last matched pose, (x, y, score)
        self._missed = np.zeros(0, dtype=np.int64)  # (T,) consecutive frames without a match

    def update(self, keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Match one frame's poses to the live tracks and return their ids.

        Args:
            keypoints: (P, K, 3) the frame's poses, (x, y, score), in source pixels.
            scores: (P,) pose scores; with equal OKS the higher-scored pose is matched first.

        Returns:
            (P,) int64 track ids, distinct within the frame.
        """
        kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, len(self.sigmas), 3)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        P, T = kp.shape[0], self._ids.shape[0]
        if scores.shape[0] != P:
            raise ValueError(f"update: {P} poses but {scores.shape[0]} scores")

        det_track = np.full(P, -1, dtype=np.int64)  # index into the live tracks, -1 = none
        if P and T:
            # the track's own box is the scale: it is the pose the detection should resemble
            areas = pose_area(self._poses, threshold=KEYPOINT_THRESHOLD)
            sim = pose_oks(kp, self._poses, areas, self.sigmas, KEYPOINT_THRESHOLD)  # (P, T)
            # greedy, highest OKS first; ties broken by pose score, then detection order (stable sort)
            order = np.lexsort((-np.repeat(scores, T), -sim.reshape(-1)))
            det_used = np.zeros(P, dtype=bool)
            trk_used = np.zeros(T, dtype=bool)
            for flat in order:
                if sim.flat[flat] < self.min_oks:
                    break
                d, t = divmod(int(flat), T)
                if det_used[d] or trk_used[t]:
                    continue
                det_used[d] = trk_used[t] = True
                det_track[d] = t

        ids = np.empty(P, dtype=np.int64)
        matched = det_track >= 0
        ids[matched] = self._ids[det_track[matched]]
        n_new = int((~matched).sum())
        ids[~matched] = np.arange(self._next_id, self._next_id + n_new)
        self.observe(kp, ids)
        return ids

    def observe(self, keypoints: np.ndarray, track_ids: np.ndarray) -> None:
        """Advance the tracks by one frame whose ids are already known.

        `update` ends with this; `--resume` replays the frames already written through it, so that the
        tracker continues exactly as if the run had not been interrupted.

        Args:
            keypoints: (P, K, 3) the frame's poses, (x, y, score).
            track_ids: (P,) their ids, distinct; ids not live yet start new tracks.
        """
        kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, len(self.sigmas), 3)
        ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        if kp.shape[0] != ids.shape[0]:
            raise ValueError(f"observe: {kp.shape[0]} poses but {ids.shape[0]} track ids")
        live = {int(t): i for i, t in enumerate(self._ids)}
        seen = np.array([int(t) in live for t in ids], dtype=bool)
        # matched tracks take the new pose; unmatched ones age and expire after max_age misses
        missed = self._missed + 1
        poses = self._poses.copy()
        rows = np.array([live[int(t)] for t in ids[seen]], dtype=np.int64)
        missed[rows] = 0
        poses[rows] = kp[seen]
        keep = missed <= self.max_age
        self._ids = np.concatenate([self._ids[keep], ids[~seen]])
        self._poses = np.concatenate([poses[keep], kp[~seen]])
        self._missed = np.concatenate([missed[keep], np.zeros(int((~seen).sum()), dtype=np.int64)])
        if len(ids):
            self._next_id = max(self._next_id, int(ids.max()) + 1)

    @property
    def live_ids(self) -> np.ndarray:
        """(T,) ids of the tracks that can still be matched."""
        return self._ids.copy()
