import contextlib
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO as PyCOCO
from pycocotools.cocoeval import COCOeval

from posevid.errors import PosevidError
from posevid.outputs import (
    SCHEMA,
    CocoResultsWriter,
    KeypointsWriter,
    check_writable_dir,
    coco_results_from_keypoints,
    frame_arrays,
    partial_path,
    read_keypoints,
    resume_keypoints,
    sha256_file,
)
from posevid.skeleton import COCO

HEADER = {"source": "clip.mp4", "model": "dekr-w32", "weights_sha256": "ab" * 32, "start_frame": 0,
          "stride": 1, "fps": 30.0}


def _poses(P, seed=0):
    rng = np.random.default_rng(seed)
    kp = np.concatenate([rng.uniform(0, 600, (P, 17, 2)), rng.uniform(0, 1, (P, 17, 1))], axis=2)
    return kp, rng.uniform(0, 1, P), np.arange(1, P + 1)


def _write(w, frames, start=0):
    for t in range(start, start + frames):
        kp, sc, ids = _poses(t % 3, seed=t)
        w.write_frame(t, t * 33.333333, kp, sc, ids, nms_score=0.41)


def test_jsonl_schema_and_partial_rename(tmp_path):
    path = tmp_path / "clip.jsonl"
    w = KeypointsWriter(path, HEADER)
    kp, sc, ids = _poses(2)
    kp[1, 4] = (np.nan, 3.0, 0.5)  # non-finite keypoints become (0, 0, 0): JSON has no NaN
    w.write_frame(12, 400.0, kp, sc, ids, nms_score=0.41)
    w.write_frame(13, 433.3333333, np.zeros((0, 17, 3)), np.zeros(0), np.zeros(0, int), 0.41, False, True)
    # while writing, only the partial exists, and each frame is already flushed to it
    assert not path.exists() and partial_path(path) == tmp_path / "clip.jsonl.partial"
    assert len(partial_path(path).read_text().splitlines()) == 3
    assert w.close() == path
    assert path.exists() and not partial_path(path).exists()

    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["type"] == "header" and header["schema"] == SCHEMA and header["model"] == "dekr-w32"
    f12 = json.loads(lines[1])
    assert set(f12) == {"frame", "pts_ms", "nms_score", "inferred", "scene_cut", "persons"}
    assert f12["frame"] == 12 and f12["pts_ms"] == 400.0 and f12["nms_score"] == 0.41
    assert f12["inferred"] is True and f12["scene_cut"] is False
    p0 = f12["persons"][0]
    assert set(p0) == {"track_id", "score", "keypoints"} and p0["track_id"] == 1
    assert np.asarray(p0["keypoints"]).shape == (17, 3)
    np.testing.assert_allclose(p0["keypoints"], np.round(kp[0], 4), atol=0.005 + 1e-9)
    assert p0["keypoints"][0][0] == round(kp[0, 0, 0], 2) and p0["score"] == round(sc[0], 4)
    assert f12["persons"][1]["keypoints"][4] == [0.0, 0.0, 0.0]
    assert json.loads(lines[2]) == {"frame": 13, "pts_ms": 433.333, "nms_score": 0.41, "inferred": False,
                                    "scene_cut": True, "persons": []}

    h, frames = read_keypoints(path)
    assert h == header
    frames = list(frames)
    k, s, i = frame_arrays(frames[0])
    assert k.shape == (2, 17, 3) and s.shape == (2,) and i.tolist() == [1, 2]


def test_context_manager_interrupt_keeps_partial_error_deletes_it(tmp_path):
    path = tmp_path / "a.jsonl"
    with pytest.raises(KeyboardInterrupt):
        with KeypointsWriter(path, HEADER) as w:
            _write(w, 3)
            raise KeyboardInterrupt
    assert not path.exists() and partial_path(path).exists()
    assert len(partial_path(path).read_text().splitlines()) == 4

    path2 = tmp_path / "b.jsonl"
    with pytest.raises(RuntimeError):
        with KeypointsWriter(path2, HEADER) as w:
            _write(w, 3)
            raise RuntimeError("decoder broke")
    assert not path2.exists() and not partial_path(path2).exists()

    with KeypointsWriter(tmp_path / "c.jsonl", HEADER) as w:
        _write(w, 2)
    assert (tmp_path / "c.jsonl").exists() and not partial_path(tmp_path / "c.jsonl").exists()


