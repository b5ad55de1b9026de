"""The fixed evaluation splits `front` and `side`, committed as data inside the package.

Each split is `splits/<name>/annotations.json` (COCO keypoints, PoseTrack-style videos and track ids)
and `splits/<name>/videos/NNNNNN.mp4` (40 clips of 32 frames, 384×288, 30 fps, H.264 yuv420p as the
generator wrote them: crf 18–32 drawn per clip, preset veryfast). `splits/SHA256SUMS` pins every file
(`sha256sum -c` format); `split_dir` checks it before an evaluation reads anything, so reading a split
needs neither the synthetic-data extras nor the Debian photos.

The splits were made by `synth.generate` with the configs below (`python -m posevid.data.splits`
rebuilds them; it needs `make install-train`). Held out from training: body shapes
(`synth.eval_phenotypes`), the last quarter of every mocap file, one background photo in five of
backgrounds.txt (15 photos, pinned by checksum below), and the seeds below. The generator keeps drawing
training data, and tests/test_data_synth.py checks that it still reproduces these annotations.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

from posevid.errors import PosevidError
from posevid.outputs import sha256_file

SPLITS_ROOT = Path(__file__).resolve().parent / "splits"
MANIFEST = "SHA256SUMS"  # in SPLITS_ROOT: "<sha256>  <split>/<file>" per line

# What the committed splits were generated from (kept so the generator test and a rebuild can use them).
# Written as plain arguments so that reading a split does not import the generator.
EVAL_SPLIT_ARGS = {
    "front": dict(split="front", num_clips=40, num_frames=32, width=384, height=288, seed=1_000_001),
    "side": dict(split="side", num_clips=40, num_frames=32, width=384, height=288, seed=2_000_002),
}

# The annotation checksum cannot see pixels, so a rebuild pins the photos the splits draw on
# (`synth.background_paths`, the same for both): sha256 over each file's name and hex sha256, in order,
# as Debian 12 installs them.
EXPECTED_PHOTOS = (15, "cc72198e7fbae7d76888d6a82578a1c2da61733e657c55d22185c98bc1070229")


def eval_split_config(name: str):
    """The SynthConfig that generated split `name`."""
    from posevid.data.synth import SynthConfig

    check_name(name)
    return SynthConfig(**EVAL_SPLIT_ARGS[name])


def check_name(name: str) -> None:
    if name not in EVAL_SPLIT_ARGS:
        raise PosevidError(f"unknown evaluation split {name!r}: choose one of {', '.join(EVAL_SPLIT_ARGS)}")


def read_manifest(root: str | os.PathLike | None = None) -> dict[str, str]:
    """{relative path: sha256} from root/SHA256SUMS (root: SPLITS_ROOT by default)."""
    path = Path(root if root is not None else SPLITS_ROOT) / MANIFEST
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise PosevidError(f"cannot read the evaluation splits' checksums {path} ({e.strerror}): "
                           "reinstall posevid") from None
    out = {}
    for line in lines:
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise PosevidError(f"{path} is damaged (line {line[:40]!r}): reinstall posevid")
        out[name] = digest
    return out


def split_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """The folder of evaluation split `name` (front|side) under root (SPLITS_ROOT by default), after
    checking every file of it against the manifest; PosevidError naming the first missing or changed file."""
    check_name(name)
    root = Path(root if root is not None else SPLITS_ROOT)
    files = {k: v for k, v in read_manifest(root).items() if k.startswith(name + "/")}
    if not files:
        raise PosevidError(f"{root / MANIFEST} lists no files of the {name} split: reinstall posevid")
    for rel, expected in sorted(files.items()):
        path = root / rel
        if not path.is_file():
            raise PosevidError(f"{path} is missing (the {name} split is incomplete): reinstall posevid")
        got = sha256_file(str(path))
        if got != expected:
            raise PosevidError(f"{path} does not match its checksum (sha256 {got[:12]}, expected "
                               f"{expected[:12]}): the {name} split was changed; reinstall posevid")
    return root / name


def photos_checksum(paths: list[str]) -> str:
    listing = "".join(f"{os.path.basename(path)}\0{sha256_file(path)}\n" for path in paths)
    return hashlib.sha256(listing.encode()).hexdigest()


def build_split(name: str, folder: str | os.PathLike, workers: int = 1, progress=None) -> dict:
    """Generate split `name` into `folder` (which must not exist) from its pinned photos; returns the
    annotation dict. Needs the synthetic-data extras and Debian packages (`make install-train`)."""
    from posevid.data.motion import list_bvh_files, list_deepmimic_files
    from posevid.data.synth import background_paths, generate

    config = eval_split_config(name)
    folder = Path(folder)
    if folder.exists():
        raise PosevidError(f"{folder} already exists: remove it or choose another folder")
    if not (list_bvh_files() and list_deepmimic_files()):
        raise PosevidError(f"building the {name} split needs the motion capture that `make install-train` "
                           "installs (Debian assimp-testmodels and the pybullet package)")
    photos = background_paths(name)
    if (len(photos), photos_checksum(photos)) != EXPECTED_PHOTOS:
        raise PosevidError(f"the {name} split needs its {EXPECTED_PHOTOS[0]} pinned background photos, but "
                           f"{len(photos)} are installed here or some differ: install the Debian packages "
                           "of posevid/data/backgrounds.txt (`make install-train`)")
    return generate(config, str(folder), workers=workers, progress=progress)


def write_manifest(root: str | os.PathLike | None = None) -> Path:
    """(Re)write root/SHA256SUMS over every split file under root (SPLITS_ROOT by default)."""
    root = Path(root if root is not None else SPLITS_ROOT)
    files = sorted(p.relative_to(root).as_posix() for name in EVAL_SPLIT_ARGS
                   for p in (root / name).rglob("*") if p.is_file())
    path = root / MANIFEST
    path.write_text("".join(f"{sha256_file(str(root / rel))}  {rel}\n" for rel in files))
    return path


def main(argv: list[str]) -> None:
    """python -m posevid.data.splits [ROOT]: rebuild both splits under ROOT (default: the package's
    own folder, whose split folders must be removed first) and rewrite its manifest."""
    root = Path(argv[0]) if argv else SPLITS_ROOT
    for name in EVAL_SPLIT_ARGS:
        if (root / name).exists():
            raise PosevidError(f"{root / name} exists: remove it first to rebuild it")
    for name in EVAL_SPLIT_ARGS:
        partial = root / f"{name}.partial"
        if partial.exists():
            shutil.rmtree(partial)  # our own unfinished build, never a user folder
        build_split(name, partial, workers=os.cpu_count() or 1,
                    progress=lambda done, total, name=name: print(f"{name}: {done}/{total} clips", flush=True))
        os.replace(partial, root / name)
    print(write_manifest(root))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except PosevidError as e:
        sys.exit(f"error: {e}")
