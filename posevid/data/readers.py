"""Readers for keypoint annotations and a clip sampler for training.

Formats read by `read_annotations`:
- COCO keypoints JSON (still images): every image becomes a one-frame video.
- PoseTrack-style video JSON (images carry `video_id`/`vid_id` and `frame_id`; annotations carry
  `track_id`), including PoseTrack 2018 (its head_bottom/head_top slots become unlabelled) and
  posevid's synthetic output (`file_name` "videos/000001.mp4#7" = frame 7 of that mp4).
Keypoints are reordered by the category's keypoint names into posevid's COCO order.
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from posevid.data.degrade import blur_one_frame, jitter_colours, moving_occluder
from posevid.data.label import keypoint_box
from posevid.errors import PosevidError
from posevid.skeleton import COCO


@dataclass
class FrameRecord:
    """One annotated frame. keypoints: (N, 17, 3) (x, y, v) in pixels, COCO order."""

    image_id: int
    file_name: str
    frame_id: int
    width: int
    height: int
    keypoints: np.ndarray
    track_ids: np.ndarray  # (N,) int, -1 where the format has none
    boxes: np.ndarray  # (N, 4) x, y, w, h
    areas: np.ndarray  # (N,)
    ignore: list = field(default_factory=list)  # segmentations (RLE/polygons) of crowds/unlabelled people


@dataclass
class VideoRecord:
    video_id: int
    frames: list[FrameRecord]  # sorted by frame_id


def keypoint_map(names: list[str]) -> np.ndarray:
    """Index into the file's keypoints for each COCO keypoint (-1 where the file lacks it)."""
    return np.array([names.index(n) if n in names else -1 for n in COCO.names])


def read_annotations(path: str) -> list[VideoRecord]:
    """Videos (stills are one-frame videos) with their annotations, in the file's image order."""
    return videos_from_coco(load_annotation_json(path))