def test_resume_after_cut_last_line(tmp_path):
    path = tmp_path / "clip.jsonl"
    w = KeypointsWriter(path, HEADER)
    _write(w, 5)
    w.write_frame(5, 166.7, *_poses(4, seed=99)[:2], np.array([3, 8, 2, 5]), 0.41)
    w.abort(keep_partial=True)
    part = partial_path(path)
    complete = part.read_bytes()
    part.write_bytes(complete + b'{"frame": 6, "pts_ms": 200.0, "persons": [{"track_')  # a crash cut

    assert resume_keypoints(tmp_path / "other.jsonl") is None
    st = resume_keypoints(path, HEADER)
    assert st.frames == 6 and st.last_frame == 5
    assert st.last_track_ids.tolist() == [3, 8, 2, 5] and st.max_track_id == 8
    assert st.last_keypoints.shape == (4, 17, 3) and st.last_scores.shape == (4,)
    assert part.read_bytes() == complete  # the cut line is gone, nothing else

    w = KeypointsWriter.reopen(path, st, HEADER)
    assert w.frames_written == 6
    _write(w, 3, start=6)
    w.replace_header({**HEADER, "frames": 9})
    w.close()
    header, frames = read_keypoints(path)
    assert header["frames"] == 9 and header["type"] == "header"
    assert [f["frame"] for f in frames] == list(range(9))


def test_resume_refuses_another_runs_partial(tmp_path):
    path = tmp_path / "clip.jsonl"
    w = KeypointsWriter(path, HEADER)
    _write(w, 2)
    w.abort(keep_partial=True)
    before = partial_path(path).read_bytes()
    for key, value in [("source", "other.mp4"), ("weights_sha256", "cd" * 32), ("stride", 2),
                       ("start_frame", 10), ("model", "dekr-w48")]:
        with pytest.raises(PosevidError, match="another run") as e:
            resume_keypoints(path, {**HEADER, key: value})
        assert str(partial_path(path)) in str(e.value) and key in str(e.value)
    assert partial_path(path).read_bytes() == before
    st = resume_keypoints(path)
    # the same run, with a Path for the source: compared as written, not refused
    w = KeypointsWriter.reopen(path, st, {**HEADER, "source": Path("clip.mp4")})
    assert w.frames_written == 2
    w.abort(keep_partial=True)
    with pytest.raises(PosevidError, match="another run"):
        KeypointsWriter.reopen(path, st, {**HEADER, "source": "x.mp4"})
    # a header that was itself cut: nothing to resume
    partial_path(path).write_bytes(before[:10])
    assert resume_keypoints(path) is None


def test_resume_refuses_damage_in_the_middle(tmp_path):
    path = tmp_path / "clip.jsonl"
    w = KeypointsWriter(path, HEADER)
    _write(w, 3)
    w.abort(keep_partial=True)
    lines = partial_path(path).read_text().splitlines(keepends=True)
    lines[2] = "garbage\n"
    partial_path(path).write_text("".join(lines))
    with pytest.raises(PosevidError, match=r"clip\.jsonl\.partial:3"):
        resume_keypoints(path)


