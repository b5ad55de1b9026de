"""Per-frame accuracy, pure functions on arrays: OKS matching, COCO keypoint AP, and reported people
against ground-truth boxes. All coordinates are (x, y) in source pixels."""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

import numpy as np

from posevid.metrics import greedy_match, oks
from posevid.skeleton import COCO


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


def mean_and_count(values: list[np.ndarray]) -> tuple[float | None, int]:
    """Mean of all the values of several arrays and how many there are; None when there are none."""
    flat = np.concatenate(values) if values else np.zeros(0)
    return (float(flat.mean()) if len(flat) else None), int(len(flat))


# ---------------------------------------------------------------------------------------------
# OKS and COCO AP


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


def oks_score(frames: list[FrameEval]) -> tuple[float | None, int]:
    """Mean OKS over the matched (prediction, ground truth) pairs of all frames, and their count.

    None when nothing matched.
    """
    return mean_and_count([match_frame(f.pred, f.gt, f.areas)[2] for f in frames])


def coco_results(frames: list[FrameEval]) -> list[dict]:
    """Predictions in COCO results format: image_id, category_id 1, keypoints (51 floats), score."""
    return [r for fr in frames for r in pose_results(fr.image_id, fr.pred, fr.scores)]


def pose_results(image_id: int, pred: np.ndarray, scores: np.ndarray) -> list[dict]:
    """One image's poses (P, K, 3) with scores (P,) in COCO results format."""
    return [{"image_id": int(image_id), "category_id": 1, "keypoints": [round(float(v), 3) for v in kp.reshape(-1)],
             "score": float(score)} for kp, score in zip(np.asarray(pred, np.float64), np.asarray(scores, np.float64))]


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
# People found: reported people against ground-truth boxes


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


def _counts_at(scores: np.ndarray, found: np.ndarray, n_boxes: int, threshold: float) -> tuple[int, int, int]:
    """(found, false, missed) of people_outcomes over the people with score >= threshold."""
    kept = found[scores >= threshold]
    return int(kept.sum()), int((~kept).sum()), n_boxes - int(kept.sum())


def people_found(pred: np.ndarray, scores: np.ndarray, boxes: np.ndarray, threshold: float,
                 ignore: np.ndarray | None = None) -> tuple[int, int, int]:
    """(found, false, missed) at one threshold: people_outcomes counted over the people reported
    (score >= threshold)."""
    return _counts_at(*people_outcomes(pred, scores, boxes, ignore), threshold)


SWEEP_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05, 0.10, ..., 0.95


def people_summary(frames: list[FrameEval], threshold: float) -> dict:
    """Reported people against ground-truth boxes over all frames, from one people_outcomes per frame:
    found / false / missed at `threshold`, and AP, the average precision of finding people over all
    thresholds (every frame's outcomes ranked by score into one precision/recall curve, read as COCO
    does: precision made monotone, then averaged at recall 0, 0.01, ..., 1). AP is a threshold-free
    figure for footage labelled with boxes; it is None when no frame has a box. `by_threshold` gives
    [found, false, missed] at each of SWEEP_THRESHOLDS, for choosing a threshold."""
    outcomes = [people_outcomes(f.pred, f.scores, f.boxes, f.ignore_boxes) for f in frames]
    n_boxes = sum(o[2] for o in outcomes)
    scores = np.concatenate([o[0] for o in outcomes]) if outcomes else np.zeros(0)
    found = np.concatenate([o[1] for o in outcomes]) if outcomes else np.zeros(0, bool)
    summary = {"threshold": threshold, **dict(zip(("found", "false", "missed"),
                                                  _counts_at(scores, found, n_boxes, threshold))), "AP": None,
               "by_threshold": {f"{t:.2f}": list(_counts_at(scores, found, n_boxes, t)) for t in SWEEP_THRESHOLDS}}
    if n_boxes:
        tp = np.cumsum(found[np.argsort(-scores, kind="stable")])
        precision = np.maximum.accumulate((tp / np.arange(1, len(tp) + 1))[::-1])[::-1]
        at = np.searchsorted(tp / n_boxes, np.linspace(0, 1, 101), side="left")
        summary["AP"] = float(np.append(precision, 0.0)[at].mean())  # a recall never reached reads 0
    return summary
