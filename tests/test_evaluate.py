"""Evaluation: the metrics on hand-made arrays with known answers, then one end-to-end run of two tiny
random-weight networks over a short clip and a still (structure only: random weights say nothing
about accuracy)."""
from __future__ import annotations

import copy
import json
from dataclasses import replace
from fractions import Fraction

import cv2
import numpy as np
import pytest

from posevid.errors import PosevidError
from posevid.evaluate.accuracy import (AP_KEYS, FrameEval, coco_keypoint_ap, coco_results, match_frame, oks_score,
                                       people_found, people_summary)
from posevid.evaluate.ground_truth import load_ground_truth
from posevid.evaluate.plot import COLORS, mean_curve, plot_nms_scores
from posevid.evaluate.regression import (center_regression_errors, center_regression_sizes, heatmap_window_errors,
                                        mean_pose_errors, regression_summary)
from posevid.evaluate.report import ModelReport, Report
from posevid.evaluate.run import _source_frames, _sources, center_regression, evaluate
from posevid.evaluate.temporal import ID_MIN_OKS, id_switches, jitter_score, track_acceleration_errors
from posevid.metrics import greedy_match
from posevid.predict import PredictConfig
from posevid.skeleton import COCO

K = len(COCO.names)


def person(cx: float, cy: float, scale: float = 40.0) -> np.ndarray:
    """(K, 3) a fixed stick figure around (cx, cy), every keypoint labelled (v = 2)."""
    rng = np.random.default_rng(0)  # the same shape every call
    kp = np.zeros((K, 3))
    kp[:, 0] = cx + rng.uniform(-0.5, 0.5, K) * scale
    kp[:, 1] = cy + rng.uniform(-1.0, 1.0, K) * scale
    kp[:, 2] = 2
    return kp


def frame(pred, gt, areas=None, track_ids=None, frame_id=0, image_id=1, video=1, scores=None):
    gt = np.asarray(gt, np.float64).reshape(-1, K, 3)
    pred = np.asarray(pred, np.float64).reshape(-1, K, 3)
    return FrameEval(
        video=video, frame_id=frame_id, image_id=image_id, gt=gt,
        areas=np.full(len(gt), 3200.0) if areas is None else np.asarray(areas, np.float64),
        track_ids=np.arange(len(gt)) if track_ids is None else np.asarray(track_ids),
        pred=pred, scores=np.ones(len(pred)) if scores is None else np.asarray(scores, np.float64),
        nms_score=0.5,
    )


def gt_dict(frames: list[FrameEval]) -> dict:
    """COCO ground truth for `frames`, as load_ground_truth builds it."""
    anns = []
    for f in frames:
        for kp, area in zip(f.gt, f.areas):
            anns.append({"id": len(anns) + 1, "image_id": f.image_id, "category_id": 1, "iscrowd": 0,
                         "keypoints": kp.reshape(-1).tolist(), "num_keypoints": int((kp[:, 2] > 0).sum()),
                         "bbox": [0, 0, 50, 80], "area": float(area)})
    return {"images": [{"id": f.image_id, "width": 200, "height": 200} for f in frames],
            "annotations": anns, "categories": [{"id": 1, "name": "person", "keypoints": list(COCO.names)}]}


# ---------------------------------------------------------------------------------------------
# matching and OKS


def test_greedy_match_takes_the_best_pair_first():
    sim = np.array([[0.9, 0.8],
                    [0.85, 0.1],
                    [0.0, 0.0]])
    pi, gi = greedy_match(sim)
    # greedy (not optimal): 0↔0 first (0.9), then 1 has only gt 0 left taken → 1↔1 (0.1)
    assert pi.tolist() == [0, 1] and gi.tolist() == [0, 1]
    pi, gi = greedy_match(sim, min_similarity=0.5)
    assert pi.tolist() == [0] and gi.tolist() == [0]
    pi, gi = greedy_match(np.zeros((0, 3)))
    assert len(pi) == len(gi) == 0


def test_perfect_predictions_give_oks_one_and_a_shift_gives_the_formula():
    a, b = person(50, 60), person(150, 60)
    f = frame([b, a], [a, b])  # predictions in the other order
    pi, gi, vals = match_frame(f.pred, f.gt, f.areas)
    assert sorted(zip(pi.tolist(), gi.tolist())) == [(0, 1), (1, 0)]
    assert oks_score([f]) == (pytest.approx(1.0), 2)

    d, area = 3.0, 3200.0
    shifted = a.copy()
    shifted[:, 0] += d
    expected = np.mean(np.exp(-(d**2) / (2 * area * (2 * COCO.sigmas_array()) ** 2)))
    mean, n = oks_score([frame([shifted], [a], [area])])
    assert n == 1 and mean == pytest.approx(expected) and mean < 1
    # mean over the matched pairs of all frames
    mean2, n2 = oks_score([frame([shifted], [a], [area]), frame([a], [a], [area], image_id=2)])
    assert n2 == 2 and mean2 == pytest.approx((expected + 1) / 2)


