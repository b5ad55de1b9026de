"""Readers for COCO / PoseTrack-style annotations and the clip sampler's consistent augmentation."""
import dataclasses
import json
import sys

import cv2
import numpy as np
import pytest

from posevid.data.readers import Augment, ClipSampler, ignore_mask, read_annotations
from posevid.errors import PosevidError
from posevid.skeleton import COCO


def _write_frames(tmp_path, n, pts_per_frame, size=(96, 128)):
    """Black frames with one bright dot per labelled keypoint (left wrist red, right wrist green)."""
    names = []
    for t in range(n):
        img = np.zeros((*size, 3), np.uint8)
        for j, (x, y) in pts_per_frame[t].items():
            img[int(y), int(x)] = (0, 0, 255) if j == 9 else (0, 255, 0)
        name = f"f{t:03d}.png"
        cv2.imwrite(str(tmp_path / name), img)
        names.append(name)
    return names


def _video_json(tmp_path, names, pts_per_frame, keypoint_names=COCO.names, video_key="video_id"):
    images, anns = [], []
    for t, name in enumerate(names):
        images.append({"id": t + 1, video_key: 7, "frame_id": t, "file_name": name, "width": 128, "height": 96})
        kp = [0.0] * (3 * len(keypoint_names))
        for j, (x, y) in pts_per_frame[t].items():
            k = keypoint_names.index(COCO.names[j])
            kp[3 * k:3 * k + 3] = [x, y, 2]
        anns.append({"id": t + 1, "image_id": t + 1, "category_id": 1, "track_id": 3, "keypoints": kp,
                     "num_keypoints": len(pts_per_frame[t]), "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0})
    anns.append({"id": 99, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [100, 70, 20, 20], "area": 400,
                 "segmentation": [[100, 70, 120, 70, 120, 90, 100, 90]], "keypoints": [0] * 51, "num_keypoints": 0})
    cats = [{"id": 1, "name": "person", "keypoints": list(keypoint_names), "skeleton": []}]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return str(path)


def test_posetrack_style_video_is_grouped_sorted_and_keeps_tracks(tmp_path):
    pts = [{9: (20 + 4 * t, 30), 10: (80 - 4 * t, 40)} for t in range(5)]
    names = _write_frames(tmp_path, 5, pts)
    videos = read_annotations(_video_json(tmp_path, names[::-1][::-1], pts, video_key="vid_id"))
    assert len(videos) == 1 and [f.frame_id for f in videos[0].frames] == list(range(5))
    f0 = videos[0].frames[0]
    assert f0.keypoints.shape == (1, 17, 3) and f0.track_ids.tolist() == [3]
    np.testing.assert_allclose(f0.keypoints[0, 9], [20, 30, 2])
    m = ignore_mask(f0, 96, 128)  # the crowd region
    assert m[80, 110] and not m[10, 10]


def test_posetrack_ignore_regions_become_ignore_masks(tmp_path):
    pts = [{9: (20, 30)}]
    names = _write_frames(tmp_path, 1, pts)
    path = _video_json(tmp_path, names, pts)
    data = json.loads(open(path).read())
    data["annotations"] = [a for a in data["annotations"] if not a.get("iscrowd")]
    data["images"][0]["ignore_regions_x"] = [[10, 30, 30, 10]]
    data["images"][0]["ignore_regions_y"] = [[5, 5, 25, 25]]
    open(path, "w").write(json.dumps(data))
    m = ignore_mask(read_annotations(path)[0].frames[0], 96, 128)
    assert m[15, 20] and not m[50, 50]


def test_frames_without_ignore_regions_need_no_pycocotools(tmp_path, monkeypatch):
    """Training on clean data works where pycocotools is missing (it is imported for masks only)."""
    pts = [{9: (20, 30)}]
    path = _video_json(tmp_path, _write_frames(tmp_path, 1, pts), pts)
    data = json.loads(open(path).read())
    data["annotations"] = [a for a in data["annotations"] if not a.get("iscrowd")]
    open(path, "w").write(json.dumps(data))
    monkeypatch.setitem(sys.modules, "pycocotools", None)  # import now raises ImportError
    m = ignore_mask(read_annotations(path)[0].frames[0], 96, 128)
    assert m.shape == (96, 128) and not m.any()


def test_posetrack2018_head_slots_become_unlabelled(tmp_path):
    pt_names = list(COCO.names)
    pt_names[1], pt_names[2] = "head_bottom", "head_top"
    pts = [{0: (10, 10), 9: (20, 30)}]
    names = _write_frames(tmp_path, 1, pts)
    path = _video_json(tmp_path, names, pts, keypoint_names=tuple(pt_names))
    data = json.loads(open(path).read())
    data["annotations"][0]["keypoints"][3:9] = [11, 5, 2, 12, 1, 2]  # head points must not become eyes
    open(path, "w").write(json.dumps(data))
    kp = read_annotations(path)[0].frames[0].keypoints[0]
    assert kp[1, 2] == 0 and kp[2, 2] == 0 and kp[0, 2] == 2


def test_coco_still_images_are_one_frame_videos(tmp_path):
    pts = [{9: (20, 30)}, {10: (40, 50)}]
    names = _write_frames(tmp_path, 2, pts)
    path = _video_json(tmp_path, names, pts)
    data = json.loads(open(path).read())
    for img in data["images"]:
        del img["video_id"], img["frame_id"]
    open(path, "w").write(json.dumps(data))
    videos = read_annotations(path)
    assert len(videos) == 2 and all(len(v.frames) == 1 for v in videos)


def test_clip_sampler_applies_one_augmentation_to_the_whole_clip(tmp_path):
    pts = [{9: (30 + 6 * t, 40 + 2 * t), 10: (90 - 5 * t, 50)} for t in range(6)]
    names = _write_frames(tmp_path, 6, pts)
    sampler = ClipSampler(read_annotations(_video_json(tmp_path, names, pts)), str(tmp_path), clip_len=4,
                          augment=Augment(out_width=128, out_height=128, flip_prob=1.0))
    for seed in range(4):
        clip = sampler.sample(np.random.default_rng(seed))
        assert clip.frames.shape == (4, 128, 128, 3) and clip.flipped
        for t in range(4):
            kp = clip.keypoints[t][0]
            # flipped: the red dot (the original left wrist) is now labelled as the right wrist
            for j, channel in ((10, 2), (9, 1)):
                if kp[j, 2] == 0:
                    continue
                img = clip.frames[t][..., channel].astype(float)
                y, x = np.unravel_index(img.argmax(), img.shape)
                assert img.max() > 20
                assert abs(x - kp[j, 0]) <= 1.0 and abs(y - kp[j, 1]) <= 1.0
        assert not np.array_equal(clip.frames[0], clip.frames[1])  # consecutive frames, not copies


def test_person_zoom_centres_the_crop_on_one_person_at_the_drawn_size(tmp_path):
    pts = [{9: (20, 30), 10: (40, 50)}]  # one person: a keypoint box of 20 x 20 px in a 128 x 96 frame
    path = _video_json(tmp_path, _write_frames(tmp_path, 1, pts), pts)
    still = Augment(out_width=128, out_height=128, rotation_deg=0.0, translate=0.0, flip_prob=0.0,
                    person_zoom=1.0, person_size=(0.5, 0.5))
    clip = ClipSampler(read_annotations(path), str(tmp_path), 1, still).sample(np.random.default_rng(0))
    kp = clip.keypoints[0][0]
    np.testing.assert_allclose(kp[[9, 10], :2], [[31.5, 31.5], [95.5, 95.5]], atol=1e-6)  # 20 px -> 64 px, centred
    red = clip.frames[0][..., 2].astype(float)
    assert np.unravel_index(red.argmax(), red.shape) in {(31, 31), (31, 32), (32, 31), (32, 32)}
    # Without it, the same sampler fits the whole frame: the box stays 20 * 128 / 128 px wide at zoom 1.
    fit = dataclasses.replace(still, person_zoom=0.0, scale=(1.0, 1.0))
    kp = ClipSampler(read_annotations(path), str(tmp_path), 1, fit).sample(np.random.default_rng(0)).keypoints[0][0]
    np.testing.assert_allclose(kp[10, :2] - kp[9, :2], [20.0, 20.0], atol=1e-6)


def test_person_zoom_fits_the_frame_when_nobody_is_labelled(tmp_path):
    pts = [{}]
    path = _video_json(tmp_path, _write_frames(tmp_path, 1, pts), pts)
    aug = Augment(out_width=128, out_height=128, rotation_deg=0.0, translate=0.0, flip_prob=0.0, scale=(1.0, 1.0),
                  person_zoom=1.0)
    clip = ClipSampler(read_annotations(path), str(tmp_path), 1, aug).sample(np.random.default_rng(0))
    np.testing.assert_allclose(clip.affine[:, :2], np.eye(2), atol=1e-9)  # 128 x 96 fits 128 x 128 at scale 1


def test_color_changes_the_pixels_of_a_clip_but_not_its_geometry(tmp_path):
    pts = [{9: (30 + 6 * t, 40), 10: (90, 50)} for t in range(4)]
    path = _video_json(tmp_path, _write_frames(tmp_path, 4, pts), pts)
    plain = Augment(out_width=128, out_height=128)
    clips = [ClipSampler(read_annotations(path), str(tmp_path), 4, dataclasses.replace(plain, color=c)).sample(
        np.random.default_rng(3)) for c in (0.0, 1.0)]
    assert not np.array_equal(clips[0].frames, clips[1].frames)
    np.testing.assert_array_equal(clips[0].affine, clips[1].affine)  # drawn after the geometry
    assert all(np.array_equal(a, b) for a, b in zip(clips[0].keypoints, clips[1].keypoints))


def test_frame_step_subsamples_the_frame_rate_within_the_video(tmp_path):
    pts = [{9: (10 + 6 * t, 40)} for t in range(9)]  # the wrist's x tells which frame a clip frame is
    path = _video_json(tmp_path, _write_frames(tmp_path, 9, pts), pts)
    still = Augment(out_width=128, out_height=96, scale=(1.0, 1.0), rotation_deg=0.0, translate=0.0, flip_prob=0.0)

    def steps(clip_len: int, frame_step: int) -> set[int]:
        sampler = ClipSampler(read_annotations(path), str(tmp_path), clip_len,
                              dataclasses.replace(still, frame_step=frame_step))
        seen = set()
        for seed in range(30):
            x = np.array([kp[0, 9, 0] for kp in sampler.sample(np.random.default_rng(seed)).keypoints])
            frames = np.round((x - 10) / 6).astype(int)
            assert frames.min() >= 0 and frames.max() <= 8  # never past the video's end
            gaps = set(np.diff(frames).tolist())
            assert len(gaps) == 1  # one step for the whole clip
            seen |= gaps
        return seen

    assert steps(3, 1) == {1}
    assert steps(3, 3) == {1, 2, 3}
    assert steps(5, 3) == {1, 2}  # a step of 3 would need 13 frames
    assert steps(9, 3) == {1}


def test_reader_errors_are_one_line_posevid_errors(tmp_path):
    with pytest.raises(PosevidError, match="not found"):
        read_annotations(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(PosevidError, match="not valid JSON"):
        read_annotations(str(bad))
    bad.write_text(json.dumps({"foo": 1}))
    with pytest.raises(PosevidError, match="COCO-style"):
        read_annotations(str(bad))


def test_decoded_videos_are_cached_within_a_byte_budget(clip_factory, monkeypatch):
    """Random-frame training reads frames of many videos in turn: each video is decoded once and kept
    while the budget allows; beyond it the least recently used video goes, never the one just read."""
    from posevid.data import readers
    from posevid.data.readers import FrameRecord, load_frame

    a, b, c = (clip_factory(name, frames=3) for name in ("a.mp4", "b.mp4", "c.mp4"))
    monkeypatch.setattr(readers, "_video_cache", readers.OrderedDict())
    none = np.zeros((0, 17, 3))
    frame = lambda name, t: load_frame(str(a.parent), FrameRecord(0, f"{name}#{t}", t, 160, 120, none,
                                                                  np.zeros(0), np.zeros((0, 4)), np.zeros(0)))
    first = frame("a.mp4", 0)
    assert frame("a.mp4", 0) is first and frame("a.mp4", 2).shape == (120, 160, 3)
    frame("b.mp4", 1)
    assert list(readers._video_cache) == [str(a), str(b)]
    one_video = readers._video_bytes(readers._video_cache[str(a)])
    monkeypatch.setattr(readers, "VIDEO_CACHE_BYTES", one_video)  # room for one video only
    assert frame("a.mp4", 1) is not None and list(readers._video_cache) == [str(b), str(a)]  # a used last
    frame("c.mp4", 0)
    assert list(readers._video_cache) == [str(c)]
    assert frame("a.mp4", 0) is not first  # evicted, so decoded again


def test_preload_decodes_videos_up_to_the_budget(clip_factory, monkeypatch):
    """Preloading fills the cache before data-loading workers fork, so they share the frames."""
    from posevid.data import readers
    from posevid.data.readers import FrameRecord, VideoRecord, load_frame, preload_videos

    paths = [clip_factory(name, frames=2) for name in ("p.mp4", "q.mp4", "r.mp4")]
    monkeypatch.setattr(readers, "_video_cache", readers.OrderedDict())
    none = np.zeros((0, 17, 3))
    record = lambda name, t: FrameRecord(0, f"{name}#{t}", t, 160, 120, none, np.zeros(0), np.zeros((0, 4)),
                                         np.zeros(0))  # noqa: E731
    videos = [VideoRecord(i, [record(p.name, 0), record(p.name, 1)]) for i, p in enumerate(paths)]
    monkeypatch.setattr(readers, "VIDEO_CACHE_BYTES", 2 * 2 * 120 * 160 * 3)  # two 2-frame videos
    assert preload_videos(str(paths[0].parent), videos, threads=2) == 2
    assert list(readers._video_cache) == [str(paths[0]), str(paths[1])]
    cached = readers._video_cache[str(paths[1])][1]
    assert load_frame(str(paths[0].parent), record("q.mp4", 1)) is cached  # no second decode
    assert preload_videos(str(paths[0].parent), videos, threads=2) == 0  # nothing left that fits
