"""An annotation file read for scoring: COCO ground truth for COCOeval, and per image the people and
boxes the other metrics take. `load_ground_truth` reads the file; `ground_truth_from_coco` is pure."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posevid.data.readers import VideoRecord, keypoint_map, load_annotation_json, videos_from_coco
from posevid.errors import PosevidError
from posevid.skeleton import COCO

_NO_PEOPLE = (np.zeros((0, len(COCO.names), 3)), np.zeros(0), np.zeros(0, np.int64))
_NO_BOXES = (np.zeros((0, 4)), np.zeros((0, 4)))


@dataclass
class GroundTruth:
    """An annotation file read for evaluation."""

    path: Path
    videos: list[VideoRecord]  # the readers' view: frames per video, sorted by frame_id
    coco: dict  # COCO ground truth for COCOeval: person = category 1, COCO keypoint order, fields filled
    labelled: set[int]  # image ids that are scored (PoseTrack's "is_labeled": false ones are not)
    people: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]  # image id → (gt (G,17,3), areas, track ids)
    boxes: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # image id → (people, crowd) xywh

    def people_in(self, image_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(gt (G, 17, 3), areas (G,), track ids (G,)) of one image; empty arrays when it has nobody."""
        return self.people.get(image_id, _NO_PEOPLE)

    def boxes_in(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(people (B, 4), crowd regions (C, 4)) xywh boxes of one image; empty arrays when it has none."""
        return self.boxes.get(image_id, _NO_BOXES)


def load_ground_truth(path: str | os.PathLike) -> GroundTruth:
    """Read an annotation file (PosevidError naming it when it is missing or not COCO keypoints)."""
    path = Path(path)
    if path.is_dir():
        raise PosevidError(f"{path}: is a directory, not an annotation file")
    try:
        data = load_annotation_json(str(path))  # checks existence, JSON and the COCO shape
        return ground_truth_from_coco(path, data, videos_from_coco(data))
    except (KeyError, TypeError, ValueError, IndexError) as e:  # COCO-shaped but malformed entries
        raise PosevidError(f"{path}: malformed annotation file ({type(e).__name__}: {e})") from None


def ground_truth_from_coco(path: Path, data: dict, videos: list[VideoRecord]) -> GroundTruth:
    """The GroundTruth of an annotation file's parsed JSON `data` (`videos`: videos_from_coco's view of it).

    Keypoints are reordered by the person category's keypoint names into COCO order; a missing bbox is
    the tight box of the labelled keypoints and a missing area the box's w × h."""
    cats = data.get("categories") or []
    person = next((c for c in cats if c.get("name") == "person"), None)
    names = list(person["keypoints"]) if person and "keypoints" in person else list(COCO.names)
    kmap = keypoint_map(names)  # file slot per COCO slot
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
