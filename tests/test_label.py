"""Teacher-labelled training data (posevid.data.label): the per-frame rules by hand, and the whole path from
a video to an annotation file that training reads, with a stand-in teacher (the real one is tested in
test_teacher.py where it is installed)."""
import json

import cv2
import numpy as np
import pytest

from posevid.data import label as L
from posevid.data.readers import ClipSampler, load_frame, read_annotations
from posevid.data.synth import write_video
from posevid.errors import PosevidError


def _pose(x0, y0, score=0.9):
    kp = np.zeros((17, 3))
    kp[:, 0] = x0 + np.arange(17) * 2.0
    kp[:, 1] = y0 + np.arange(17) * 5.0
    kp[:, 2] = score
    return kp


def test_frame_labels_people_keypoints_and_ignore_regions():
    a = _pose(10, 10)
    a[3:5, 2] = 0.2  # two keypoints under the keypoint threshold: unlabelled
    a[16, :2] = (-5, 50)  # outside the frame: unlabelled
    b = _pose(100, 20)  # a half-seen person (score 0.2): an ignore box
    c = _pose(150, 20)
    c[3:, 2] = 0.0  # confident, but only 3 keypoints: an ignore box, not a person
    d = _pose(0, 0)  # under min_ignore_score: dropped
    people, ignore = L.frame_labels(np.stack([a, b, c, d]), np.array([0.8, 0.2, 0.9, 0.05]), (120, 200))

    assert len(people) == 1 and len(ignore) == 2
    kp = np.array(people[0]["keypoints"]).reshape(17, 3)
    labelled = np.ones(17, bool)
    labelled[[3, 4, 16]] = False
    assert (kp[labelled, 2] == 2).all() and (kp[~labelled] == 0).all()
    np.testing.assert_allclose(kp[labelled, :2], a[labelled, :2])
    assert people[0]["num_keypoints"] == 14
    # The box spans the labelled keypoints: x 10..40 (keypoint 15), y 10..85.
    np.testing.assert_allclose(people[0]["bbox"], [10, 10, 30, 75])
    assert people[0]["area"] == pytest.approx(30 * 75)
    # b: keypoint box x 100..132, y 20..100 (size 80), grown by 0.2 × 80 = 16 on each side.
    np.testing.assert_allclose(ignore[0], [84, 4, 148, 4, 148, 116, 84, 116])


class _StandIn:
    """Answers like Teacher: one person whose pose scales with the image; on their crop, someone else
    scoring higher first, then the same person scoring higher than on the whole image."""

    def multi_size(self, image, sizes, min_score):
        h, w = image.shape[:2]
        kp = _pose(w * 0.25, h * 0.1)
        kp[:, :2] *= [w / 200, h / 200]
        return kp[None], np.array([0.6])

    def on_crop(self, image, crop, min_score, size=None):
        kp, _ = self.multi_size(image, (), min_score)
        other = kp + [60.0, 0.0, 0.0]
        return np.concatenate([other, kp + [1.0, 0.0, 0.0]]), np.array([0.9, 0.7])


def test_label_footage_writes_what_training_reads(tmp_path):
    src = tmp_path / "src.mp4"
    rng = np.random.default_rng(0)
    write_video(str(src), [rng.integers(0, 255, (400, 300, 3), np.uint8) for _ in range(5)], 10.0, 18)
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), rng.integers(0, 255, (100, 120, 3), np.uint8))
    out = tmp_path / "labelled"
    cfg = L.LabelConfig(max_side=200, frame_step=2)
    data = L.label_footage([str(src), str(photo)], out, _StandIn(), cfg)

    assert [i["file_name"] for i in data["images"]] == ["videos/000001.mp4#0", "videos/000001.mp4#1",
                                                         "videos/000001.mp4#2", "images/000002.jpg"]
    written = json.loads((out / "annotations.json").read_text())
    assert written["images"] == data["images"] and written["annotations"] == data["annotations"]
    videos = read_annotations(str(out / "annotations.json"))
    assert [len(v.frames) for v in videos] == [3, 1]  # the photo is a one-frame video, at its own size
    assert load_frame(str(out), videos[1].frames[0]).shape == (100, 120, 3)
    rec = videos[0].frames[2]
    assert load_frame(str(out), rec).shape == (200, 150, 3)  # longer side 400 → 200
    # The crop's pose of the same person (shifted 1 px right) scored higher and was kept, not the other one.
    expected = _pose(150 * 0.25, 200 * 0.1)[:, :2] * [150 / 200, 1.0] + [1.0, 0.0]
    np.testing.assert_allclose(rec.keypoints[0, :, :2], expected, atol=0.01)
    clip = ClipSampler(videos, str(out), clip_len=2).sample(np.random.default_rng(1))
    assert clip.frames.shape[0] == 2 and len(clip.keypoints[0]) == 1

    with pytest.raises(PosevidError, match="exists already"):
        L.label_footage([str(src)], out, _StandIn(), cfg)


class _TwoPeople(_StandIn):
    """Two people in every frame, none found again on their crops."""

    def multi_size(self, image, sizes, min_score):
        h, w = image.shape[:2]
        return np.stack([_pose(w * 0.1, h * 0.1), _pose(w * 0.6, h * 0.1)]), np.array([0.8, 0.7])

    def on_crop(self, image, crop, min_score, size=None):
        return np.zeros((0, 17, 3)), np.zeros(0)


