"""Evaluation in the seed's terms: a temporal model against its per-frame twin on annotated videos.

    evaluate(temporal, per_frame, annotations, ...) -> Report    runs both models over every video
    Report.to_dict() / Report.table()                            JSON report, printable table
    plot_nms_scores(report, png)                                 local-NMS score along the frames

The metrics are pure functions on arrays (no I/O, no models), each tested on hand-made inputs:

    match_frame                    one-to-one matching of predictions to ground truth by OKS
                                   (greedy_match of posevid.metrics)
    oks_score                      mean OKS of the matched pairs (and how many)
    track_acceleration_errors      ‖a_pred − a_gt‖ per 3 consecutive frames of one track
    jitter_score                   their mean over all tracks, px/frame²
    id_switches                    changes of the tracker's id along each ground-truth track
    coco_keypoint_ap               COCO AP / AP50 / AP75 / APM / APL through pycocotools' COCOeval
    people_found, people_summary   reported people against ground-truth boxes: found, false, missed,
                                   and people AP (average precision over all thresholds)
    center_regression_errors       offsets read at the true centers, error / person size
    mean_pose_errors               the same for a mean-pose oracle (knows each center and size)

Annotation files are COCO keypoints JSON, optionally extended PoseTrack-style (`images` carry
`video_id` and `frame_id`, `annotations` carry `track_id`). A frame is either frame t of a video,
`file_name` "videos/000001.mp4#7", or an image file (a still without `video_id` is a one-frame video;
image files sharing a `video_id` are the frames of one video, in `frame_id` order). Paths are relative
to `videos_root`, by default the annotation file's folder. Images with `"is_labeled": false`
(PoseTrack) are run through the models for context but not scored.

All coordinates are (x, y) in source pixels.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import cv2
import numpy as np

from posevid.data.readers import VideoRecord, read_annotations
from posevid.errors import PosevidError
from posevid.metrics import greedy_match, oks
from posevid.skeleton import COCO
from posevid.video import batches

if TYPE_CHECKING:
    from posevid.predict import PredictConfig

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
MODEL_NAMES = ("temporal", "per-frame")


# ---------------------------------------------------------------------------------------------
# Metrics: pure functions on arrays


def match_frame(
    pred: np.ndarray, gt: np.ndarray, areas: np.ndarray, sigmas=COCO.sigmas
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match one frame's predictions to its ground-truth people by OKS, greedily.

    Args:
        pred: (P, K, 3) predicted keypoints (x, y, score); the score column is not used.
        gt: (G, K, 3) ground truth (x, y, v); people with no labelled keypoint (all v = 0) are ignored.
        areas: (G,) ground-truth areas (the OKS scale, pixels²).

    Returns:
        (pred_index, gt_index, oks_values): (M,) arrays, indices into the given pred and gt.
        Pairs with OKS 0 are never matched.
    """
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, len(sigmas), 3)
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, len(sigmas), 3)
    labelled = np.flatnonzero((gt[:, :, 2] > 0).any(axis=1))
    sim = oks(pred, gt[labelled], np.asarray(areas, np.float64).reshape(-1)[labelled], sigmas)  # (P, G')
    pi, gj = greedy_match(sim)
    return pi, labelled[gj], sim[pi, gj]