def test_unlabelled_ground_truth_and_empty_frames_are_ignored():
    a = person(50, 60)
    blank = np.zeros((K, 3))
    f = frame([a], [blank, a])
    pi, gi, vals = match_frame(f.pred, f.gt, f.areas)
    assert gi.tolist() == [1] and vals[0] == pytest.approx(1.0)
    assert oks_score([frame(np.zeros((0, K, 3)), [a])]) == (None, 0)
    assert oks_score([]) == (None, 0)


# ---------------------------------------------------------------------------------------------
# jitter


def test_constant_velocity_has_no_acceleration_error():
    base = person(50, 60)
    gt = np.stack([base + [2.0 * t, -1.0 * t, 0] for t in range(6)])  # (T, K, 3)
    pred = gt.copy()
    pred[:, :, :2] += [5.0, 3.0]  # a constant offset and the same velocity: still no acceleration error
    errs = track_acceleration_errors(np.arange(6), pred, gt)
    assert errs.shape == (4,) and np.allclose(errs, 0)


def test_zig_zag_gives_four_times_its_amplitude():
    # prediction = ground truth + e·(−1)^t in x: a_pred − a_gt = e·(−1)^(t+1)·(1 + 2 + 1), norm 4e
    e = 1.5
    base = person(50, 60)
    gt = np.stack([base + [2.0 * t, 0, 0] for t in range(5)])
    pred = gt.copy()
    pred[:, :, 0] += e * (-1.0) ** np.arange(5)[:, None]
    errs = track_acceleration_errors(np.arange(5), pred, gt)
    assert np.allclose(errs, 4 * e) and len(errs) == 3


def test_jitter_needs_three_consecutive_frames_and_labelled_keypoints():
    base = person(50, 60)
    gt = np.stack([base] * 5)
    pred = gt.copy()
    pred[:, :, 0] += [[0], [1], [0], [1], [0]]
    # frames 0, 1, 2 then 4, 5: only frame 1 has both neighbours; x offsets 0, 1, 0 → |a| = 2
    errs = track_acceleration_errors(np.array([0, 1, 2, 4, 5]), pred, gt)
    assert np.allclose(errs, [2.0])
    # a keypoint unlabelled in one of the three frames does not count; none labelled: no term
    gt2 = gt.copy()
    gt2[2, 3:, 2] = 0
    pred2 = pred.copy()
    pred2[:, 3:, 0] += 100 * np.arange(5)[:, None] ** 2  # large acceleration on those keypoints only
    assert np.allclose(track_acceleration_errors(np.arange(3), pred2[:3], gt2[:3]), 2.0)
    gt2[2, :, 2] = 0
    assert len(track_acceleration_errors(np.arange(3), pred2[:3], gt2[:3])) == 0


def test_jitter_score_follows_tracks_through_the_matching():
    # two people, tracks 7 and 9; the predictions come in swapped order every other frame
    e = 1.0
    frames = []
    for t in range(4):
        a = person(50 + 3 * t, 60)
        b = person(150, 60 + 2 * t)
        pa = a.copy()
        pa[:, 0] += e * (-1) ** t  # zig-zag on track 7
        preds = [pa, b] if t % 2 else [b, pa]
        frames.append(frame(preds, [a, b], track_ids=[7, 9], frame_id=t, image_id=t + 1))
    mean, n = jitter_score(frames)
    assert n == 4  # 2 tracks × 2 frames with both neighbours
    assert mean == pytest.approx((4 * e + 0.0) / 2)
    # the same track id in another video is another track
    other = [frame(f.pred, f.gt, track_ids=[7, 9], frame_id=f.frame_id, image_id=10 + i, video=2)
             for i, f in enumerate(frames[:2])]
    assert jitter_score(frames[:2] + other) == (None, 0)


