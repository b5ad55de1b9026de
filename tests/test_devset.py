"""The real-photo dev set: the annotation file's structure always; the photos where installed."""
import json

import pytest

from posevid.data import devset
from posevid.skeleton import COCO


@pytest.fixture(scope="module")
def data():
    with open(devset.ANNOTATIONS) as f:
        return json.load(f)


def test_annotation_file_structure(data):
    (cat,) = data["categories"]
    assert cat["name"] == "person" and cat["keypoints"] == list(COCO.names)
    assert len(cat["skeleton"]) == len(COCO.edges)
    ids = [img["id"] for img in data["images"]]
    assert len(ids) == len(set(ids)) and len(ids) >= 30
    images = {img["id"]: img for img in data["images"]}
    for img in data["images"]:
        assert img["file_name"].startswith("/") and len(img["sha256"]) == 64
        assert img["width"] > 0 and img["height"] > 0
    ann_ids = [a["id"] for a in data["annotations"]]
    assert len(ann_ids) == len(set(ann_ids))
    people = 0
    for a in data["annotations"]:
        img = images[a["image_id"]]
        assert len(a["keypoints"]) == 51 and a["category_id"] == cat["id"]
        x, y, w, h = a["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0
        assert x + w <= img["width"] + 1e-6 and y + h <= img["height"] + 1e-6
        assert a["area"] > 0
        vis = [a["keypoints"][3 * j + 2] for j in range(17)]
        assert a["num_keypoints"] == sum(v > 0 for v in vis)
        for j in range(17):
            if vis[j] > 0:
                kx, ky = a["keypoints"][3 * j:3 * j + 2]
                assert 0 <= kx <= img["width"] and 0 <= ky <= img["height"]
        if a["iscrowd"]:
            assert a["num_keypoints"] == 0
        people += a["num_keypoints"] > 0
    assert people >= 50


def test_describe_names_missing_and_changed_in_one_line():
    line = devset.describe(["/a.jpg"], ["/b.png"], 3)
    assert "\n" not in line and "/a.jpg" in line and "/b.png" in line and "1 missing" in line
    assert devset.describe([], [], 3) == "dev set: all 3 photos present and unchanged"


def test_check_photos_on_a_temporary_set(tmp_path):
    good = tmp_path / "good.jpg"
    good.write_bytes(b"abc")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"xyz")
    import hashlib
    sha = hashlib.sha256(b"abc").hexdigest()
    ann = tmp_path / "a.json"
    ann.write_text(json.dumps({"images": [
        {"id": 1, "file_name": str(good), "sha256": sha},
        {"id": 2, "file_name": str(bad), "sha256": sha},
        {"id": 3, "file_name": str(tmp_path / "gone.jpg"), "sha256": sha}]}))
    missing, changed = devset.check_photos(ann)
    assert missing == [str(tmp_path / "gone.jpg")] and changed == [str(bad)]
    assert devset.main([str(ann)]) == 1


def test_installed_photos_match_their_checksums(data):
    missing, changed = devset.check_photos()
    if len(missing) == len(data["images"]):
        pytest.skip("dev-set photos not installed (run `make install-devset`)")
    assert not missing and not changed, devset.describe(missing, changed, len(data["images"]))