def people_outcomes(pred: np.ndarray, scores: np.ndarray, boxes: np.ndarray,
                    ignore: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """One frame's reported people (pred (P, K, 3), scores (P,)) matched to its ground-truth boxes (xywh).

    A person finds a box when the center of its keypoints' extent lies inside it; each box is found at
    most once, people in score order, each taking the nearest free box that contains its center. This
    needs no keypoints in the ground truth, only boxes, so it also measures footage labelled with boxes
    alone; it counts what AP blurs together: phantom people reported on objects, and people not
    reported at all. A person unmatched but inside an `ignore` box (crowd regions) is left out.

    Returns (scores (N,), found (N,) bool, boxes): the people that count, highest score first, and the
    number of boxes. Matching in score order makes the matches of the people above any threshold the
    same as if only they had been reported, so one matching serves every threshold.
    """
    pred = np.asarray(pred, np.float64)  # (P, K, 3)
    scores = np.asarray(scores, np.float64)
    order = np.argsort(-scores, kind="stable")
    centers = (pred[order, :, :2].min(1) + pred[order, :, :2].max(1)) / 2  # (P, 2)

    def inside(b: np.ndarray) -> np.ndarray:  # (P, B) center inside box
        b = np.asarray(b, np.float64).reshape(-1, 4)
        x, y = centers[:, :1], centers[:, 1:]
        return (x >= b[:, 0]) & (x <= b[:, 0] + b[:, 2]) & (y >= b[:, 1]) & (y <= b[:, 1] + b[:, 3])

    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    hits = inside(boxes)
    dist = np.linalg.norm(centers[:, None] - (boxes[:, :2] + boxes[:, 2:] / 2)[None], axis=2)
    free = np.ones(len(boxes), bool)
    found = np.zeros(len(order), bool)
    ignored = inside(ignore if ignore is not None else np.zeros((0, 4))).any(1)
    for p in range(len(order)):
        options = np.flatnonzero(hits[p] & free)
        if len(options):
            free[options[np.argmin(dist[p, options])]] = False
            found[p] = True
    counted = found | ~ignored
    return scores[order][counted], found[counted], len(boxes)


def people_found(pred: np.ndarray, scores: np.ndarray, boxes: np.ndarray, threshold: float,
                 ignore: np.ndarray | None = None) -> tuple[int, int, int]:
    """(found, false, missed) at one threshold: people_outcomes counted over the people reported
    (score >= threshold)."""
    return _counts_at(*people_outcomes(pred, scores, boxes, ignore), threshold)


def _counts_at(scores: np.ndarray, found: np.ndarray, n_boxes: int, threshold: float) -> tuple[int, int, int]:
    """(found, false, missed) of people_outcomes over the people with score >= threshold."""
    kept = found[scores >= threshold]
    return int(kept.sum()), int((~kept).sum()), n_boxes - int(kept.sum())


def people_summary(frames: list[FrameEval], threshold: float) -> dict:
    """Reported people against ground-truth boxes over all frames, from one people_outcomes per frame:
    found / false / missed at `threshold`, and AP, the average precision of finding people over all
    thresholds (every frame's outcomes ranked by score into one precision/recall curve, read as COCO
    does: precision made monotone, then averaged at recall 0, 0.01, ..., 1). AP is a threshold-free
    figure for footage labelled with boxes; it is None when no frame has a box."""
    outcomes = [people_outcomes(f.pred, f.scores, f.boxes, f.ignore_boxes) for f in frames]
    n_boxes = sum(o[2] for o in outcomes)
    scores = np.concatenate([o[0] for o in outcomes]) if outcomes else np.zeros(0)
    found = np.concatenate([o[1] for o in outcomes]) if outcomes else np.zeros(0, bool)
    summary = {"threshold": threshold, **dict(zip(("found", "false", "missed"),
                                                  _counts_at(scores, found, n_boxes, threshold))), "AP": None}
    if n_boxes:
        tp = np.cumsum(found[np.argsort(-scores, kind="stable")])
        precision = np.maximum.accumulate((tp / np.arange(1, len(tp) + 1))[::-1])[::-1]
        at = np.searchsorted(tp / n_boxes, np.linspace(0, 1, 101), side="left")
        summary["AP"] = float(np.append(precision, 0.0)[at].mean())  # a recall never reached reads 0
    return summary


@dataclass
class FrameEval:
    """One annotated frame: its ground truth and one model's predictions, source pixels."""

    video: int  # video id (the annotation file's, or −image id for a still)
    frame_id: int
    image_id: int
    gt: np.ndarray  # (G, K, 3) x, y, v of the labelled, non-crowd people
    areas: np.ndarray  # (G,) OKS scale of each, pixels²
    track_ids: np.ndarray  # (G,) int, −1 where the file has none
    pred: np.ndarray  # (P, K, 3) x, y, keypoint score
    scores: np.ndarray  # (P,) pose scores
    nms_score: float  # the predictor's local-NMS score for this frame
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # (B, 4) xywh of every non-crowd person
    ignore_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # (C, 4) crowd regions
    # (P,) the tracker's id of each prediction, −1 for those below the reporting threshold (not tracked)
    pred_track_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def oks_score(frames: list[FrameEval]) -> tuple[float | None, int]:
    """Mean OKS over the matched (prediction, ground truth) pairs of all frames, and their count.

    None when nothing matched.
    """
    values = [match_frame(f.pred, f.gt, f.areas)[2] for f in frames]
    flat = np.concatenate(values) if values else np.zeros(0)
    return (float(flat.mean()) if len(flat) else None), int(len(flat))


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
    errors = [track_acceleration_errors(np.array([fr.frame_id for fr, _, _ in items]),
                                        np.stack([fr.pred[p] for fr, p, _ in items]),
                                        np.stack([fr.gt[g] for fr, _, g in items]))
              for items in _matched_tracks(frames)]
    flat = np.concatenate(errors) if errors else np.zeros(0)
    return (float(flat.mean()) if len(flat) else None), int(len(flat))


# A person counts as found by a pose for tracking at AP50's criterion; below it, OKS matching pairs
# people with stray poses far away, and their ids would count as switches of the tracker.
ID_MIN_OKS = 0.5


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


def coco_results(frames: list[FrameEval]) -> list[dict]:
    """Predictions in COCO results format: image_id, category_id 1, keypoints (51 floats), score."""
    out = []
    for fr in frames:
        for kp, score in zip(np.asarray(fr.pred, np.float64), np.asarray(fr.scores, np.float64)):
            out.append({"image_id": int(fr.image_id), "category_id": 1,
                        "keypoints": [round(float(v), 3) for v in kp.reshape(-1)], "score": float(score)})
    return out


AP_KEYS = ("AP", "AP50", "AP75", "APM", "APL")


def coco_keypoint_ap(gt: dict, results: list[dict], image_ids: list[int] | None = None) -> dict:
    """COCO keypoint AP, AP50, AP75, APM and APL from pycocotools' COCOeval(iouType="keypoints").

    APM and APL count only people of medium (32²–96² px²) and large (over 96² px²) area. COCO labels no
    keypoints on smaller people, so on COCO AP itself is in effect over those two; on data with keypoints
    for everyone (the synthetic splits), AP also counts the small people and APM/APL compare with COCO.

    Args:
        gt: COCO ground-truth dict (images, annotations with iscrowd/area/bbox/num_keypoints/keypoints
            and positive ids, categories with person as id 1), e.g. `GroundTruth.coco`.
        results: predictions in results format (see `coco_results`); not modified.
        image_ids: the images evaluated (default: all of `gt`).

    Returns:
        {"AP", "AP50", "AP75", "APM", "APL"}: floats in [0, 1]; 0.0 with no predictions; None when the
        evaluated images hold no labelled person (of that size) (COCOeval's −1).
    """
    from pycocotools.coco import COCO as PyCOCO
    from pycocotools.cocoeval import COCOeval

    ids = sorted({int(i["id"]) for i in gt["images"]} if image_ids is None else {int(i) for i in image_ids})
    wanted = set(ids)
    labelled = any(a["image_id"] in wanted and not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0
                   for a in gt["annotations"])
    if not labelled:
        return dict.fromkeys(AP_KEYS)
    results = [r for r in results if r["image_id"] in wanted]
    if not results:  # loadRes cannot take an empty list
        return dict.fromkeys(AP_KEYS, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress and the summary
        coco_gt = PyCOCO()
        coco_gt.dataset = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}  # COCOeval adds keys
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes([dict(r) for r in results])  # loadRes adds fields to its input
        ev = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        ev.params.imgIds = ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = [float(s) for s in ev.stats[:5]]  # COCOeval's keypoint summary starts AP, AP50, AP75, APM, APL
    return {k: (None if s < 0 else s) for k, s in zip(AP_KEYS, stats)}


# ---------------------------------------------------------------------------------------------
# Ground truth


@dataclass
class GroundTruth:
    """An annotation file read for evaluation."""

    path: Path
    videos: list[VideoRecord]  # the readers' view: frames per video, sorted by frame_id
    coco: dict  # COCO ground truth for COCOeval: person = category 1, COCO keypoint order, fields filled
    labelled: set[int]  # image ids that are scored (PoseTrack's "is_labeled": false ones are not)
    people: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]  # image id → (gt (G,17,3), areas, track ids)
    boxes: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # image id → (people, crowd) xywh


