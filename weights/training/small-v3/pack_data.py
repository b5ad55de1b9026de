"""Packs synthetic training sets small enough to travel to the GPU machine (64 MiB with the repository).

    python weights/training/small-v3/pack_data.py /work/data/train-v1 /work/data/train-v2 --into .dev/data

Videos are copied as they are. annotations.json loses the segmentations of people with labelled keypoints
(training reads segmentations only for crowds and unlabelled people) and is xz-compressed; unpack it
there with `python3 -c "import lzma; ..."` (see README.md).
"""
import argparse
import json
import lzma
import shutil
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sets", nargs="+", type=Path)
    ap.add_argument("--into", type=Path, required=True)
    args = ap.parse_args()
    for src in args.sets:
        dst = args.into / src.name
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src / "videos", dst / "videos")
        data = json.loads((src / "annotations.json").read_text())
        for a in data["annotations"]:
            if not a.get("iscrowd", 0) and any(v > 0 for v in a["keypoints"][2::3]):
                a.pop("segmentation", None)
        raw = json.dumps(data, separators=(",", ":")).encode()
        (dst / "annotations.json.xz").write_bytes(lzma.compress(raw, preset=9))


if __name__ == "__main__":
    main()
