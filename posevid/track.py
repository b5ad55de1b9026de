"""Frame-to-frame identities: each frame's poses matched to where the tracks should be now.

Each track's last pose is first moved on by the track's velocity (of its keypoints' mean, smoothed over
the frames it was seen in). Poses are matched greedily, highest OKS first, as pose-tracking baselines
do; the poses OKS cannot place then go to the nearest free track of about their size. OKS alone broke
small people's tracks: between two frames of 10 fps footage a walking person 60 px tall moves further
than OKS tolerates at that size, and the decoder's jitter is a large share of it (the example clip got
154 tracks for about 10 people, 38 with both stages).
"""
from __future__ import annotations

import numpy as np

from posevid.metrics import greedy_match, pose_area, pose_oks
from posevid.skeleton import COCO

# Keypoints at or below this score neither span a track's box nor count in the OKS.
KEYPOINT_THRESHOLD = 0.1
# Weight of the newest frame-to-frame motion in a track's velocity: half, so one noisy frame cannot
# throw the prediction off, yet a person who starts walking is followed within a few frames.
VELOCITY_WEIGHT = 0.5
# Second-chance matching by position: a pose whose center is within MAX_JUMP track sizes (√ of the
# keypoint box area) of where a track should be, and whose size is within MAX_SIZE_RATIO of it.
MAX_JUMP = 0.75
MAX_SIZE_RATIO = 1.5