def _fill_box_area(kp: np.ndarray, bbox, area) -> tuple[list[float], float]:
    """bbox: the file's when it has a positive size, else the tight box of the labelled keypoints;
    area: the file's when positive, else the box's w × h."""
    box = [float(v) for v in bbox] if bbox and len(bbox) == 4 and bbox[2] > 0 and bbox[3] > 0 else None
    if box is None:
        vis = kp[:, 2] > 0
        if vis.any():
            (x0, y0), (x1, y1) = kp[vis, :2].min(0), kp[vis, :2].max(0)
            box = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
        else:
            box = [0.0, 0.0, 0.0, 0.0]
    area = float(area) if area and float(area) > 0 else box[2] * box[3]
    return box, area


def load_ground_truth(path: str | os.PathLike) -> GroundTruth:
    """Read an annotation file (PosevidError naming it when it is missing or not COCO keypoints)."""
    path = Path(path)
    if path.is_dir():
        raise PosevidError(f"{path}: is a directory, not an annotation file")
    try:
        return _parse_ground_truth(path)
    except (KeyError, TypeError, ValueError, IndexError) as e:  # COCO-shaped but malformed entries
        raise PosevidError(f"{path}: malformed annotation file ({type(e).__name__}: {e})") from None


def _parse_ground_truth(path: Path) -> GroundTruth:
    videos = read_annotations(str(path))  # checks existence, JSON and the COCO shape
    with open(path) as f:
        data = json.load(f)
    cats = data.get("categories") or []
    person = next((c for c in cats if c.get("name") == "person"), None)
    names = list(person["keypoints"]) if person and "keypoints" in person else list(COCO.names)
    kmap = np.array([names.index(n) if n in names else -1 for n in COCO.names])  # file slot per COCO slot
    images, labelled = [], set()
    for img in data["images"]:
        images.append({"id": int(img["id"]), "file_name": img.get("file_name", ""),
                       "width": int(img.get("width", 0)), "height": int(img.get("height", 0))})
        if img.get("is_labeled", True) is not False:
            labelled.add(int(img["id"]))
    anns, people_lists, box_lists = [], {}, {}
    for a in data["annotations"]:
        if person is not None and a.get("category_id", person["id"]) != person["id"]:
            continue
        raw = np.asarray(a.get("keypoints") or [0] * (3 * len(names)), np.float64).reshape(-1, 3)
        kp = np.zeros((len(COCO.names), 3))
        kp[kmap >= 0] = raw[kmap[kmap >= 0]]
        kp[kp[:, 2] <= 0] = 0.0
        box, area = _fill_box_area(kp, a.get("bbox"), a.get("area"))
        crowd = int(bool(a.get("iscrowd", 0)))
        nk = int((kp[:, 2] > 0).sum())
        anns.append({"id": len(anns) + 1, "image_id": int(a["image_id"]), "category_id": 1, "iscrowd": crowd,
                     "keypoints": kp.reshape(-1).tolist(), "num_keypoints": nk, "bbox": box, "area": area})
        if box[2] > 0 and box[3] > 0:  # people labelled with a box alone count for people_found
            box_lists.setdefault(int(a["image_id"]), ([], []))[crowd].append(box)
        if not crowd and nk > 0:
            people_lists.setdefault(int(a["image_id"]), []).append((kp, area, int(a.get("track_id", -1))))
    people = {
        k: (np.stack([p[0] for p in v]), np.array([p[1] for p in v]), np.array([p[2] for p in v], np.int64))
        for k, v in people_lists.items()
    }
    category = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO.names),
                "skeleton": [[i + 1, j + 1] for i, j in COCO.edges]}
    coco = {"images": images, "annotations": anns, "categories": [category]}
    boxes = {k: (np.array(v[0], np.float64).reshape(-1, 4), np.array(v[1], np.float64).reshape(-1, 4))
             for k, v in box_lists.items()}
    return GroundTruth(path, videos, coco, labelled, people, boxes)


