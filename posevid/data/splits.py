"""The fixed evaluation splits `front` and `side`: built on first use into a cache folder and checked
against a checksum of their annotations, so every machine evaluates on the same data.

Held out from training: body shapes (`synth.eval_phenotypes`), the last quarter of every mocap file,
one background photo in five of backgrounds.txt (15 photos, pinned by checksum), and the seeds below.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import replace

from posevid.data.motion import list_bvh_files, list_deepmimic_files
from posevid.data.synth import SynthConfig, annotation_checksum, background_paths, generate
from posevid.errors import PosevidError
from posevid.outputs import sha256_file

GENERATOR_VERSION = 1  # bump when the generator changes what it draws; names the cache folder
EVAL_SPLITS = {
    "front": SynthConfig(split="front", num_clips=40, num_frames=32, width=384, height=288, seed=1_000_001),
    "side": SynthConfig(split="side", num_clips=40, num_frames=32, width=384, height=288, seed=2_000_002),
}
# sha256 of the canonical annotations (synth.annotation_checksum), per split, as built with
# anny 0.6.2, numpy 2.4, assimp-testmodels' BVH files and pybullet 3.2.7's DeepMimic clips.
# Any change to what the generator draws must bump GENERATOR_VERSION and re-pin these.
EXPECTED_CHECKSUMS: dict[str, str | None] = {
    "front": "c16c4880e8fe5124d6ee97142c083a453a8db941141538478bbc35e26ea1b67c",
    "side": "1fac09d74d6e68b9f5416adb7b192f88ca5bdab4a621bb607494fd9509d77717",
}

# The annotation checksum cannot see pixels: a missing or changed photo would change every frame of a
# split and no checksum would notice. So the photos the splits draw on (`synth.background_paths`, the
# same for both) are pinned too: sha256 over each file's name and hex sha256, in order, as Debian 12 installs them.
EXPECTED_PHOTOS = (15, "cc72198e7fbae7d76888d6a82578a1c2da61733e657c55d22185c98bc1070229")


def photos_checksum(paths: list[str]) -> str:
    listing = "".join(f"{os.path.basename(path)}\0{sha256_file(path)}\n" for path in paths)
    return hashlib.sha256(listing.encode()).hexdigest()


def default_data_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "posevid", "data")


def split_dir(name: str, data_dir: str | None = None) -> str:
    return os.path.join(data_dir or default_data_dir(), f"{name}-v{GENERATOR_VERSION}")


def verify_split(folder: str, name: str, expected: str | None) -> str:
    """sha256 of folder/annotations.json (canonical form); PosevidError if it is not `expected`."""
    try:
        with open(os.path.join(folder, "annotations.json")) as f:
            got = annotation_checksum(json.load(f))
    except (OSError, ValueError, KeyError) as e:
        raise PosevidError(f"{folder} does not hold a readable {name} split ({e}); delete it to rebuild") from None
    if expected and got != expected:
        raise PosevidError(f"{folder} does not match the {name} split (checksum {got[:12]}, expected "
                           f"{expected[:12]}); delete that folder to rebuild it")
    return got


def ensure_split(name: str, data_dir: str | None = None, workers: int = 1, progress=None,
                 num_clips: int | None = None) -> str:
    """The folder of evaluation split `name` (front|side), generating it first if it is missing.

    Raises PosevidError when an existing or freshly built split does not match the pinned checksum
    (an existing folder is never deleted or overwritten: the message says what to remove).
    num_clips: build fewer clips (tests); such a split is never checked against the pin.
    """
    if name not in EVAL_SPLITS:
        raise PosevidError(f"unknown evaluation split {name!r}: choose one of {', '.join(EVAL_SPLITS)}")
    config = EVAL_SPLITS[name] if num_clips is None else replace(EVAL_SPLITS[name], num_clips=num_clips)
    folder = split_dir(name, data_dir) if num_clips is None else split_dir(name, data_dir) + f"-n{num_clips}"
    expected = EXPECTED_CHECKSUMS[name] if num_clips is None else None
    if os.path.exists(os.path.join(folder, "annotations.json")):
        verify_split(folder, name, expected)
        return folder
    if not (list_bvh_files() and list_deepmimic_files()):
        raise PosevidError(f"building the {name} split needs the motion capture that `make install-synth` "
                           "installs (Debian assimp-testmodels and the pybullet package)")
    if expected:
        photos = background_paths(name)
        if (len(photos), photos_checksum(photos)) != EXPECTED_PHOTOS:
            raise PosevidError(f"the {name} split needs its {EXPECTED_PHOTOS[0]} pinned background photos, but "
                               f"{len(photos)} are installed here or some differ: install the Debian packages "
                               "of posevid/data/backgrounds.txt (`make install-synth`)")
    partial = folder + ".partial"
    if os.path.exists(partial):
        shutil.rmtree(partial)  # our own unfinished build, never a user folder
    data = generate(config, partial, workers=workers, progress=progress)
    got = annotation_checksum(data)
    if expected and got != expected:
        raise PosevidError(f"the {name} split built here differs from the reference (checksum {got[:12]}, "
                           f"expected {expected[:12]}): this machine's numeric libraries give different "
                           f"results; left in {partial}")
    os.replace(partial, folder)
    return folder
