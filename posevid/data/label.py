"""Teacher-labelled training data from real footage: the real-image signal synthetic clips lack.

`label_footage(sources, out_dir, teacher)` writes `out_dir/videos/NNNNNN.mp4` (each source video re-encoded
with its longer side at most `max_side`), `out_dir/images/NNNNNN.jpg` (each still image, likewise) and
`out_dir/annotations.json` in the synthetic sets' PoseTrack-style format, so `posevid train --data
out_dir` reads it as it is. The labels are MoveNet MultiPose's poses
(`posevid.data.teacher`), drafted the way the dev set's were: several input sizes merged by pose NMS,
then each person rerun on a crop around it.

`frame_labels` turns one frame's teacher poses into annotations (pure): confident people become labelled
people whose confident keypoints are labelled; people the teacher only half sees become ignore regions,
so training neither learns them as people nor as background. Track ids are not kept (-1): the DEKR
targets do not use them.

Training-time only: the teacher needs the `teacher` extra. Never label the dev set or the footage
reserved for independent checks (posevid/data/devset/README.md).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posevid.errors import PosevidError


@dataclass(frozen=True)
class LabelConfig:
    min_person_score: float = 0.3  # a teacher pose at or above this is a labelled person
    min_ignore_score: float = 0.1  # between this and min_person_score: an ignore region
    min_keypoint_score: float = 0.3  # a keypoint at or above this is labelled (visibility 2)
    min_keypoints: int = 4  # fewer labelled keypoints: the person becomes an ignore region instead
    ignore_margin: float = 0.2  # ignore boxes grow by this share of their size on each side
    sizes: tuple[int, ...] = (256, 384, 512)  # teacher input sizes (longer side), merged by pose NMS
    crop_size: int = 256  # teacher input size for the rerun on each person's crop
    # > 0: the teacher also runs on square tiles of this side (half-overlapping, in the fitted image), for
    # group photos: MoveNet MultiPose returns at most 6 people per run
    tile: int = 0
    max_side: int = 768  # re-encoded videos' longer side
    frame_step: int = 1  # label (and keep) every s-th frame
    crf: int = 18


def keypoint_box(xy: np.ndarray) -> np.ndarray:
    """(x, y, w, h) of a set of points (N, 2)."""
    lo, hi = xy.min(0), xy.max(0)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], np.float64)


def frame_labels(keypoints: np.ndarray, scores: np.ndarray, image_hw: tuple[int, int],
                 cfg: LabelConfig = LabelConfig()) -> tuple[list[dict], list[list[float]]]:
    """Teacher poses of one frame → (people as COCO annotation fields, ignore polygons).

    keypoints (P, 17, 3) as (x, y, score) in frame pixels; scores (P,). A person gets `keypoints`
    (51 values, visibility 2 or 0), `num_keypoints`, `bbox` (keypoint box) and `area` (its w × h,
    as COCO's area stands in for the segment's). Ignore polygons are boxes, clipped to the frame.
    """
    H, W = image_hw
    people, ignore = [], []
    for kp, s in zip(np.asarray(keypoints, np.float64).reshape(-1, 17, 3), np.asarray(scores, np.float64)):
        inside = (kp[:, 0] >= 0) & (kp[:, 0] < W) & (kp[:, 1] >= 0) & (kp[:, 1] < H)
        good = inside & (kp[:, 2] >= cfg.min_keypoint_score)
        if s >= cfg.min_person_score and good.sum() >= cfg.min_keypoints:
            out = np.zeros((17, 3))
            out[good, :2] = kp[good, :2]
            out[good, 2] = 2
            box = keypoint_box(kp[good, :2])
            people.append({"keypoints": [round(float(v), 2) for v in out.ravel()], "num_keypoints": int(good.sum()),
                           "bbox": [round(float(v), 2) for v in box], "area": round(float(box[2] * box[3]), 2)})
        elif s >= cfg.min_ignore_score:
            sure = kp[:, 2] >= cfg.min_ignore_score
            x, y, w, h = keypoint_box(kp[sure, :2] if sure.any() else kp[:, :2])
            m = cfg.ignore_margin * max(w, h, 8.0)
            x0, y0 = np.clip([x - m, y - m], 0, [W, H])
            x1, y1 = np.clip([x + w + m, y + h + m], 0, [W, H])
            if x1 > x0 and y1 > y0:
                ignore.append([round(float(v), 2) for v in (x0, y0, x1, y0, x1, y1, x0, y1)])
    return people, ignore


def tiles(image_hw: tuple[int, int], side: int) -> list[tuple[int, int, int, int]]:
    """Square windows (x0, y0, x1, y1) of `side` px (clipped to the image), stepping by half a side, the last
    ones flush with the right and bottom edges: every person under half a side wide and tall lies whole in one."""
    H, W = image_hw

    def starts(n: int) -> list[int]:
        if n <= side:
            return [0]
        return sorted(set(list(range(0, n - side, side // 2)) + [n - side]))

    return [(x, y, min(W, x + side), min(H, y + side)) for y in starts(H) for x in starts(W)]


def teacher_poses(teacher, image_bgr: np.ndarray, cfg: LabelConfig = LabelConfig()) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's poses of one image: input sizes (and `cfg.tile`'s tiles) merged by pose NMS, then each
    person rerun on its crop. The crop's pose of the same person (OKS ≥ 0.5 with the first; the crop may hold
    others) replaces it where it scores higher."""
    from posevid.data.teacher import crop_box, merge_runs, pose_oks

    kp, scores = teacher.multi_size(image_bgr, sizes=cfg.sizes, min_score=cfg.min_ignore_score)
    if cfg.tile:
        tiled = [teacher.on_crop(image_bgr, t, cfg.min_ignore_score, size=cfg.crop_size)
                 for t in tiles(image_bgr.shape[:2], cfg.tile)]
        kp, scores = merge_runs([(kp, scores), *tiled], cfg.min_keypoint_score)
    kp, scores = kp.copy(), scores.copy()
    for i in range(len(kp)):
        seen = kp[i, kp[i, :, 2] >= cfg.min_keypoint_score, :2]
        if len(seen) < 2:
            continue
        try:
            crop = crop_box(keypoint_box(seen), image_bgr.shape[:2])
        except ValueError:
            continue
        ckp, cs = teacher.on_crop(image_bgr, crop, cfg.min_ignore_score, size=cfg.crop_size)
        oks = [pose_oks(c, kp[i], cfg.min_keypoint_score) or 0.0 for c in ckp]
        j = int(np.argmax(oks)) if oks else -1
        if j >= 0 and oks[j] >= 0.5 and cs[j] > scores[i]:
            kp[i], scores[i] = ckp[j], cs[j]
    return kp, scores