# ---------------------------------------------------------------------------------------------
# Running the models over the videos


@dataclass
class _Source:
    """Consecutive frames of one video that come from one place."""

    video_path: Path | None  # an mp4 (frame index → image id in `wanted`), or None: image files
    images: list[tuple[Path, int]] = field(default_factory=list)  # image files, in order, with image ids
    wanted: dict[int, int] = field(default_factory=dict)  # mp4 frame index → image id


def _split_video_name(name: str) -> tuple[str, int] | None:
    if "#" in name:
        video, t = name.rsplit("#", 1)
        if video.lower().endswith(VIDEO_SUFFIXES) and t.isdigit():
            return video, int(t)
    return None


def _sources(video: VideoRecord, root: Path) -> list[_Source]:
    out: list[_Source] = []
    for rec in video.frames:
        split = _split_video_name(rec.file_name)
        if split is not None:
            path = root / split[0]
            if not out or out[-1].video_path != path:
                out.append(_Source(path))
            out[-1].wanted[split[1]] = rec.image_id
        else:
            if not out or out[-1].video_path is not None:
                out.append(_Source(None))
            out[-1].images.append((root / rec.file_name, rec.image_id))
    return out


def _source_frames(source: _Source, annotations: Path) -> Iterator[tuple[np.ndarray, int | None]]:
    """Every frame of the source in order, (H, W, 3) BGR, with its image id (None: not annotated)."""
    from posevid.video import probe, read_frames

    if source.video_path is None:
        for path, image_id in source.images:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                what = "image not found" if not path.exists() else "cannot read image"
                raise PosevidError(f"{what}: {path} (named in {annotations})")
            yield image, image_id
        return
    if not source.video_path.is_file():
        raise PosevidError(f"video not found: {source.video_path} (named in {annotations})")
    info = probe(source.video_path)
    last = max(source.wanted)
    if last >= info.frame_count:
        raise PosevidError(f"{source.video_path} has {info.frame_count} frames, {annotations} annotates "
                           f"frame {last}")
    frames = read_frames(info)
    try:
        for fr in frames:
            yield fr.image, source.wanted.get(fr.index)
    finally:
        getattr(frames, "close", lambda: None)()  # stops ffmpeg at once when we stop early


