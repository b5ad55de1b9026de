"""The committed evaluation splits (posevid/data/splits): checked against their manifest before use,
read with no generator, no anny and no Debian package. (That the generator still reproduces them is
tests/test_data_synth.py's job: it needs the synth extra.)"""
import json
import shutil

import pytest

from posevid.data import splits
from posevid.errors import PosevidError


def test_committed_splits_pass_their_manifest_and_hold_40_clips_of_32_frames():
    manifest = splits.read_manifest()
    for name, args in splits.EVAL_SPLIT_ARGS.items():
        folder = splits.split_dir(name)
        assert folder == splits.SPLITS_ROOT / name
        data = json.loads((folder / "annotations.json").read_text())
        assert len(data["videos"]) == args["num_clips"] == 40
        assert len(data["images"]) == args["num_clips"] * args["num_frames"]
        assert data["info"]["config"]["seed"] == args["seed"] and data["info"]["config"]["split"] == name
        for v in data["videos"]:  # every clip the annotations name is pinned by the manifest
            assert f"{name}/{v['file_name']}" in manifest
        assert f"{name}/annotations.json" in manifest


def _copy(tmp_path):
    root = tmp_path / "splits"
    shutil.copytree(splits.SPLITS_ROOT, root)
    return root


@pytest.mark.parametrize("damage", ["changed_video", "missing_video", "changed_annotations", "missing_manifest",
                                    "damaged_manifest"])
def test_a_changed_or_missing_file_is_named_in_one_line(tmp_path, damage):
    root = _copy(tmp_path)
    assert splits.split_dir("front", root) == root / "front"
    target = {"changed_video": root / "front" / "videos" / "000003.mp4",
              "missing_video": root / "front" / "videos" / "000003.mp4",
              "changed_annotations": root / "front" / "annotations.json",
              "missing_manifest": root / splits.MANIFEST,
              "damaged_manifest": root / splits.MANIFEST}[damage]
    if damage.startswith("missing"):
        target.unlink()
    elif damage == "damaged_manifest":
        target.write_text(target.read_text() + "not a checksum line\n")
    else:
        with open(target, "r+b") as f:  # one byte flipped
            f.seek(100)
            b = f.read(1)
            f.seek(100)
            f.write(bytes([b[0] ^ 1]))
    with pytest.raises(PosevidError) as e:
        splits.split_dir("front", root)
    message = str(e.value)
    assert str(target) in message and "\n" not in message and "reinstall posevid" in message
    if damage.endswith("video") or damage == "changed_annotations":
        assert splits.split_dir("side", root) == root / "side"  # the other split is untouched


def test_unknown_split_is_refused():
    with pytest.raises(PosevidError, match="unknown evaluation split 'back': choose one of front, side"):
        splits.split_dir("back")


def test_write_manifest_pins_what_is_there(tmp_path):
    root = _copy(tmp_path)
    assert splits.write_manifest(root).read_text() == (splits.SPLITS_ROOT / splits.MANIFEST).read_text()