def pose_centers(keypoints: np.ndarray) -> np.ndarray:
    """(P, K, 3) poses → (P, 2) mean of their keypoints above KEYPOINT_THRESHOLD (of all when none is)."""
    kp = np.asarray(keypoints, dtype=np.float64)
    w = (kp[..., 2] > KEYPOINT_THRESHOLD).astype(np.float64)
    w[w.sum(1) == 0] = 1.0
    return (kp[..., :2] * w[..., None]).sum(1) / w.sum(1)[:, None]


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
        self._velocity = np.zeros((0, 2))  # (T, 2) pixels per frame; 0 until a track is seen twice
        self._seen = np.zeros(0, dtype=np.int64)  # (T,) frames the track was matched in
        self._missed = np.zeros(0, dtype=np.int64)  # (T,) consecutive frames without a match

    def predicted_poses(self) -> np.ndarray:
        """(T, K, 3) the live tracks' last poses moved on by their velocity to the coming frame."""
        poses = self._poses.copy()
        poses[..., :2] += (self._velocity * (self._missed + 1)[:, None])[:, None, :]
        return poses

    def update(self, keypoints: np.ndarray, scores: np.ndarray, scene_cut: bool = False) -> np.ndarray:
        """Match one frame's poses to the live tracks and return their ids.

        Args:
            keypoints: (P, K, 3) the frame's poses, (x, y, score), in source pixels.
            scores: (P,) pose scores; with equal OKS the higher-scored pose is matched first.
            scene_cut: the video cut to another scene before this frame: everybody gets a new id.

        Returns:
            (P,) int64 track ids, distinct within the frame.
        """
        kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, len(self.sigmas), 3)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if scores.shape[0] != kp.shape[0]:
            raise ValueError(f"update: {kp.shape[0]} poses but {scores.shape[0]} scores")
        if scene_cut:
            self.reset()
        P, T = kp.shape[0], self._ids.shape[0]

        det_track = np.full(P, -1, dtype=np.int64)  # index into the live tracks, -1 = none
        if P and T:
            predicted = self.predicted_poses()
            # the track's own box is the scale: it is the pose the detection should resemble
            areas = pose_area(self._poses, threshold=KEYPOINT_THRESHOLD)
            oks = pose_oks(kp, predicted, areas, self.sigmas, KEYPOINT_THRESHOLD)  # (P, T)
            _greedy(oks, self.min_oks, scores, det_track)
            # then the poses OKS cannot place (a track's first step, before it has a velocity; jittery
            # keypoints of small people): the nearest track of about the same size, by center distance
            # in units of the track's size
            size = np.sqrt(np.maximum(areas, 1.0))  # (T,)
            det_size = np.sqrt(np.maximum(pose_area(kp, threshold=KEYPOINT_THRESHOLD), 1.0))  # (P,)
            jump = np.linalg.norm(pose_centers(kp)[:, None] - pose_centers(predicted)[None], axis=2) / size
            ratio = det_size[:, None] / size[None]
            alike = (ratio > 1 / MAX_SIZE_RATIO) & (ratio < MAX_SIZE_RATIO)
            closeness = np.where(alike, 1.0 - jump / MAX_JUMP, -1.0)
            _greedy(closeness, 0.0, scores, det_track)

        ids = np.empty(P, dtype=np.int64)
        matched = det_track >= 0
        ids[matched] = self._ids[det_track[matched]]
        n_new = int((~matched).sum())
        ids[~matched] = np.arange(self._next_id, self._next_id + n_new)
        self.observe(kp, ids)
        return ids

    def observe(self, keypoints: np.ndarray, track_ids: np.ndarray, scene_cut: bool = False) -> None:
        """Advance the tracks by one frame whose ids are already known.

        `update` ends with this; `--resume` replays the frames already written through it, so that the
        tracker continues exactly as if the run had not been interrupted.

        Args:
            keypoints: (P, K, 3) the frame's poses, (x, y, score).
            track_ids: (P,) their ids, distinct; ids not live yet start new tracks.
            scene_cut: as for `update`: the tracks before this frame are forgotten first.
        """
        kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, len(self.sigmas), 3)
        ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        if kp.shape[0] != ids.shape[0]:
            raise ValueError(f"observe: {kp.shape[0]} poses but {ids.shape[0]} track ids")
        if scene_cut:
            self.reset()
        live = {int(t): i for i, t in enumerate(self._ids)}
        seen = np.array([int(t) in live for t in ids], dtype=bool)
        # matched tracks take the new pose and update their velocity; unmatched ones age and expire
        # after max_age misses
        rows = np.array([live[int(t)] for t in ids[seen]], dtype=np.int64)
        step = (pose_centers(kp[seen]) - pose_centers(self._poses[rows])) / (self._missed[rows] + 1)[:, None]
        velocity = self._velocity.copy()
        first = self._seen[rows] == 1  # the first motion seen is the best guess there is
        velocity[rows] = np.where(first[:, None], step,
                                  (1 - VELOCITY_WEIGHT) * velocity[rows] + VELOCITY_WEIGHT * step)
        missed = self._missed + 1
        missed[rows] = 0
        poses = self._poses.copy()
        poses[rows] = kp[seen]
        n_seen = self._seen.copy()
        n_seen[rows] += 1
        keep = missed <= self.max_age
        new = int((~seen).sum())
        self._ids = np.concatenate([self._ids[keep], ids[~seen]])
        self._poses = np.concatenate([poses[keep], kp[~seen]])
        self._velocity = np.concatenate([velocity[keep], np.zeros((new, 2))])
        self._seen = np.concatenate([n_seen[keep], np.ones(new, dtype=np.int64)])
        self._missed = np.concatenate([missed[keep], np.zeros(new, dtype=np.int64)])
        if len(ids):
            self._next_id = max(self._next_id, int(ids.max()) + 1)

    @property
    def live_ids(self) -> np.ndarray:
        """(T,) ids of the tracks that can still be matched."""
        return self._ids.copy()


def _greedy(similarity: np.ndarray, minimum: float, scores: np.ndarray, det_track: np.ndarray) -> None:
    """greedy_match of the detections and tracks still free, pairs with similarity >= minimum; among
    equal similarities the higher-scored pose first, then detection order. Writes the track index of each
    newly matched detection into det_track (−1 = unmatched)."""
    rows = np.flatnonzero(det_track < 0)
    rows = rows[np.argsort(-scores[rows], kind="stable")]  # greedy_match breaks ties row by row
    cols = np.setdiff1d(np.arange(similarity.shape[1]), det_track[det_track >= 0])
    # greedy_match keeps pairs strictly above its bound: the next float below `minimum` keeps `minimum`
    d, t = greedy_match(similarity[np.ix_(rows, cols)], np.nextafter(minimum, -np.inf))
    det_track[rows[d]] = cols[t]