@dataclass
class ModelReport:
    name: str  # "temporal" or "per-frame"
    frames: int  # annotated frames scored
    local_nms_score: float | None  # mean local-NMS score over the scored frames
    oks_score: float | None  # mean OKS of matched predictions
    matched: int  # matched (prediction, ground truth) pairs
    AP: float | None
    AP50: float | None
    AP75: float | None
    APM: float | None  # medium people only (32²–96² px²), as COCO reports
    APL: float | None  # large people only (over 96² px²)
    jitter: float | None  # mean keypoint acceleration error, px/frame²
    jitter_count: int  # (track, frame) terms in that mean
    nms_per_frame: list[list[float]]  # per video, every frame in order (annotated or not)
    people: dict = field(default_factory=dict)  # people_summary: threshold, found, false, missed, AP
    id_switches: int | None = None  # tracker id switches along the ground-truth tracks (None: no tracks)
    id_matched: int = 0  # (track, frame) matches they are counted over

    @property
    def people_precision(self) -> float | None:
        reported = self.people.get("found", 0) + self.people.get("false", 0)
        return self.people["found"] / reported if reported else None

    @property
    def people_recall(self) -> float | None:
        labelled = self.people.get("found", 0) + self.people.get("missed", 0)
        return self.people["found"] / labelled if labelled else None

    def to_dict(self) -> dict:
        return {**{k: getattr(self, k) for k in (
            "name", "frames", "local_nms_score", "oks_score", "matched", *AP_KEYS, "jitter",
            "jitter_count", "nms_per_frame", "people", "id_switches", "id_matched")},
            "people_precision": self.people_precision, "people_recall": self.people_recall}


