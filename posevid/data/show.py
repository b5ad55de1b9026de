"""Contact sheet: ground truth drawn over frames of a dataset, for people to look at the data."""
from __future__ import annotations

import os

import cv2
import numpy as np

from posevid.data.readers import load_frame, read_annotations
from posevid.errors import PosevidError
from posevid.skeleton import COCO

_LEFT, _RIGHT, _MID = (255, 160, 0), (0, 140, 255), (60, 220, 60)  # BGR: left blue, right orange


def _side(j: int) -> tuple[int, int, int]:
    name = COCO.names[j]
    return _LEFT if name.startswith("left") else _RIGHT if name.startswith("right") else _MID


def draw_truth(img: np.ndarray, keypoints: np.ndarray, boxes: np.ndarray, track_ids: np.ndarray) -> np.ndarray:
    """Limbs coloured by side (left blue, right orange); filled dots = visible, rings = occluded."""
    out = img.copy()
    for kp, box, tid in zip(keypoints, boxes, track_ids):
        x, y, w, h = box
        if w > 0 and h > 0:
            cv2.rectangle(out, (int(x), int(y)), (int(x + w), int(y + h)), (200, 200, 200), 1)
            cv2.putText(out, str(int(tid)), (int(x), max(int(y) - 2, 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                        (255, 255, 255), 1, cv2.LINE_AA)
        for a, b in COCO.edges:
            if kp[a, 2] > 0 and kp[b, 2] > 0:
                col = _side(a) if _side(a) == _side(b) else _MID
                cv2.line(out, (int(round(kp[a, 0])), int(round(kp[a, 1]))),
                         (int(round(kp[b, 0])), int(round(kp[b, 1]))), col, 1, cv2.LINE_AA)
        for j in range(17):
            if kp[j, 2] > 0:
                c = (int(round(kp[j, 0])), int(round(kp[j, 1])))
                cv2.circle(out, c, 2, _side(j), -1 if kp[j, 2] == 2 else 1, cv2.LINE_AA)
    return out


def contact_sheet(data_dir: str, out_path: str, clips: int = 6, frames: int = 4, tile: int = 256) -> str:
    """Draw `frames` evenly spaced frames of the first `clips` videos of data_dir/annotations.json."""
    ann = os.path.join(data_dir, "annotations.json")
    videos = read_annotations(ann)
    if not videos:
        raise PosevidError(f"{ann} has no images")
    rows = []
    for v in videos[:clips]:
        idx = np.linspace(0, len(v.frames) - 1, frames).round().astype(int)
        tiles = []
        for i in idx:
            r = v.frames[i]
            img = draw_truth(load_frame(data_dir, r), r.keypoints, r.boxes, r.track_ids)
            s = tile / max(img.shape[:2])
            img = cv2.resize(img, (int(img.shape[1] * s), int(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
            canvas = np.zeros((tile, tile, 3), np.uint8)
            canvas[:img.shape[0], :img.shape[1]] = img
            cv2.putText(canvas, f"v{v.video_id} f{r.frame_id}", (3, tile - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                        (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(canvas)
        rows.append(np.concatenate(tiles, 1))
    sheet = np.concatenate(rows, 0)
    if not cv2.imwrite(out_path, sheet):
        raise PosevidError(f"cannot write {out_path}")
    return out_path