def test_id_switches_count_every_change_of_tracker_id_along_a_ground_truth_track():
    def clip(ids_a, ids_b):  # two people; the tracker's ids of their (exact) predictions per frame
        out = []
        for t, (ia, ib) in enumerate(zip(ids_a, ids_b)):
            a, b = person(50 + 3 * t, 60), person(150, 60)
            f = frame([b, a], [a, b], track_ids=[7, 9], frame_id=t, image_id=t + 1)
            f.pred_track_ids = np.array([ib, ia])
            out.append(f)
        return out

    assert id_switches(clip([1, 1, 1, 1], [2, 2, 2, 2])) == (0, 8)
    # person a's track breaks once (1 → 3); then a and b swap ids: one switch on each
    assert id_switches(clip([1, 3, 3, 2], [2, 2, 2, 3])) == (3, 8)
    # a prediction the tracker left out (below the reporting threshold, id −1) is not matched: its
    # frame is skipped, so 1, (gap), 1 is no switch
    assert id_switches(clip([1, -1, 1, 1], [2, 2, 2, 2])) == (0, 7)
    # a stray pose that OKS matching pairs with person a (OKS > 0 but < ID_MIN_OKS) is not a switch
    frames = clip([1, 5, 1, 1], [2, 2, 2, 2])
    frames[1].pred[1, :, 0] += 12
    assert 0 < match_frame(frames[1].pred, frames[1].gt, frames[1].areas)[2].min() < ID_MIN_OKS
    assert id_switches(frames) == (0, 7)
    # frames without tracker ids: nothing to count
    frames = clip([1, 1], [2, 2])
    for f in frames:
        f.pred_track_ids = np.zeros(0, np.int64)
    assert id_switches(frames) == (None, 0)


# ---------------------------------------------------------------------------------------------
# COCO AP


def test_coco_ap_is_one_for_perfect_predictions_and_zero_without_any():
    frames = [frame([person(50, 60), person(150, 60)], [person(50, 60), person(150, 60)], image_id=i + 1)
              for i in range(3)]
    gt = gt_dict(frames)
    results = coco_results(frames)
    assert len(results) == 6 and len(results[0]["keypoints"]) == 51 and results[0]["category_id"] == 1
    ap = coco_keypoint_ap(gt, results)
    assert ap == {"AP": pytest.approx(1.0), "AP50": pytest.approx(1.0), "AP75": pytest.approx(1.0),
                  "APM": pytest.approx(1.0), "APL": None}  # every person is medium (area 3200)
    assert results[0].keys() == {"image_id", "category_id", "keypoints", "score"}  # input left as it was
    assert coco_keypoint_ap(gt, []) == dict.fromkeys(AP_KEYS, 0.0)
    # far-off predictions: AP 0; no labelled ground truth in the evaluated images: undefined
    far = [frame([person(900, 900)], f.gt, image_id=f.image_id) for f in frames]
    assert coco_keypoint_ap(gt, coco_results(far))["AP"] == pytest.approx(0.0)
    empty_gt = {**gt, "annotations": []}
    assert coco_keypoint_ap(empty_gt, results) == dict.fromkeys(AP_KEYS)


def test_coco_ap_of_one_shifted_prediction_counts_the_thresholds_it_passes():
    a = person(80, 80)
    area = 3200.0
    shifted = a.copy()
    shifted[:, :2] += 4.0  # every keypoint 4√2 px off: OKS ≈ 0.647
    f = frame([shifted], [a], [area])
    oks_value = oks_score([f])[0]
    assert oks_value == pytest.approx(np.mean(np.exp(-32 / (2 * area * (2 * COCO.sigmas_array()) ** 2))))
    # one detection, one person: precision 1 at the OKS thresholds 0.50, 0.55, 0.60 it passes, else 0
    ap = coco_keypoint_ap(gt_dict([f]), coco_results([f]))
    assert ap == {"AP": pytest.approx(0.3), "AP50": pytest.approx(1.0), "AP75": pytest.approx(0.0),
                  "APM": pytest.approx(0.3), "APL": None}


def test_coco_apm_and_apl_count_only_their_sizes():
    # a small person (area 600, no COCO size class of its own) missed, a large one found exactly
    small, large = person(40, 60, 10.0), person(140, 100, 60.0)
    f = frame([large], [small, large], [600.0, 12000.0])
    ap = coco_keypoint_ap(gt_dict([f]), coco_results([f]))
    assert ap["AP"] == pytest.approx(51 / 101)  # recall 0.5 at precision 1: 51 of COCO's 101 recall points
    assert ap["APL"] == pytest.approx(1.0) and ap["APM"] is None


# ---------------------------------------------------------------------------------------------
# people found against boxes


