"""Shared fixtures: tiny test clips made with imageio-ffmpeg's bundled ffmpeg.

`clip_factory(...)` makes good clips (testsrc2 pattern with a white block in the top-left corner of
the stored frames, so orientation is easy to check); `bad_clip_factory(kind)` makes the catalogue
of bad inputs every reader must turn into a one-line PosevidError.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

BLOCK_W, BLOCK_H = 4, 4  # the white block covers 1/BLOCK_W of the width, 1/BLOCK_H of the height
BAD_KINDS = (
    "missing",  # path that does not exist
    "directory",  # a folder named like a video
    "empty",  # 0-byte file
    "text",  # a text file named .mp4
    "audio_only",  # mp4 with an audio stream and no video stream
    "no_streams",  # mp4 container with no streams at all (what ffmpeg leaves for zero frames)
    "truncated",  # first 40% of a normal mp4: moov atom (at the end) is missing
    "truncated_faststart",  # first 40% of a +faststart mp4: header intact, frame data cut
)


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _run(args: list[str]) -> None:
    cmd = [_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed making a test clip: {' '.join(cmd)}\n{result.stderr}")


def vfr_pts_ms(index: int) -> int:
    """Presentation time (ms) of frame `index` in a vfr=True clip: gaps grow 20, 40, 60, ... ms."""
    return 10 * index * (index + 1)


def make_clip(
    path: Path,
    width: int = 160,
    height: int = 120,
    frames: int = 12,
    fps: str = "25",
    audio: bool = False,
    rotate: int = 0,
    vfr: bool = False,
    faststart: bool = False,
) -> Path:
    """Write a small H.264 mp4 at `path` (yuv420p; yuv444p for odd sizes, which 4:2:0 cannot hold)."""
    if rotate not in (0, 90, 180, 270):
        raise ValueError(f"rotate must be 0, 90, 180 or 270, got {rotate}")
    path = Path(path)
    # testsrc2 only makes even sizes: make it larger and crop to odd ones.
    vf = f"format=yuv444p,crop={width}:{height}:0:0"
    vf += f",drawbox=x=0:y=0:w=iw/{BLOCK_W}:h=ih/{BLOCK_H}:color=white:t=fill"
    if vfr:
        vf += ",settb=1/1000,setpts=10*N*(N+1)"  # pts in ms, matches vfr_pts_ms()
    pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    source_size = f"{width + width % 2}x{height + height % 2}"
    args = ["-f", "lavfi", "-i", f"testsrc2=size={source_size}:rate={fps}"]
    if audio:
        # As long as the video (vfr clips stretch to ~1.3 s, so add room); no -shortest, which
        # could cut video frames.
        seconds = frames / float(Fraction(fps)) + (1.5 if vfr else 0.0)
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds:.3f}"]
    args += ["-frames:v", str(frames), "-vf", vf, "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", pix_fmt]
    if vfr:
        args += ["-fps_mode", "vfr", "-enc_time_base", "1/1000"]
    if audio:
        args += ["-c:a", "aac", "-b:a", "64k"]
    if faststart:
        args += ["-movflags", "+faststart"]
    if rotate == 0:
        _run([*args, str(path)])
        return path
    plain = path.with_name(path.stem + ".unrotated" + path.suffix)
    _run([*args, str(plain)])
    # -display_rotation is counter-clockwise; `rotate` means clockwise to display.
    _run(["-display_rotation", str(-rotate), "-i", str(plain), "-c", "copy", str(path)])
    plain.unlink()
    return path


def make_bad_clip(kind: str, folder: Path) -> Path:
    """Make one bad input of `kind` (see BAD_KINDS) in `folder` and return its path."""
    folder = Path(folder)
    if kind == "missing":
        return folder / "missing.mp4"
    if kind == "directory":
        path = folder / "folder.mp4"
        path.mkdir()
        return path
    if kind == "empty":
        path = folder / "empty.mp4"
        path.write_bytes(b"")
        return path
    if kind == "text":
        path = folder / "text.mp4"
        path.write_text("this is not a video\n" * 20)
        return path
    if kind == "audio_only":
        path = folder / "audio_only.mp4"
        _run(["-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", str(path)])
        return path
    if kind == "no_streams":
        # Asking for zero video frames makes ffmpeg fail, leaving an mp4 with no streams.
        path = folder / "no_streams.mp4"
        cmd = [_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "quiet", "-y", "-f", "lavfi",
               "-i", "testsrc2=size=64x48", "-frames:v", "0", "-c:v", "libx264", str(path)]  # fmt: skip
        subprocess.run(cmd, capture_output=True)
        if not path.exists() or path.stat().st_size == 0:
            raise RuntimeError("ffmpeg did not leave an mp4 without streams")
        return path
    if kind in ("truncated", "truncated_faststart"):
        good = make_clip(folder / f"{kind}.full.mp4", frames=30, faststart=kind == "truncated_faststart")
        data = good.read_bytes()
        path = folder / f"{kind}.mp4"
        path.write_bytes(data[: len(data) * 4 // 10])
        good.unlink()
        return path
    raise ValueError(f"unknown bad clip kind {kind!r}; known: {', '.join(BAD_KINDS)}")


@pytest.fixture(autouse=True)
def exact_arithmetic(monkeypatch):
    """`precision="auto"` means float32 in tests on every machine, so that exactness checks do not depend on
    the CPU; the bfloat16 path is tested where a test asks for it (tests/test_predict.py)."""
    from posevid.model import inference

    monkeypatch.setattr(inference, "native_bf16", lambda *a: False)


@pytest.fixture
def clip_factory(tmp_path):
    """clip_factory(name="clip.mp4", width=160, height=120, frames=12, fps="25", audio=False,
    rotate=0, vfr=False) -> Path of a new H.264 mp4 under tmp_path.

    fps is a string ffmpeg understands ("25", "30000/1001"); rotate (clockwise degrees for display)
    is stored as display-matrix metadata; vfr=True gives frame i the pts vfr_pts_ms(i).
    """
    return lambda name="clip.mp4", **options: make_clip(tmp_path / name, **options)


@pytest.fixture
def bad_clip_factory(tmp_path):
    """bad_clip_factory(kind) -> Path of a bad input (kinds in conftest.BAD_KINDS) under tmp_path."""
    folder = tmp_path / "bad"
    folder.mkdir(exist_ok=True)
    return lambda kind: make_bad_clip(kind, folder)