def load_annotation_json(path: str) -> dict:
    """The parsed file; PosevidError naming it when it is missing, not JSON or not COCO-shaped."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise PosevidError(f"annotation file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise PosevidError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise PosevidError(f"{path} is not a COCO-style annotation file (needs 'images' and 'annotations')")
    return data


def videos_from_coco(data: dict) -> list[VideoRecord]:
    """`read_annotations` of an already parsed file."""
    cats = {c["id"]: c for c in data.get("categories", [])}
    person = next((c for c in cats.values() if c.get("name") == "person"), None)
    names = list(person["keypoints"]) if person and "keypoints" in person else list(COCO.names)
    kmap = keypoint_map(names)

    by_image: dict[int, list] = {}
    for a in data["annotations"]:
        if person is not None and a.get("category_id", person["id"]) != person["id"]:
            continue
        by_image.setdefault(a["image_id"], []).append(a)

    videos: dict[int, list[FrameRecord]] = {}
    for img in data["images"]:
        anns = by_image.get(img["id"], [])
        kps, tids, boxes, areas, ignore = [], [], [], [], []
        for a in anns:
            raw = np.asarray(a.get("keypoints") or [0] * (3 * len(names)), np.float64).reshape(-1, 3)
            kp = np.zeros((17, 3))
            ok = kmap >= 0
            kp[ok] = raw[kmap[ok]]
            kp[kp[:, 2] <= 0] = 0.0
            if a.get("iscrowd", 0) or (kp[:, 2] > 0).sum() == 0:
                seg = a.get("segmentation")
                if seg:
                    ignore.append(seg)
                elif a.get("bbox"):
                    x, y, w, h = a["bbox"]
                    ignore.append([[x, y, x + w, y, x + w, y + h, x, y + h]])
                if a.get("iscrowd", 0):
                    continue
            kps.append(kp)
            tids.append(int(a.get("track_id", -1)))
            boxes.append(a.get("bbox") or [0, 0, 0, 0])
            areas.append(float(a.get("area", 0.0)))
        # PoseTrack 2018 marks unannotated people as polygons on the image.
        for xs, ys in zip(img.get("ignore_regions_x") or [], img.get("ignore_regions_y") or []):
            if len(xs) >= 3:
                ignore.append([[float(v) for xy in zip(xs, ys) for v in xy]])
        vid = img.get("video_id", img.get("vid_id", None))
        key = int(vid) if vid is not None else -int(img["id"])  # stills: their own one-frame video
        videos.setdefault(key, []).append(FrameRecord(
            image_id=int(img["id"]), file_name=img["file_name"], frame_id=int(img.get("frame_id", 0)),
            width=int(img.get("width", 0)), height=int(img.get("height", 0)),
            keypoints=np.asarray(kps, np.float64).reshape(-1, 17, 3),
            track_ids=np.asarray(tids, np.int64), boxes=np.asarray(boxes, np.float64).reshape(-1, 4),
            areas=np.asarray(areas, np.float64), ignore=ignore,
        ))
    return [VideoRecord(k, sorted(v, key=lambda r: r.frame_id)) for k, v in videos.items()]


# ---------------------------------------------------------------------------------------------
# Frames
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")


def frame_reference(name: str) -> tuple[str, int] | None:
    """("videos/000001.mp4", 7) for a file name "videos/000001.mp4#7"; None for an image file."""
    if "#" in name:
        video, t = name.rsplit("#", 1)
        if video.lower().endswith(VIDEO_SUFFIXES) and t.isdigit():
            return video, int(t)
    return None

# Training samples frames at random across all videos, so a few-video cache re-decodes a whole video per
# sample. Decoded videos are kept up to a byte budget instead (synthetic train-v1 is 2.5 GB decoded).
VIDEO_CACHE_BYTES = 4 << 30
_video_cache: OrderedDict[str, tuple[np.ndarray, ...]] = OrderedDict()


def _decode_video(path: str) -> tuple[np.ndarray, ...]:
    if path in _video_cache:
        _video_cache.move_to_end(path)
        return _video_cache[path]
    frames = _read_video(path)
    _cache_put(path, frames)
    return frames


def _read_video(path: str) -> tuple[np.ndarray, ...]:
    import imageio_ffmpeg

    if not os.path.exists(path):
        raise PosevidError(f"video not found: {path}")
    gen = imageio_ffmpeg.read_frames(path, pix_fmt="bgr24")
    meta = next(gen)
    w, h = meta["size"]
    return tuple(np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in gen)


def _cache_put(path: str, frames: tuple[np.ndarray, ...]) -> None:
    _video_cache[path] = frames
    total = sum(_video_bytes(v) for v in _video_cache.values())
    while total > VIDEO_CACHE_BYTES and len(_video_cache) > 1:  # always keep the video just decoded
        total -= _video_bytes(_video_cache.popitem(last=False)[1])


def preload_videos(root: str, videos: list[VideoRecord], threads: int = 4) -> int:
    """Decodes the videos behind `videos` into the cache while they fit its budget; returns how many.

    Data-loading workers forked afterwards share the decoded frames instead of each decoding every
    video again. Each decode runs in its own ffmpeg process, so threads are enough to run them in parallel.
    """
    refs = (frame_reference(f.file_name) for v in videos for f in v.frames[:1])
    paths = list(dict.fromkeys(os.path.join(root, r[0]) for r in refs if r is not None))
    paths = [p for p in paths if p not in _video_cache]
    used = sum(_video_bytes(v) for v in _video_cache.values())
    done = 0
    with ThreadPoolExecutor(max(1, threads)) as pool:
        for path, frames in zip(paths, pool.map(_read_video, paths)):
            if used + _video_bytes(frames) > VIDEO_CACHE_BYTES:
                pool.shutdown(cancel_futures=True)  # the rest is decoded on demand
                break
            _cache_put(path, frames)
            used += _video_bytes(frames)
            done += 1
    return done


def _video_bytes(frames: tuple[np.ndarray, ...]) -> int:
    return sum(f.nbytes for f in frames)


def load_frame(root: str, record: FrameRecord) -> np.ndarray:
    """(H, W, 3) BGR uint8 pixels of a frame: an image file, or frame t of "name.mp4#t"."""
    ref = frame_reference(record.file_name)
    if ref is not None:
        video, t = ref
        frames = _decode_video(os.path.join(root, video))
        if t >= len(frames):
            raise PosevidError(f"{video} has {len(frames)} frames, annotation asks for frame {t}")
        return frames[t]
    name = record.file_name
    img = cv2.imread(os.path.join(root, name), cv2.IMREAD_COLOR)
    if img is None:
        raise PosevidError(f"cannot read image {os.path.join(root, name)}")
    return img


def ignore_mask(record: FrameRecord, height: int, width: int) -> np.ndarray:
    """(H, W) bool union of the frame's ignore regions (RLE or polygon segmentations)."""
    out = np.zeros((height, width), bool)
    if not record.ignore:
        return out
    from pycocotools import mask as mask_utils

    for seg in record.ignore:
        if isinstance(seg, dict):  # RLE: compressed (counts as text) or uncompressed (counts as a list)
            rle = dict(seg)
            if isinstance(rle["counts"], list):
                rle = mask_utils.frPyObjects(rle, height, width)
            elif isinstance(rle["counts"], str):
                rle["counts"] = rle["counts"].encode("ascii")
        else:  # polygons
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
        out |= mask_utils.decode(rle).astype(bool)
    return out