def test_people_found_counts_found_false_and_missed_people():
    boxes = np.array([[0, 0, 100, 200], [150, 0, 100, 200]])  # two people, xywh
    pred = np.stack([person(50, 100, 20), person(60, 110, 20), person(400, 100, 20), person(200, 90, 20)])
    scores = np.array([0.9, 0.8, 0.7, 0.05])
    # the 0.9 person takes box 0; the 0.8 one lies in box 0 too (taken): false; the 0.7 one is on no box:
    # false; the 0.05 one (in box 1) is below the threshold, so box 1 is missed
    assert people_found(pred, scores, boxes, threshold=0.1) == (1, 2, 1)
    assert people_found(pred, scores, boxes, threshold=0.0) == (2, 2, 0)
    # a crowd region makes the person on no box neither found nor false
    assert people_found(pred, scores, boxes, 0.1, ignore=np.array([[350, 0, 100, 200]])) == (1, 1, 1)
    # the center of the keypoints' extent decides, not their mean; nothing reported, nothing labelled
    lopsided = person(50, 100, 20)
    lopsided[:, 0] = 95
    lopsided[0, 0] = 205  # extent 95..205: center 150, inside box 1 only
    assert people_found(lopsided[None], np.ones(1), boxes, 0.1) == (1, 0, 1)
    assert people_found(np.zeros((0, K, 3)), np.zeros(0), boxes, 0.1) == (0, 0, 2)
    assert people_found(pred, scores, np.zeros((0, 4)), 0.1) == (0, 3, 0)
    # two boxes contain the center: the nearer box center is taken, so a second person can take the other
    nested = np.array([[0, 0, 300, 300], [40, 80, 30, 40]])
    assert people_found(np.stack([person(55, 100, 10), person(150, 150, 10)]), np.ones(2), nested, 0.1) == (2, 0, 0)

    f1 = frame([pred[0]], [person(50, 100)], scores=[0.9])
    f1.boxes = boxes
    f2 = frame([], [], scores=[])
    f2.boxes = boxes[:1]
    summary = people_summary([f1, f2], 0.1)
    assert (summary["found"], summary["false"], summary["missed"]) == (1, 0, 2)
    # the same counts at every threshold of the sweep: the 0.9 person is reported up to 0.90, not at 0.95
    assert summary["by_threshold"]["0.90"] == [1, 0, 2] and summary["by_threshold"]["0.95"] == [0, 0, 3]
    assert list(summary["by_threshold"]) == [f"{0.05 * i:.2f}" for i in range(1, 20)]


def test_people_ap_ranks_every_frames_people_into_one_curve():
    def people_ap(frames):  # does not depend on the threshold
        return people_summary(frames, 0.5)["AP"]

    boxes = np.array([[0, 0, 100, 200], [150, 0, 100, 200]])
    pred = np.stack([person(50, 100, 20), person(60, 110, 20), person(400, 100, 20), person(200, 90, 20)])
    f1 = frame(list(pred), [person(50, 100)] * 2, scores=[0.9, 0.8, 0.7, 0.05])
    f1.boxes = boxes
    # ranked found, false, false, found: precision 1 up to recall 0.5, then 2/4
    assert people_ap([f1]) == pytest.approx((51 * 1 + 50 * 0.5) / 101)
    # a phantom above them all in a frame without boxes: precision 1/2 up to recall 0.5, then 2/5
    f2 = frame([person(400, 100, 20)], [], scores=[0.95])
    f2.boxes = np.zeros((0, 4))
    assert people_ap([f1, f2]) == pytest.approx((51 * 0.5 + 50 * 0.4) / 101)
    # inside a crowd region the phantom is left out; an unfound box caps recall (nothing found: 0)
    f2.ignore_boxes = np.array([[350, 0, 100, 200]])
    assert people_ap([f1, f2]) == pytest.approx(people_ap([f1]))
    f1.pred, f1.scores = pred[:3], np.array([0.9, 0.8, 0.7])
    assert people_ap([f1]) == pytest.approx(51 / 101)
    f1.pred, f1.scores = pred[2:3], np.array([0.7])
    assert people_ap([f1]) == 0.0
    f1.pred, f1.scores = pred[:0], np.zeros(0)  # boxes but nobody reported
    assert people_ap([f1]) == 0.0
    assert people_ap([f2]) is None


# ---------------------------------------------------------------------------------------------
# ground truth, report and plot


def test_ground_truth_fills_missing_fields_and_reorders_keypoints(tmp_path):
    names = list(COCO.names)[::-1]  # the file stores keypoints in reverse order
    kp = person(50, 60)
    kp[0, 2] = 0  # nose unlabelled
    raw = kp[::-1].reshape(-1).tolist()
    data = {
        "categories": [{"id": 3, "name": "person", "keypoints": names}],
        "images": [{"id": 5, "file_name": "a.png", "video_id": 1, "frame_id": 0},
                   {"id": 6, "file_name": "b.png", "video_id": 1, "frame_id": 1, "is_labeled": False}],
        "annotations": [{"image_id": 5, "category_id": 3, "keypoints": raw, "track_id": 4},
                        {"image_id": 5, "category_id": 3, "iscrowd": 1, "bbox": [0, 0, 10, 10], "area": 50}],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    gt = load_ground_truth(path)
    assert gt.labelled == {5}
    a0, crowd = gt.coco["annotations"]
    assert a0["id"] == 1 and a0["category_id"] == 1 and a0["iscrowd"] == 0 and a0["num_keypoints"] == 16
    vis = kp[1:, :2]
    w, h = np.ptp(vis[:, 0]), np.ptp(vis[:, 1])
    assert a0["bbox"] == pytest.approx([vis[:, 0].min(), vis[:, 1].min(), w, h])
    assert a0["area"] == pytest.approx(w * h)
    assert np.allclose(np.asarray(a0["keypoints"]).reshape(K, 3), kp * (kp[:, 2:] > 0))
    assert crowd["iscrowd"] == 1 and crowd["area"] == 50
    g, areas, tids = gt.people[5]
    assert g.shape == (1, K, 3) and tids.tolist() == [4] and areas[0] == pytest.approx(w * h)
    people_boxes, crowd_boxes = gt.boxes[5]
    assert np.allclose(people_boxes, [a0["bbox"]]) and np.allclose(crowd_boxes, [[0, 0, 10, 10]])

    # a person labelled with a box alone is not scored by OKS or AP, but people_found sees the box
    boxed = {**data, "annotations": [{"image_id": 5, "bbox": [1, 2, 30, 40]}]}
    (tmp_path / "boxed.json").write_text(json.dumps(boxed))
    gt = load_ground_truth(tmp_path / "boxed.json")
    assert 5 not in gt.people and gt.coco["annotations"][0]["num_keypoints"] == 0
    assert gt.boxes[5][0].tolist() == [[1, 2, 30, 40]] and gt.boxes[5][1].shape == (0, 4)

    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "no_image_id.json").write_text(json.dumps({**data, "annotations": [{"keypoints": raw}]}))
    short = [{"image_id": 5, "keypoints": [1, 2]}]
    (tmp_path / "short.json").write_text(json.dumps({**data, "annotations": short}))
    for name, message in (("missing.json", "not found"), ("bad.json", "not valid JSON"),
                          ("folder.json", "directory"), ("no_image_id.json", "malformed"),
                          ("short.json", "malformed")):
        with pytest.raises(PosevidError, match=message) as info:
            load_ground_truth(tmp_path / name)
        assert name in str(info.value) and "\n" not in str(info.value)


def _report(curves_t, curves_p) -> Report:
    def m(name, curves, ap):
        return ModelReport(name, 3, 0.4, 0.8, 5, ap, 0.9, None, 0.7, None, 1.25, 2, curves,
                             {"threshold": 0.1, "found": 3, "false": 1, "missed": 0, "AP": 0.6} if ap else {},
                             4 if ap else None, 12 if ap else 0)

    return Report("ann.json", ["v.mp4"], 0.0, [m("temporal", curves_t, 0.5), m("per-frame", curves_p, None)])