def _fit(img: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink so the longer side is at most max_side (even sides, as H.264 wants)."""
    scale = min(1.0, max_side / max(img.shape[:2]))
    if scale == 1:
        return img
    size = (round(img.shape[1] * scale) // 2 * 2, round(img.shape[0] * scale) // 2 * 2)
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def label_footage(sources: list[str], out_dir: str | os.PathLike, teacher, cfg: LabelConfig = LabelConfig(),
                  on_source=None) -> dict:
    """Label every `cfg.frame_step`-th frame of each source video, and each still image (a one-frame video
    to training, kept as `images/NNNNNN.jpg`); returns the annotation dict written."""
    from posevid.data.synth import _categories, write_video
    from posevid.images import is_image, read_image
    from posevid.video import probe, read_frames

    out = Path(out_dir)
    if (out / "annotations.json").exists():
        raise PosevidError(f"{out / 'annotations.json'} exists already: choose a new --out")
    images, annotations, videos = [], [], []

    def add(img: np.ndarray, entry: dict) -> None:
        kp, scores = teacher_poses(teacher, img, cfg)
        people, ignore = frame_labels(kp, scores, img.shape[:2], cfg)
        image_id = len(images) + 1
        images.append({"id": image_id, **entry, "width": img.shape[1], "height": img.shape[0],
                       "ignore_regions_x": [p[0::2] for p in ignore], "ignore_regions_y": [p[1::2] for p in ignore]})
        first_id = len(annotations) + 1  # fixed before extend: the list grows while the generator runs
        annotations.extend({"id": first_id + i, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                            "track_id": -1, **p} for i, p in enumerate(people))

    for n, src in enumerate(sources, start=1):
        if is_image(src):
            img = _fit(read_image(src)[0], cfg.max_side)
            name = f"images/{n:06d}.jpg"
            add(img, {"file_name": name})
            (out / "images").mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(out / name), img, [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise PosevidError(f"cannot write {out / name}")
            count = 1
        else:
            info = probe(src)
            name = f"videos/{n:06d}.mp4"
            frames = []
            for i, frame in enumerate(read_frames(info)):
                if i % cfg.frame_step == 0:
                    frames.append(_fit(frame.image, cfg.max_side))
                    add(frames[-1], {"file_name": f"{name}#{len(frames) - 1}", "frame_id": len(frames) - 1,
                                     "video_id": n})
            if not frames:
                raise PosevidError(f"{src}: no frames to label")
            (out / "videos").mkdir(parents=True, exist_ok=True)
            write_video(str(out / name), frames, float(info.fps) / cfg.frame_step, cfg.crf)
            videos.append({"id": n, "file_name": name, "source": os.path.basename(src), "nframes": len(frames)})
            count = len(frames)
        if on_source is not None:
            on_source(src, count)
    data = {"info": {"description": "MoveNet MultiPose (teacher) labels of real footage", "label_config": vars(cfg)},
            "licenses": [], "categories": _categories(), "videos": videos, "images": images, "annotations": annotations}
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "annotations.json.partial"
    tmp.write_text(json.dumps(data))
    tmp.replace(out / "annotations.json")
    return data


def teacher_results(annotations: str | os.PathLike, teacher, size: int = 256) -> tuple[dict, list[dict]]:
    """The teacher alone, one pass at input size `size`, on every scored frame of an annotation file:
    (the file's COCO ground truth, the teacher's poses as COCO results). With
    `posevid.evaluate.accuracy.coco_keypoint_ap` this is the reference `posevid data teacher-score` prints
    (biased upward on labels the teacher drafted)."""
    from posevid.data.readers import load_frame
    from posevid.evaluate.accuracy import pose_results
    from posevid.evaluate.ground_truth import load_ground_truth

    gt = load_ground_truth(annotations)
    root = str(Path(annotations).parent)
    results = []
    for video in gt.videos:
        for frame in video.frames:
            if frame.image_id not in gt.labelled:
                continue
            results += pose_results(frame.image_id, *teacher(load_frame(root, frame), size=size))
    return gt.coco, results