def test_label_footage_numbers_people_consecutively(tmp_path):
    src = tmp_path / "src.mp4"
    write_video(str(src), [np.zeros((400, 300, 3), np.uint8)] * 3, 10.0, 18)
    data = L.label_footage([str(src)], tmp_path / "out", _TwoPeople())
    assert [a["id"] for a in data["annotations"]] == list(range(1, 7))
    assert [a["image_id"] for a in data["annotations"]] == [1, 1, 2, 2, 3, 3]


def test_cli_label_refuses_missing_files_and_a_missing_teacher_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from posevid.cli import app

    video = tmp_path / "v.mp4"
    write_video(str(video), [np.zeros((64, 64, 3), np.uint8)] * 2, 10.0, 18)
    for args, message in [([str(tmp_path / "nope.mp4")], "not found: "),
                          ([str(video), "--teacher", str(tmp_path / "none.onnx")], "teacher"),
                          ([str(video), "--tile", "16"], "--tile")]:
        result = CliRunner().invoke(app, ["data", "label", *args, "--out", str(tmp_path / "out")])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.output.startswith("error: ") and message in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing half-written
    result = CliRunner().invoke(app, ["data", "teacher-score", str(tmp_path / "a.json"), "--teacher",
                                      str(tmp_path / "none.onnx")])
    assert result.exit_code == 1 and result.output.startswith("error: ") and result.output.count("\n") == 1


def test_teacher_results_score_the_teacher_against_the_labels(tmp_path):
    """teacher-score's path: every labelled frame through the teacher, then COCO AP: labels given back
    score 1, labels moved by a tenth of the person score less."""
    from posevid.evaluate.accuracy import coco_keypoint_ap

    rng = np.random.default_rng(0)
    poses = {}
    images, anns = [], []
    for i in (1, 2):
        cv2.imwrite(str(tmp_path / f"p{i}.png"), rng.integers(0, 255, (240, 200, 3), np.uint8))
        kp = _pose(20 * i, 10)
        kp[:, 2] = 2
        poses[i] = kp
        images.append({"id": i, "file_name": f"p{i}.png", "width": 200, "height": 240})
        anns.append({"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "num_keypoints": 17,
                     "keypoints": kp.reshape(-1).tolist(), "bbox": [20 * i, 10, 32, 80], "area": 32 * 80})
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "person"}]}))

    class Oracle:
        shift = 0.0
        sizes = []

        def __call__(self, image, size=None):
            self.sizes.append(size)
            i = 1 if image.tobytes() == cv2.imread(str(tmp_path / "p1.png")).tobytes() else 2
            kp = poses[i].copy()
            kp[:, :2] += self.shift
            kp[:, 2] = 0.9
            return kp[None], np.array([0.9])

    teacher = Oracle()
    gt, results = L.teacher_results(path, teacher, size=384)
    assert teacher.sizes == [384, 384] and len(results) == 2
    assert coco_keypoint_ap(gt, results)["AP"] == pytest.approx(1.0)
    teacher.shift = 9.0  # about a tenth of the person's size
    assert coco_keypoint_ap(*L.teacher_results(path, teacher))["AP"] < 0.9


def test_tiles_hold_every_small_person_whole():
    for hw in [(200, 768), (600, 600), (100, 100), (257, 513)]:
        t = np.array(L.tiles(hw, 256))
        assert (t[:, :2] >= 0).all() and (t[:, 2] <= hw[1]).all() and (t[:, 3] <= hw[0]).all()
        for x in range(0, hw[1] - 127, 7):  # any 128 × 128 box lies inside one tile
            for y in range(0, hw[0] - 127, 7):
                x1, y1 = min(x + 128, hw[1]), min(y + 128, hw[0])
                assert ((t[:, 0] <= x) & (t[:, 1] <= y) & (t[:, 2] >= x1) & (t[:, 3] >= y1)).any(), (hw, x, y)


class _Crowd:
    """A row of 10 people; like MoveNet MultiPose, each run returns at most 6: those whole in its view."""

    def __init__(self):
        self.people = [_pose(20 + 70 * i, 20) * [0.5, 1.0, 1.0] + [10 * i, 0, 0] for i in range(10)]

    def _seen(self, x0, y0, x1, y1):
        kp = [p - [x0, y0, 0] for p in self.people
              if p[:, 0].min() >= x0 and p[:, 0].max() < x1 and p[:, 1].min() >= y0 and p[:, 1].max() < y1][:6]
        return np.array(kp).reshape(-1, 17, 3), np.full(len(kp), 0.8)

    def multi_size(self, image, sizes, min_score):
        return self._seen(0, 0, image.shape[1], image.shape[0])

    def on_crop(self, image, crop, min_score, size=None):
        kp, s = self._seen(*crop)
        return kp + [crop[0], crop[1], 0], s


def test_tiled_teacher_finds_more_than_six_people():
    image = np.zeros((200, 800, 3), np.uint8)
    assert len(L.teacher_poses(_Crowd(), image)[0]) == 6
    kp, scores = L.teacher_poses(_Crowd(), image, L.LabelConfig(tile=256))
    assert len(kp) == 10
    found = sorted(kp[:, 0, 0])
    np.testing.assert_allclose(found, sorted(p[0, 0] for p in _Crowd().people))