@dataclass
class Report:
    annotations: str
    videos: list[str]  # where each video's frames came from (mp4 or first image), in evaluation order
    threshold: float  # minimum pose score the predictors reported
    models: list[ModelReport]  # temporal first, then per-frame
    decoding: dict = field(default_factory=dict)  # input_size, flip, snap_radius as the predictors resolved them

    def to_dict(self) -> dict:
        return {"annotations": self.annotations, "videos": self.videos, "threshold": self.threshold,
                **self.decoding, "models": {m.name: m.to_dict() for m in self.models}}

    def table(self) -> str:
        """The models side by side as a plain-text table."""
        at = self.models[0].people.get("threshold") if self.models else None
        head = ["model", "local NMS score", "OKS score", *AP_KEYS, "jitter px/frame²",
                f"people P/R @{at:g}" if at is not None else "people P/R", "people AP", "ID switches"]

        def num(x, digits=3):
            return "n/a" if x is None else f"{x:.{digits}f}"

        rows = [[m.name, num(m.local_nms_score), num(m.oks_score), *(num(getattr(m, k)) for k in AP_KEYS),
                 num(m.jitter, 2), f"{num(m.people_precision, 2)}/{num(m.people_recall, 2)}",
                 num(m.people.get("AP")), "n/a" if m.id_switches is None else str(m.id_switches)]
                for m in self.models]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

        def line(cells):
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        frames = self.models[0].frames if self.models else 0
        return "\n".join([line(head), "  ".join("-" * w for w in widths), *[line(r) for r in rows],
                          f"{frames} annotated frames in {len(self.videos)} videos"])


def model_report(name: str, frames: list[FrameEval], gt: GroundTruth, nms_per_frame: list[list[float]],
                 people_threshold: float) -> ModelReport:
    """All metrics of one model from its scored frames."""
    people = people_summary(frames, people_threshold)
    nms = [f.nms_score for f in frames]
    oks_mean, matched = oks_score(frames)
    jit, jit_n = jitter_score(frames)
    switches, id_matched = id_switches(frames)
    ap = coco_keypoint_ap(gt.coco, coco_results(frames), [f.image_id for f in frames])
    return ModelReport(name, len(frames), float(np.mean(nms)) if nms else None, oks_mean, matched,
                       *(ap[k] for k in AP_KEYS), jit, jit_n, nms_per_frame, people, switches, id_matched)


def evaluate(
    model_temporal,
    model_per_frame,
    annotations: str | os.PathLike,
    videos_root: str | os.PathLike | None = None,
    threshold: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
    device: str = "cpu",
    batch: int = 8,
    predict: PredictConfig | None = None,
) -> Report:
    """Run a temporal model and its per-frame twin over every video of an annotation file and score both.

    Args:
        model_temporal, model_per_frame: DEKR networks (typically the same weights, temporal=True/False);
            model_temporal may be None to score the per-frame network alone.
        annotations: COCO / PoseTrack-style keypoint annotation file.
        videos_root: folder the file names are relative to (default: the annotation file's folder).
        threshold: minimum pose score reported (0 keeps everything, as COCO AP wants).
        progress: optional callable(done_videos, total_videos).
        device: where the models run.
        batch: frames per `Predictor.predict` call (memory stays flat: one batch at a time).
        predict: decoding settings (input size, flip, snapping); its threshold is replaced by `threshold`.

    Every frame of a video goes through each predictor in order (the ConvGRU needs consecutive
    frames); predictions are kept only for the annotated, labelled frames.
    """
    from posevid.predict import PredictConfig, Predictor
    from posevid.track import Tracker

    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    annotations = Path(annotations)
    gt = load_ground_truth(annotations)
    root = Path(videos_root) if videos_root is not None else annotations.parent
    named = [(n, m) for n, m in zip(MODEL_NAMES, (model_temporal, model_per_frame)) if m is not None]
    config = replace(predict or PredictConfig(), threshold=threshold)
    predictors = [Predictor(m, config, device=device) for _, m in named]
    scored: list[list[FrameEval]] = [[] for _ in named]
    nms_curves: list[list[list[float]]] = [[] for _ in named]
    names: list[str] = []
    people_at = max(threshold, PredictConfig().threshold)  # people as `posevid infer` reports them by default
    trackers = [Tracker() for _ in named]  # and tracks them
    empty = (np.zeros((0, len(COCO.names), 3)), np.zeros(0), np.zeros(0, np.int64))
    no_boxes = (np.zeros((0, 4)), np.zeros((0, 4)))
    for v_index, video in enumerate(gt.videos):
        frame_of = {r.image_id: r for r in video.frames}
        sources = _sources(video, root)
        names.append(str(sources[0].video_path or sources[0].images[0][0]) if sources else "")
        curves: list[list[float]] = [[] for _ in named]
        for source in sources:
            for p, t in zip(predictors, trackers):
                p.reset()
                t.reset()
            for chunk in batches(_source_frames(source, annotations), batch):
                images = [c[0] for c in chunk]
                for m, p in enumerate(predictors):
                    for (_, image_id), res in zip(chunk, p.predict(images)):
                        curves[m].append(res.nms_score)
                        reported = res.poses.scores >= people_at
                        track_ids = np.full(len(reported), -1, np.int64)
                        track_ids[reported] = trackers[m].update(res.poses.keypoints[reported],
                                                                 res.poses.scores[reported], res.scene_cut)
                        if image_id is None or image_id not in gt.labelled:
                            continue
                        g, areas, tids = gt.people.get(image_id, empty)
                        boxes, crowd = gt.boxes.get(image_id, no_boxes)
                        scored[m].append(FrameEval(video.video_id, frame_of[image_id].frame_id, image_id, g,
                                                   areas, tids, res.poses.keypoints, res.poses.scores,
                                                   res.nms_score, boxes, crowd, track_ids))
        for m in range(len(named)):
            nms_curves[m].append(curves[m])
        if progress:
            progress(v_index + 1, len(gt.videos))
    models = [model_report(name, scored[m], gt, nms_curves[m], people_at) for m, (name, _) in enumerate(named)]
    p = predictors[-1]
    decoding = {"input_size": p.input_size, "flip": p.config.flip, "snap_radius": p.snap_radius}
    return Report(str(annotations), names, float(threshold), models, decoding)


