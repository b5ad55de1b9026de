"""How well the per-frame network does by person size: matched OKS, predicted/true pose height, and
how often left and right are swapped.

    python weights/training/small-v15/size_check.py --split front [--weights W] [--input-size S] [--videos N]

People are binned by COCO's area classes (small < 32², medium, large > 96² px²). For each matched
(prediction, ground truth) pair: its OKS, and the height of the predicted keypoints' box over the true
one (labelled keypoints only); a ratio well under 1 means the regressed poses are shrunk. A pose counts
as left/right swapped when its shoulders lie the other way round along x than the true ones (people
whose true shoulders are both labelled and over 4 px apart along x).
"""
import argparse
from pathlib import Path

import numpy as np
import torch

from posevid.data.splits import ensure_split
from posevid.evaluate import _source_frames, _sources, load_ground_truth, match_frame
from posevid.model import load_model
from posevid.predict import PredictConfig, Predictor

BINS = (("small", 0, 32 ** 2), ("medium", 32 ** 2, 96 ** 2), ("large", 96 ** 2, np.inf))


def shoulders_swapped(pred: np.ndarray, true: np.ndarray) -> float:
    """1.0 if the predicted shoulders are the other way round along x, 0.0 if not, NaN if undecidable."""
    dx = true[5, 0] - true[6, 0]
    if true[5, 2] <= 0 or true[6, 2] <= 0 or abs(dx) <= 4:
        return np.nan
    return float(np.sign(pred[5, 0] - pred[6, 0]) != np.sign(dx))


def height(kp: np.ndarray, labelled: np.ndarray) -> float:
    return float(np.ptp(kp[labelled, 1])) if labelled.sum() > 1 else np.nan


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=("front", "side"), required=True)
    ap.add_argument("--weights", default="weights/posevid_small.pt")
    ap.add_argument("--input-size", type=int, default=None)
    ap.add_argument("--videos", type=int, default=40)
    a = ap.parse_args()
    torch.set_num_threads(2)
    ann = Path(ensure_split(a.split)) / "annotations.json"
    gt = load_ground_truth(ann)
    predictor = Predictor(load_model(weights=a.weights, temporal=False),
                          PredictConfig(threshold=0.0, input_size=a.input_size))
    rows = []  # (area, oks, height ratio, shoulders swapped)
    for video in gt.videos[:a.videos]:
        for source in _sources(video, ann.parent):
            predictor.reset()
            for image, image_id in _source_frames(source, ann):
                poses = predictor(image).poses.keypoints
                if image_id is None or image_id not in gt.people:
                    continue
                g, areas, _ = gt.people[image_id]
                for p, j, oks in zip(*match_frame(poses, g, areas)):
                    labelled = g[j, :, 2] > 0
                    rows.append((areas[j], oks, height(poses[p], labelled) / max(height(g[j], labelled), 1.0),
                                 shoulders_swapped(poses[p], g[j])))
    r = np.array(rows)
    print(f"{a.split}, input {predictor.input_size}, {a.videos} videos: {len(r)} matched people")
    for name, lo, hi in BINS:
        m = (r[:, 0] >= lo) & (r[:, 0] < hi)
        if m.any():
            q = np.nanpercentile(r[m, 2], [10, 50, 90])
            print(f"  {name:6s} {m.sum():5d} people  mean OKS {r[m, 1].mean():.3f}  "
                  f"predicted/true height: median {q[1]:.2f} (10-90 %: {q[0]:.2f}-{q[2]:.2f})  "
                  f"left/right swapped {np.nanmean(r[m, 3]):.2f}")


if __name__ == "__main__":
    main()