# ---------------------------------------------------------------------------------------------
# Clip sampler with one augmentation per clip
@dataclass(frozen=True)
class Augment:
    out_width: int = 256  # output frame size
    out_height: int = 256
    scale: tuple[float, float] = (0.75, 1.35)  # zoom range (log-uniform)
    rotation_deg: float = 30.0  # max rotation either way
    translate: float = 0.15  # max shift as a fraction of the output size
    flip_prob: float = 0.5  # horizontal flip (left/right keypoints swapped)
    occlude: float = 0.0  # chance per clip of an occluder sliding across a person (see data/degrade.py)
    blur: float = 0.0  # chance per clip of one motion-blurred frame after the first
    color: float = 0.0  # chance per clip of other saturation, contrast and brightness (data/degrade.py)
    frame_step: int = 1  # clips take every s-th frame, s drawn from 1..frame_step (lower frame rates, e.g. 10 fps)
    # Chance per clip that the crop centres on one labelled person instead of fitting the whole frame, with
    # the person's keypoint box (longer side) at a log-uniform fraction of the crop: in wide photos and
    # groups, fitting the frame leaves each person a few dozen pixels tall.
    person_zoom: float = 0.0
    person_size: tuple[float, float] = (0.3, 1.2)


def random_affine(rng: np.random.Generator, width: int, height: int, aug: Augment,
                  focus: tuple[float, float, float] | None = None) -> tuple[np.ndarray, bool]:
    """A (2, 3) input->output affine (fit the frame, then zoom/rotate/shift/flip) and whether it flips.

    focus (x, y, extent): centre on that point instead, scaled so that extent (input pixels) becomes a
    random fraction `aug.person_size` of the crop's shorter side."""
    if focus is None:
        fit = min(aug.out_width / width, aug.out_height / height)
        s = fit * float(np.exp(rng.uniform(np.log(aug.scale[0]), np.log(aug.scale[1]))))
        cx, cy = (width - 1) / 2, (height - 1) / 2
    else:
        cx, cy, extent = focus
        frac = float(np.exp(rng.uniform(np.log(aug.person_size[0]), np.log(aug.person_size[1]))))
        s = frac * min(aug.out_width, aug.out_height) / max(extent, 1.0)
    a = np.deg2rad(rng.uniform(-aug.rotation_deg, aug.rotation_deg))
    flip = bool(rng.uniform() < aug.flip_prob)
    ox = (aug.out_width - 1) / 2 + rng.uniform(-aug.translate, aug.translate) * aug.out_width
    oy = (aug.out_height - 1) / 2 + rng.uniform(-aug.translate, aug.translate) * aug.out_height
    R = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    if flip:
        R = R @ np.diag([-1.0, 1.0])
    M = np.zeros((2, 3))
    M[:, :2] = R
    M[:, 2] = np.array([ox, oy]) - R @ np.array([cx, cy])
    return M, flip


def transform_keypoints(kp: np.ndarray, M: np.ndarray, flip: bool, width: int | None, height: int | None) -> np.ndarray:
    """Apply the affine to (N, K, 3) keypoints; swap left/right when flipped; v = 0 outside the frame
    (width and height None: keep every labelled keypoint, wherever it lands)."""
    out = kp.copy()
    xy = kp[..., :2] @ M[:, :2].T + M[:, 2]
    out[..., :2] = xy
    if flip:
        out = out[:, list(COCO.flip_index)]
    if width is None:
        out[out[..., 2] <= 0] = 0.0
        return out
    outside = (out[..., 0] < -0.5) | (out[..., 0] > width - 0.5) | (out[..., 1] < -0.5) | (out[..., 1] > height - 0.5)
    out[(out[..., 2] <= 0) | outside] = 0.0
    return out


