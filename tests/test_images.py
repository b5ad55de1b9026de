"""Still images through the real `posevid infer`: an annotated image of the same format and the keypoints
file of the video schema (one frame); bad images are one-line errors that leave no output."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from posevid.config import model_config
from posevid.model import DEKR, save_checkpoint
from posevid.outputs import read_keypoints


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = DEKR(model_config("lite"))
    with torch.no_grad():
        model.head_heatmap[1].bias.fill_(0.5)  # peaks everywhere: people are found, so something is drawn
    path = tmp_path_factory.mktemp("w") / "test_lite.pt"
    save_checkpoint(path, model)
    return path


def posevid(*args, cwd):
    r = subprocess.run([sys.executable, "-m", "posevid", "infer", *map(str, args)], capture_output=True,
                       text=True, cwd=cwd)
    return r.returncode, r.stdout, r.stderr


def photo(path, width=160, height=120, exif_orientation=None):
    """A test pattern with a white block in its top-left corner (as stored)."""
    rgb = np.full((height, width, 3), 60, np.uint8)
    rgb[:, :, 1] = np.linspace(0, 255, width, dtype=np.uint8)[None]
    rgb[: height // 4, : width // 4] = 255
    im = Image.fromarray(rgb)
    if exif_orientation is None:
        im.save(path)
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        im.save(path, exif=exif)
    return path


def test_image_gives_annotated_image_and_one_frame_keypoints(weights, tmp_path):
    src = photo(tmp_path / "photo.jpg")
    code, stdout, stderr = posevid(src, "--weights", weights, "--out", "out", "--threshold", "0",
                                   "--format", "coco", cwd=tmp_path)
    assert code == 0, stderr
    assert stdout.count("ok ") == 1 and "1 frames" in stdout
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["photo.coco.json", "photo.pose.jpg", "photo.pose.jsonl"]
    header, frames = read_keypoints(out / "photo.pose.jsonl")
    frames = list(frames)
    assert header["frame_count"] == 1 and header["source_frame_count"] == 1 and header["fps"] is None
    assert (header["width"], header["height"], header["rotation"]) == (160, 120, 0)
    assert header["model"] == "lite" and header["keypoint_names"][0] == "nose"
    assert [f["frame"] for f in frames] == [0] and frames[0]["persons"]
    annotated = cv2.imread(str(out / "photo.pose.jpg"))
    assert annotated.shape == (120, 160, 3)
    original = cv2.imread(str(src))
    assert np.abs(annotated.astype(int) - original.astype(int)).max() > 100  # skeletons were drawn
    coco = json.loads((out / "photo.coco.json").read_text())
    assert {r["image_id"] for r in coco} == {0} and len(coco) == len(frames[0]["persons"])


def test_folders_and_globs_of_images_keep_each_format(weights, tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    photo(folder / "a.png")
    photo(folder / "b.JPG")
    (folder / "notes.txt").write_text("not an image")
    code, stdout, stderr = posevid(folder, "--weights", weights, "--out", "o1", cwd=tmp_path)
    assert code == 0, stderr
    assert stdout.count("ok ") == 2
    names = sorted(p.name for p in (tmp_path / "o1").iterdir())
    assert names == ["a.pose.jsonl", "a.pose.png", "b.pose.JPG", "b.pose.jsonl"]
    assert not list(tmp_path.rglob("*.mp4"))
    assert cv2.imread(str(tmp_path / "o1" / "a.pose.png")).shape == (120, 160, 3)
    code, stdout, stderr = posevid(folder / "*.png", "--weights", weights, "--out", "o2", "--no-video",
                                   cwd=tmp_path)
    assert code == 0 and stdout.count("ok ") == 1, stderr
    assert sorted(p.name for p in (tmp_path / "o2").iterdir()) == ["a.pose.jsonl"]


def test_exif_orientation_is_applied(weights, tmp_path):
    photo(tmp_path / "phone.jpg", exif_orientation=6)  # stored landscape, shown turned 90° clockwise
    # threshold 1: no pose is reported, so nothing is drawn over the pattern
    code, _, stderr = posevid(tmp_path / "phone.jpg", "--weights", weights, "--out", "out", "--threshold", "1",
                              cwd=tmp_path)
    assert code == 0, stderr
    header, _ = read_keypoints(tmp_path / "out" / "phone.pose.jsonl")
    assert (header["width"], header["height"], header["rotation"]) == (120, 160, 90)
    shown = cv2.imread(str(tmp_path / "out" / "phone.pose.jpg"), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    assert shown.shape == (160, 120, 3)  # written upright, as the keypoints are
    assert shown[:20, -15:].min() > 200 and shown[:20, :15].max() < 200  # the stored top-left block is now top right


def test_bad_images_are_one_line_errors_and_leave_no_output(weights, tmp_path):
    good = photo(tmp_path / "good.jpg")
    data = good.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    png = photo(tmp_path / "full.png").read_bytes()
    (tmp_path / "half.png").write_bytes(png[: len(png) // 2])
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    bad = ["cut.jpg", "half.png", "text.jpg", "empty.png", "missing.jpg"]
    code, stdout, stderr = posevid(*bad, "good.jpg", "--weights", weights, "--out", "out", cwd=tmp_path)
    assert code == 1
    assert "Traceback" not in stderr
    failed = stderr.strip().splitlines()
    assert len(failed) == len(bad) and all(line.startswith("FAILED ") for line in failed), stderr
    for name, line in zip(bad, failed):
        assert name in line
    assert stdout.count("ok ") == 1  # the good image is still processed
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.pose.jpg", "good.pose.jsonl"]


def test_interrupted_image_write_leaves_no_partial_file(tmp_path, monkeypatch):
    from posevid import images

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(images.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        images.write_image(tmp_path / "photo.pose.jpg", np.zeros((8, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []
