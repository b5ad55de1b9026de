import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO as PyCOCO
from pycocotools.cocoeval import COCOeval

from posevid.metrics import oks, pose_area
from posevid.skeleton import COCO


def _pycocotools_oks(pred, pred_scores, gt, areas, boxes):
    """computeOks for one image, with detections returned in our (unsorted) order."""
    K = gt.shape[1]
    gt_dict = {
        "images": [{"id": 1, "width": 640, "height": 480}],
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO.names), "skeleton": []}],
        "annotations": [
            {
                "id": j + 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                "area": float(areas[j]), "bbox": [float(v) for v in boxes[j]],
                "keypoints": gt[j].reshape(-1).tolist(), "num_keypoints": int((gt[j, :, 2] > 0).sum()),
            }
            for j in range(len(gt))
        ],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = PyCOCO()
        coco_gt.dataset = gt_dict
        coco_gt.createIndex()
        dets = [
            {"image_id": 1, "category_id": 1, "keypoints": pred[i].reshape(-1).tolist(),
             "score": float(pred_scores[i])}
            for i in range(len(pred))
        ]
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.params.imgIds = [1]
        ev._prepare()
    assert ev.params.kpt_oks_sigmas.shape == (K,)
    ious = np.asarray(ev.computeOks(1, 1))
    order = np.argsort(-np.asarray(pred_scores), kind="mergesort")
    out = np.empty_like(ious)
    out[order] = ious  # computeOks sorts detections by score; undo that
    return out


def test_oks_matches_pycocotools_on_random_data():
    rng = np.random.default_rng(0)
    for _ in range(5):
        P, G, K = 7, 5, 17
        gt_xy = rng.uniform(50, 400, size=(G, K, 2))
        vis = rng.integers(0, 3, size=(G, K)).astype(np.float64)
        vis[0] = 0  # one ground truth with no labelled keypoint: pycocotools' box rule
        gt = np.concatenate([gt_xy, vis[..., None]], axis=2)
        gt[vis == 0, :2] = 0  # COCO stores unlabelled keypoints as (0, 0, 0)
        boxes = np.concatenate([rng.uniform(0, 300, (G, 2)), rng.uniform(10, 150, (G, 2))], axis=1)
        areas = rng.uniform(500, 20000, G)
        # predictions near the ground truths, some far away
        src = rng.integers(0, G, P)
        pred_xy = gt_xy[src] + rng.normal(0, 15, size=(P, K, 2))
        pred_xy[-1] += 300
        pred = np.concatenate([pred_xy, rng.uniform(0, 1, (P, K, 1))], axis=2)
        scores = rng.permutation(P) / P + 0.01  # distinct scores so the order is unambiguous

        expected = _pycocotools_oks(pred, scores, gt, areas, boxes)
        got = oks(pred, gt, areas, boxes=boxes)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
        assert got[:, 1:].max() > 0.1  # non-trivial values were compared

        no_box = oks(pred[:, :, :2], gt, areas)
        np.testing.assert_allclose(no_box[:, 1:], expected[:, 1:], rtol=1e-10)
        assert (no_box[:, 0] == 0).all()  # no labelled keypoint and no box: 0


def test_oks_identical_pose_is_one_and_empty_shapes():
    gt = np.zeros((1, 17, 3))
    gt[0, :, :2] = np.arange(34).reshape(17, 2) * 5
    gt[0, :, 2] = 2
    assert oks(gt, gt, np.array([1000.0]))[0, 0] == pytest.approx(1.0)
    assert oks(np.zeros((0, 17, 3)), gt, np.array([1.0])).shape == (0, 1)
    assert oks(gt, np.zeros((0, 17, 3)), np.zeros(0)).shape == (1, 0)
    with pytest.raises(ValueError):
        oks(np.zeros((1, 5, 3)), gt, np.array([1.0]))


def test_pose_area():
    kp = np.zeros((2, 17, 3))
    kp[0, :, 0] = np.linspace(10, 50, 17)  # width 40
    kp[0, :, 1] = np.linspace(0, 100, 17)  # height 100
    kp[0, :, 2] = 0.9
    kp[0, 0] = (1000, 1000, 0.05)  # low-score outlier
    kp[1, :, 2] = 0.0  # nothing confident
    # keypoint 0 (x=10, y=0) is replaced by the outlier: the confident box spans x 12.5..50, y 6.25..100
    np.testing.assert_allclose(pose_area(kp, threshold=0.1), [37.5 * 93.75, 0.0])
    assert pose_area(kp)[0] == pytest.approx((1000 - 12.5) * (1000 - 6.25))
    assert pose_area(np.zeros((0, 17, 3))).shape == (0,)