@dataclass
class Clip:
    frames: np.ndarray  # (T, H, W, 3) BGR uint8
    keypoints: list  # T arrays (N_t, 17, 3) in output pixels, v = 0 outside the frame
    full_keypoints: list  # the same people with every labelled keypoint, also those outside (centres, sizes)
    track_ids: list  # T arrays (N_t,)
    ignore: np.ndarray  # (T, H, W) bool
    affine: np.ndarray  # (2, 3) input -> output transform used for the whole clip
    flipped: bool


class ClipSampler:
    """Draws T consecutive frames of a video with one random augmentation for the whole clip.

    Still images (one-frame videos) give T copies of the frame.
    """

    def __init__(self, videos: list[VideoRecord], root: str, clip_len: int, augment: Augment = Augment()):
        if clip_len < 1:
            raise ValueError("clip_len must be >= 1")
        self.videos = [v for v in videos if v.frames]
        self.root = root
        self.clip_len = clip_len
        self.augment = augment

    def __len__(self) -> int:
        return len(self.videos)

    def sample(self, rng: np.random.Generator, video_index: int | None = None) -> Clip:
        v = self.videos[int(rng.integers(0, len(self.videos))) if video_index is None else video_index]
        T, a = self.clip_len, self.augment
        step = 1
        if a.frame_step > 1 and T > 1:  # drawn only when enabled, so older recipes keep their random stream
            fits = max(1, (len(v.frames) - 1) // (T - 1))  # the largest step whose clip fits in the video
            step = int(rng.integers(1, min(a.frame_step, fits) + 1))
        start = int(rng.integers(0, max(len(v.frames) - (T - 1) * step - 1, 0) + 1))
        recs = [v.frames[min(start + t * step, len(v.frames) - 1)] for t in range(T)]
        first = load_frame(self.root, recs[0])
        H, W = first.shape[:2]
        M, flip = random_affine(rng, W, H, a, self._focus(rng, recs[0]))
        frames, kps, full, tids, ign = [], [], [], [], []
        for r in recs:
            img = load_frame(self.root, r) if r is not recs[0] else first
            frames.append(cv2.warpAffine(img, M, (a.out_width, a.out_height), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_CONSTANT))
            kps.append(transform_keypoints(r.keypoints, M, flip, a.out_width, a.out_height))
            full.append(transform_keypoints(r.keypoints, M, flip, None, None))
            tids.append(r.track_ids.copy())
            m = ignore_mask(r, H, W).astype(np.uint8)
            ign.append(cv2.warpAffine(m, M, (a.out_width, a.out_height), flags=cv2.INTER_NEAREST) > 0)
        frames = np.stack(frames)
        # Drawn only when enabled, so clips of recipes without them stay as they were.
        if a.occlude > 0 and rng.uniform() < a.occlude:
            moving_occluder(rng, frames, kps)
        if a.blur > 0 and rng.uniform() < a.blur:
            blur_one_frame(rng, frames)
        if a.color > 0 and rng.uniform() < a.color:
            jitter_colours(rng, frames)
        return Clip(frames, kps, full, tids, np.stack(ign), M, flip)

    def _focus(self, rng: np.random.Generator, rec) -> tuple[float, float, float] | None:
        """With chance `person_zoom`, one labelled person's keypoint-box centre and longer side (a person with
        at least 2 labelled keypoints); None (fit the frame) otherwise or when the frame has nobody."""
        # nothing drawn when disabled, so older recipes keep their random stream
        if self.augment.person_zoom <= 0 or rng.uniform() >= self.augment.person_zoom:
            return None
        labelled = rec.keypoints[..., 2] > 0
        people = np.flatnonzero(labelled.sum(1) >= 2)
        if len(people) == 0:
            return None
        p = people[int(rng.integers(0, len(people)))]
        x, y, w, h = keypoint_box(rec.keypoints[p, labelled[p], :2])
        return float(x + w / 2), float(y + h / 2), float(max(w, h))