def test_read_keypoints_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"type": "header", "schema": SCHEMA})
    path.write_text(good + "\n" + json.dumps({"frame": 0, "persons": []}) + "\n{not json\n")
    header, frames = read_keypoints(path)
    assert next(frames)["frame"] == 0
    with pytest.raises(PosevidError) as e:
        next(frames)
    msg = str(e.value)
    assert "bad.jsonl:3" in msg and "\n" not in msg

    path.write_text(json.dumps({"type": "header", "schema": "posevid.keypoints/99"}) + "\n")
    with pytest.raises(PosevidError, match=r"bad\.jsonl:1.*schema"):
        read_keypoints(path)
    path.write_text("[1, 2\n")
    with pytest.raises(PosevidError, match=r"bad\.jsonl:1"):
        read_keypoints(path)
    path.write_text(good + "\n" + json.dumps({"persons": []}) + "\n")
    with pytest.raises(PosevidError, match=r"bad\.jsonl:2"):
        list(read_keypoints(path)[1])
    with pytest.raises(PosevidError, match="missing.jsonl"):
        read_keypoints(tmp_path / "missing.jsonl")


def _gt_coco(image_ids):
    anns = []
    for n, img in enumerate(image_ids):
        kp, _, _ = _poses(1, seed=img)
        kp[0, :, 2] = 2
        x0, y0 = kp[0, :, :2].min(0)
        x1, y1 = kp[0, :, :2].max(0)
        anns.append({"id": n + 1, "image_id": img, "category_id": 1, "iscrowd": 0,
                     "area": float((x1 - x0) * (y1 - y0)), "bbox": [x0, y0, x1 - x0, y1 - y0],
                     "keypoints": kp[0].reshape(-1).tolist(), "num_keypoints": 17})
    return {
        "images": [{"id": i, "width": 640, "height": 480} for i in image_ids],
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO.names), "skeleton": []}],
        "annotations": anns,
    }


def test_coco_results_load_in_pycocotools(tmp_path):
    path = tmp_path / "results.json"
    offset = 1000
    with CocoResultsWriter(path, image_id_offset=offset) as w:
        for t in range(4):
            kp, sc, _ = _poses(1, seed=offset + t)  # exactly the ground truth of image offset + t
            kp[0, :, 2] = 0.9
            w.write_frame(t, kp, sc)
            w.write_frame(t, np.zeros((0, 17, 3)), np.zeros(0))  # empty frames are fine
        assert partial_path(path).exists() and not path.exists()
    assert not partial_path(path).exists()
    items = json.loads(path.read_text())
    assert len(items) == 4 and w.count == 4
    assert set(items[0]) == {"image_id", "category_id", "keypoints", "score"}
    assert len(items[0]["keypoints"]) == 51 and items[0]["category_id"] == 1

    with contextlib.redirect_stdout(io.StringIO()):
        gt = PyCOCO()
        gt.dataset = _gt_coco([offset + t for t in range(4)])
        gt.createIndex()
        dt = gt.loadRes(str(path))
        ev = COCOeval(gt, dt, "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert sorted(dt.getImgIds()) == [offset + t for t in range(4)]
    assert ev.stats[0] == pytest.approx(1.0)  # predictions equal to the ground truth: AP 1


def test_coco_results_abort_and_from_keypoints(tmp_path):
    path = tmp_path / "r.json"
    with pytest.raises(KeyboardInterrupt):
        with CocoResultsWriter(path) as w:
            w.write_frame(0, *_poses(2)[:2])
            raise KeyboardInterrupt
    assert not path.exists() and not partial_path(path).exists()

    kpath = tmp_path / "k.jsonl"
    with KeypointsWriter(kpath, HEADER) as kw:
        _write(kw, 4)  # 0 + 1 + 2 + 0 poses
    assert coco_results_from_keypoints(kpath, path, image_id_offset=5) == 3
    items = json.loads(path.read_text())
    assert [i["image_id"] for i in items] == [6, 7, 7]


def test_check_writable_dir_and_sha256(tmp_path):
    d = check_writable_dir(tmp_path / "a" / "b")
    assert d.is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PosevidError, match=str(blocker / "sub")):
        check_writable_dir(blocker / "sub")
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(PosevidError, match=str(ro)):
                check_writable_dir(ro)
        finally:
            ro.chmod(0o700)

    f = tmp_path / "w.bin"
    f.write_bytes(b"abc" * 1000)
    assert sha256_file(f, chunk_size=7) == hashlib.sha256(b"abc" * 1000).hexdigest()