# ---------------------------------------------------------------------------------------------
# Diagnosis: the offset regression alone, read at the true person centers. A network that has only
# learnt where people are and how big they are does as well as the mean-pose oracle; articulation
# learnt shows as a smaller error than the oracle's.

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


def center_regression(model, annotations: str | os.PathLike, videos_root: str | os.PathLike | None = None,
                      input_size: int | None = None, device: str = "cpu") -> dict:
    """Median regression error at the true centers (per-frame network, no flip) against the mean-pose
    oracle, overall and per keypoint, over every labelled annotated frame; and the fraction of people
    whose prediction is closer with left and right exchanged (about 0 when the sides are learnt)."""
    import torch

    from posevid.frames import STRIDE, Resize, to_tensor

    annotations = Path(annotations)
    gt = load_ground_truth(annotations)
    root = Path(videos_root) if videos_root is not None else annotations.parent
    size = input_size or model.cfg.input_size
    model = model.to(device).eval()
    net, swapped, people = [], [], []
    empty = np.zeros((0, len(COCO.names), 3))
    for video in gt.videos:
        for source in _sources(video, root):
            for image, image_id in _source_frames(source, annotations):
                if image_id is None or image_id not in gt.labelled:
                    continue
                plan = Resize.plan(image.shape[1], image.shape[0], size)
                with torch.no_grad():
                    offsets = model(to_tensor(image, plan).to(device)).offsets[0].float().cpu().numpy()
                g = gt.people.get(image_id, (empty,))[0].astype(np.float64).copy()
                g[..., :2] = plan.to_input(g[..., :2])
                net.append(center_regression_errors(offsets, g, STRIDE))
                swapped.append(center_regression_errors(offsets, g, STRIDE, swap=True))
                people.append(g)
    net_err, swap_err = (np.concatenate(e) if e else np.zeros((0, len(COCO.names))) for e in (net, swapped))
    oracle = mean_pose_errors(people)

    def med(x):
        x = x[np.isfinite(x)]
        return float(np.median(x)) if x.size else None

    closer = np.nanmean(swap_err, 1) < np.nanmean(net_err, 1)
    return {"people": len(net_err), "input_size": size,
            "median_error": {"network": med(net_err), "mean_pose_oracle": med(oracle)},
            "left_right_swapped_closer": float(closer.mean()) if len(closer) else None,
            "per_keypoint": {name: {"network": med(net_err[:, k]), "mean_pose_oracle": med(oracle[:, k])}
                             for k, name in enumerate(COCO.names)}}


# ---------------------------------------------------------------------------------------------
# The seed's figure: local-NMS score along the frames


def mean_curve(per_video: list[list[float]]) -> np.ndarray:
    """(T,) mean over videos of the score at each frame position (videos shorter than t left out)."""
    T = max((len(v) for v in per_video), default=0)
    total, count = np.zeros(T), np.zeros(T)
    for v in per_video:
        total[: len(v)] += v
        count[: len(v)] += 1
    return total / np.maximum(count, 1)