def test_report_table_dict_and_plot(tmp_path):
    report = _report([[0.2, 0.5, 0.6, 0.62], [0.3, 0.55]], [[0.2, 0.3, 0.25, 0.3], [0.3, 0.28]])
    d = json.loads(json.dumps(report.to_dict()))
    assert set(d["models"]) == {"temporal", "per-frame"}
    assert d["models"]["temporal"]["nms_per_frame"][1] == [0.3, 0.55]
    table = report.table()
    lines = table.splitlines()
    assert "local NMS score" in lines[0] and "jitter px/frame²" in lines[0] and "APM  APL" in lines[0]
    assert d["models"]["temporal"]["APM"] == 0.7 and "0.700" in lines[2]
    assert lines[2].startswith("temporal") and "0.500" in lines[2] and "1.25" in lines[2]
    assert lines[3].startswith("per-frame") and "n/a" in lines[3]
    assert "people P/R @0.1" in lines[0] and "people AP" in lines[0]
    assert "ID switches" in lines[0] and d["models"]["temporal"]["id_switches"] == 4
    assert lines[2].endswith("0.75/1.00      0.600            4") and lines[3].endswith("n/a/n/a        n/a          n/a")
    assert d["models"]["temporal"]["people_precision"] == 0.75 and d["models"]["per-frame"]["people_recall"] is None
    assert np.allclose(mean_curve([[0.2, 0.5, 0.6, 0.62], [0.3, 0.55]]), [0.25, 0.525, 0.6, 0.62])

    png = tmp_path / "nms.png"
    assert plot_nms_scores(report, png) == png
    img = cv2.imread(str(png))
    assert img.shape == (400, 900, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["nms.png"]  # no temporary file left
    # both line colours are drawn
    for color in COLORS.values():
        assert (np.abs(img.astype(int) - color).sum(axis=2) < 30).sum() > 50
    # one frame per video (stills) and an empty report still plot
    plot_nms_scores(_report([[0.3]], [[0.2]]), png)
    plot_nms_scores(_report([], []), png)
    with pytest.raises(PosevidError, match="cannot write"):
        plot_nms_scores(report, tmp_path / "no" / "such" / "nms.png")


# ---------------------------------------------------------------------------------------------
# end to end


@pytest.fixture(scope="module")
def tiny_models():
    import torch

    from posevid.config import model_config
    from posevid.model import DEKR

    torch.manual_seed(0)
    temporal = DEKR(model_config("lite"), temporal=True)
    per_frame = DEKR(model_config("lite"), temporal=False)
    per_frame.load_state_dict({k: v for k, v in temporal.state_dict().items() if not k.startswith("temporal.")})
    for m in (temporal, per_frame):
        with torch.no_grad():
            m.head_heatmap[1].bias.fill_(0.5)  # flat-ish heatmaps: random weights still report people
    return temporal, per_frame


def _write_dataset(folder, frames=6, width=128, height=96):
    from posevid.video import VideoWriter

    (folder / "videos").mkdir()
    rng = np.random.default_rng(1)
    with VideoWriter(folder / "videos" / "clip.mp4", width, height, Fraction(25)) as w:
        for t in range(frames):
            img = np.full((height, width, 3), 90, np.uint8)
            cv2.rectangle(img, (20 + 4 * t, 20), (50 + 4 * t, 80), (200, 180, 160), -1)
            w.write(img)
    cv2.imwrite(str(folder / "still.png"), rng.integers(0, 255, (80, 100, 3), dtype=np.uint8))
    images, anns = [], []
    for t in range(frames):
        images.append({"id": t + 1, "video_id": 1, "frame_id": t, "file_name": f"videos/clip.mp4#{t}",
                       "width": width, "height": height})
        kp = person(35 + 4 * t, 50, scale=25)
        anns.append({"id": len(anns) + 1, "image_id": t + 1, "category_id": 1, "track_id": 0,
                     "keypoints": kp.reshape(-1).tolist(), "num_keypoints": K, "bbox": [20 + 4 * t, 20, 30, 60],
                     "area": 1500.0, "iscrowd": 0})
    images[3]["is_labeled"] = False  # run for context, not scored
    images.append({"id": 100, "file_name": "still.png", "width": 100, "height": 80})
    anns.append({"id": len(anns) + 1, "image_id": 100, "category_id": 1,
                 "keypoints": person(50, 40, scale=20).reshape(-1).tolist()})
    data = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": list(COCO.names)}]}
    path = folder / "annotations.json"
    path.write_text(json.dumps(data))
    return path


def test_evaluate_end_to_end(tmp_path, tiny_models):
    path = _write_dataset(tmp_path)
    calls = []
    report = evaluate(*tiny_models, path, threshold=0.0, progress=lambda d, n: calls.append((d, n)), batch=4)
    assert calls == [(1, 2), (2, 2)]
    assert report.videos == [str(tmp_path / "videos" / "clip.mp4"), str(tmp_path / "still.png")]
    d = json.loads(json.dumps(report.to_dict()))
    assert list(d["models"]) == ["temporal", "per-frame"]
    gt = load_ground_truth(path)
    n_people = sum(len(gt.boxes[i][0]) for i in gt.labelled if i in gt.boxes)
    assert n_people > 0
    for m in d["models"].values():
        assert m["frames"] == 6  # 5 labelled video frames + the still
        assert [len(c) for c in m["nms_per_frame"]] == [6, 1]  # every frame runs, labelled or not
        keys = {"local_nms_score", "oks_score", "matched", *AP_KEYS, "jitter", "jitter_count"}
        assert keys <= set(m)
        assert m["local_nms_score"] is not None and 0 <= m["AP"] <= 1
        assert m["jitter_count"] >= 0 and m["matched"] >= 0
        # every labelled person is found or missed; people are counted as infer reports them by default
        assert m["people"]["threshold"] == tiny_models[1].cfg.threshold == 0.2
        assert m["people"]["found"] + m["people"]["missed"] == n_people
        assert 0 <= m["people"]["AP"] <= 1  # over every reported person, whatever the threshold
        # the tracker follows the reported people; switches are counted where a track is matched
        assert (m["id_switches"] is None) == (m["id_matched"] == 0) and m["id_matched"] <= 5
    assert "temporal" in report.table() and "per-frame" in report.table()
    png = plot_nms_scores(report, tmp_path / "nms.png")
    assert cv2.imread(str(png)).shape == (400, 900, 3)
    # --no-temporal: the per-frame network alone scores exactly as it did beside the temporal one
    alone = evaluate(None, tiny_models[1], path, threshold=0.0, batch=4).to_dict()
    assert list(alone["models"]) == ["per-frame"]
    assert alone["models"]["per-frame"] == d["models"]["per-frame"]


def test_evaluate_counts_people_at_the_weights_threshold(tmp_path, tiny_models):
    # People found / missed are counted as `posevid infer` reports them: at the weights' own threshold and
    # pose score unless the decoding settings name others.
    path = _write_dataset(tmp_path)
    model = copy.deepcopy(tiny_models[1])
    model.cfg = replace(model.cfg, threshold=0.37, pose_score="center")
    d = evaluate(None, model, path, threshold=0.0, batch=4).to_dict()
    assert d["models"]["per-frame"]["people"]["threshold"] == 0.37 and d["pose_score"] == "center"
    d = evaluate(None, model, path, threshold=0.0, batch=4,
                 predict=PredictConfig(threshold=0.5, pose_score="center-keypoints")).to_dict()
    assert d["models"]["per-frame"]["people"]["threshold"] == 0.5 and d["pose_score"] == "center-keypoints"


def test_evaluate_names_a_missing_video(tmp_path, tiny_models):
    path = _write_dataset(tmp_path)
    data = json.loads(path.read_text())
    data["images"][5]["file_name"] = "videos/clip.mp4#9"
    past_end = tmp_path / "past_end.json"
    past_end.write_text(json.dumps(data))
    with pytest.raises(PosevidError, match="has 6 frames.*annotates frame 9"):
        evaluate(*tiny_models, past_end)
    (tmp_path / "videos" / "clip.mp4").unlink()
    with pytest.raises(PosevidError, match="video not found") as info:
        evaluate(*tiny_models, path)
    assert "clip.mp4" in str(info.value) and "\n" not in str(info.value)
    # a videos_root elsewhere is where the names are looked up
    with pytest.raises(PosevidError, match="video not found") as info:
        evaluate(*tiny_models, path, videos_root=tmp_path / "elsewhere")
    assert "elsewhere" in str(info.value)


def test_frames_of_a_video_come_from_its_mp4_or_its_image_files(tmp_path):
    from posevid.data.readers import FrameRecord, VideoRecord

    def rec(image_id, name, t):
        return FrameRecord(image_id, name, t, 10, 10, np.zeros((0, K, 3)), np.zeros(0, np.int64),
                           np.zeros((0, 4)), np.zeros(0))

    mp4 = VideoRecord(1, [rec(11, "v/a.mp4#0", 0), rec(12, "v/a.mp4#2", 2)])
    (src,) = _sources(mp4, tmp_path)
    assert src.video_path == tmp_path / "v" / "a.mp4" and src.wanted == {0: 11, 2: 12}
    seq = VideoRecord(2, [rec(21, "seq/000.jpg", 0), rec(22, "seq/001.jpg", 1)])
    (src,) = _sources(seq, tmp_path)
    assert src.video_path is None
    assert src.images == [(tmp_path / "seq/000.jpg", 21), (tmp_path / "seq/001.jpg", 22)]
    with pytest.raises(PosevidError, match="image not found: .*000.jpg"):
        next(_source_frames(src, tmp_path / "ann.json"))


# ---------------------------------------------------------------------------------------------
# regression at the true centers


def test_offsets_encoded_from_the_truth_have_no_center_error_and_a_shift_is_measured():
    from posevid.data.targets import encode_dekr

    gt = np.stack([person(30, 40, scale=20), person(90, 60, scale=30)])
    offsets = encode_dekr(gt, (32, 40), stride=4, min_area=0).offsets  # small people: offsets all the same
    err = center_regression_errors(offsets, gt, stride=4)
    assert err.shape == (2, K) and np.nanmax(err) < 1e-6
    shifted = offsets.copy()
    shifted[0::2] -= 2.0  # every keypoint 2 map pixels (8 input pixels) to the right
    err = center_regression_errors(shifted, gt, stride=4)
    vis = gt[..., 2] > 0
    p = [gt[n, vis[n], :2] for n in range(2)]
    sizes = np.array([np.hypot(*(q.max(0) - q.min(0))) for q in p])
    np.testing.assert_allclose(np.nanmean(err, 1), 8.0 / sizes, rtol=1e-6)
    # sides exchanged: each keypoint lands on its mirror partner; the nose has none and stays exact
    swapped = center_regression_errors(offsets, gt, stride=4, swap=True)
    partner = gt[:, list(COCO.flip_index), :2]
    expected = np.linalg.norm(partner - gt[..., :2], axis=2) / sizes[:, None]
    np.testing.assert_allclose(swapped, expected, atol=1e-6)
    assert swapped[:, 0].max() < 1e-6 and swapped[:, 1:].min() > 0


def test_poses_regressed_shrunk_show_in_the_size_ratio():
    from posevid.data.targets import encode_dekr, person_centers

    gt = np.stack([person(30, 40, scale=20), person(90, 60, scale=30)])
    exact = center_regression_sizes(encode_dekr(gt, (32, 40), stride=4, min_area=0).offsets, gt, stride=4)
    sizes = [np.hypot(*np.ptp(gt[n, gt[n, :, 2] > 0, :2], 0)) for n in range(2)]
    np.testing.assert_allclose(exact, np.stack([sizes, [1.0, 1.0]], 1), rtol=1e-6)
    half = gt.copy()  # every pose at half its size about its center (the mean of its labelled keypoints)
    centers = person_centers(gt)
    half[..., :2] = centers[:, None] + 0.5 * (gt[..., :2] - centers[:, None])
    shrunk = center_regression_sizes(encode_dekr(half, (32, 40), stride=4, min_area=0).offsets, gt, stride=4)
    np.testing.assert_allclose(shrunk[:, 1], 0.5, rtol=1e-6)
    no_errors = [np.zeros((2, K))]
    summary = regression_summary(no_errors, no_errors, [gt], 160, sizes=[np.array([[100.0, 0.9], [250.0, 0.4]])])
    assert summary["size_ratio"] == {"all": 0.65, "small": 0.9, "large": 0.4, "large_people": 1, "large_from_px": 200.0}


def test_heatmaps_peaked_at_the_truth_have_no_window_error_and_a_shift_is_measured():
    from posevid.data.targets import encode_dekr

    gt = np.stack([person(30, 40, scale=20), person(90, 60, scale=30)])
    gt[..., :2] = np.round(gt[..., :2] / 4) * 4  # on map pixel centres, so the peaks are exact
    heatmaps = encode_dekr(gt, (32, 40), stride=4).heatmaps
    err = heatmap_window_errors(heatmaps, gt, stride=4)
    assert err.shape == (2, K) and np.nanmax(err) < 1e-6
    shifted = np.zeros_like(heatmaps)
    shifted[:, :, 1:] = heatmaps[:, :, :-1]  # every peak 1 map pixel (4 input pixels) to the right
    err = heatmap_window_errors(shifted, gt, stride=4)
    p = [gt[n, gt[n, :, 2] > 0, :2] for n in range(2)]
    sizes = np.array([np.hypot(*(q.max(0) - q.min(0))) for q in p])
    np.testing.assert_allclose(np.nanmax(err, 1), 4.0 / sizes, rtol=1e-6)
    # flat maps: the first pixel of each window wins, about the window's half-diagonal away
    flat = heatmap_window_errors(np.zeros_like(heatmaps), gt, stride=4)
    assert np.nanmin(flat) > 0.2


def test_mean_pose_oracle_is_exact_for_one_pose_at_any_place_and_size():
    same = [person(30, 40, scale=20)[None], person(80, 20, scale=35)[None]]
    assert np.nanmax(mean_pose_errors(same)) < 1e-9
    other = person(50, 50, scale=20)[None].copy()
    other[0, 9, :2] += (10.0, -6.0)  # one wrist raised: the mean pose no longer fits either
    err = mean_pose_errors([same[0], other])
    assert err[:, 9].min() > 0.05 and np.nanmax(np.delete(err, 9, axis=1)) < 0.05


def test_center_regression_end_to_end(tmp_path, tiny_models):
    path = _write_dataset(tmp_path)
    r = center_regression(tiny_models[1], path, input_size=96)
    assert r["people"] == 6 and r["input_size"] == 96
    assert r["median_error"]["network"] > 0 and r["median_error"]["mean_pose_oracle"] >= 0
    assert 0 <= r["left_right_swapped_closer"] <= 1
    assert 0 <= r["heatmap_median_error"]["network"] <= 0.5 and r["heatmap_median_error"]["chance"] > 0.2
    assert set(r["per_keypoint"]) == set(COCO.names) and "heatmap" in r["per_keypoint"]["nose"]
    assert r["size_ratio"]["all"] > 0 and r["size_ratio"]["large_people"] == 0 and r["size_ratio"]["large"] is None


def test_the_hand_boxed_example_clip_loads_as_ground_truth():
    """examples/pedestrians.people.json: boxes only, inside the 768×576 frames it names, scored by people_found."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "pedestrians.people.json"
    gt = load_ground_truth(path)
    assert len(gt.labelled) == 9 and not gt.people  # no keypoints: OKS and AP have nothing to score
    boxes = np.concatenate([gt.boxes[i][0] for i in sorted(gt.labelled)])
    assert boxes.shape == (54, 4)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= 768).all() and (boxes[:, 1] + boxes[:, 3] <= 576).all()
    assert [r.frame_id for r in gt.videos[0].frames] == [0, 15, 30, 45, 60, 75, 90, 105, 119]