def _nice_step(span: float, ticks: int) -> float:
    raw = span / max(ticks, 1)
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


COLORS = {"temporal": (180, 105, 30), "per-frame": (20, 120, 240)}  # BGR: blue, orange


def plot_nms_scores(report: Report, path: str | os.PathLike, width: int = 900, height: int = 400) -> Path:
    """PNG line plot of the local-NMS score along the frames, one line per model.

    With several videos each line is the mean over videos at each frame position. Drawn with cv2;
    written to a temporary name beside `path`, then renamed (a finished `path` is always complete).
    """
    path = Path(path)
    curves = [(m.name, mean_curve(m.nms_per_frame)) for m in report.models]
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 80, 20, 40, 55
    x0, x1, y0, y1 = left, width - right, top, height - bottom  # plot area (y0 top, y1 bottom)
    font, aa = cv2.FONT_HERSHEY_SIMPLEX, cv2.LINE_AA
    T = max((len(c) for _, c in curves), default=0)
    ymax_data = max((float(c.max()) for _, c in curves if len(c)), default=0.0)
    ystep = _nice_step(max(ymax_data, 1e-3) * 1.05, 5)
    ymax = ystep * math.ceil(max(ymax_data, 1e-3) * 1.05 / ystep)
    xmax = max(T - 1, 1)
    xstep = max(1, int(_nice_step(xmax, 8)))

    def px(t: float, s: float) -> tuple[int, int]:
        return (int(round(x0 + (x1 - x0) * t / xmax)), int(round(y1 - (y1 - y0) * s / ymax)))

    for i in range(int(round(ymax / ystep)) + 1):  # horizontal grid and y ticks
        s = i * ystep
        _, y = px(0, s)
        cv2.line(img, (x0, y), (x1, y), (225, 225, 225), 1, aa)
        cv2.line(img, (x0 - 5, y), (x0, y), (0, 0, 0), 1, aa)
        label = f"{s:.3g}"
        (tw, th), _ = cv2.getTextSize(label, font, 0.45, 1)
        cv2.putText(img, label, (x0 - 8 - tw, y + th // 2), font, 0.45, (0, 0, 0), 1, aa)
    for t in range(0, xmax + 1, xstep):  # x ticks
        x, _ = px(t, 0)
        cv2.line(img, (x, y1), (x, y1 + 5), (0, 0, 0), 1, aa)
        label = str(t)
        (tw, th), _ = cv2.getTextSize(label, font, 0.45, 1)
        cv2.putText(img, label, (x - tw // 2, y1 + 10 + th), font, 0.45, (0, 0, 0), 1, aa)
    cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), 1, aa)
    cv2.putText(img, "frame", ((x0 + x1) // 2 - 20, height - 12), font, 0.5, (0, 0, 0), 1, aa)
    videos = max((len(m.nms_per_frame) for m in report.models), default=0)
    title = "local NMS score (mean center peak)" + (f", mean over {videos} videos" if videos > 1 else "")
    cv2.putText(img, title, (10, 24), font, 0.55, (0, 0, 0), 1, aa)

    for name, c in curves:
        color = COLORS.get(name, (0, 0, 0))
        pts = np.array([px(t, s) for t, s in enumerate(c)], np.int32).reshape(-1, 1, 2)
        if len(c) > 1:
            cv2.polylines(img, [pts], False, color, 2, aa)
        elif len(c) == 1:
            cv2.circle(img, tuple(int(v) for v in pts[0, 0]), 4, color, -1, aa)
    # legend in the top margin, right-aligned: a short line of each colour and the model's name
    x = x1
    for name, _ in reversed(curves):
        tw = cv2.getTextSize(name, font, 0.5, 1)[0][0]
        x -= tw
        cv2.putText(img, name, (x, 24), font, 0.5, (0, 0, 0), 1, aa)
        cv2.line(img, (x - 34, 19), (x - 6, 19), COLORS.get(name, (0, 0, 0)), 2, aa)
        x -= 54

    ok, png = cv2.imencode(".png", img)
    if not ok:
        raise PosevidError(f"{path}: cannot encode the plot as PNG")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(tmp, "wb") as f:
            f.write(png.tobytes())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise PosevidError(f"{path}: cannot write the plot ({e.strerror or e})") from None
        raise
    return path
