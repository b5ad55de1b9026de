"""posevid.video: probe, streaming read and write through the bundled ffmpeg, on tiny clips."""

from __future__ import annotations

import dataclasses
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from conftest import BAD_KINDS, BLOCK_H, BLOCK_W, make_bad_clip, vfr_pts_ms
from posevid import video
from posevid.errors import PosevidError
from posevid.video import VideoWriter, probe, read_frames


def _block_corner(image: np.ndarray) -> str:
    """Which corner holds the white block: 'top-left', 'top-right', 'bottom-left' or 'bottom-right'."""
    h, w = image.shape[:2]
    ch, cw = h // (2 * max(BLOCK_W, BLOCK_H)), w // (2 * max(BLOCK_W, BLOCK_H))  # well inside
    corners = {
        "top-left": image[:ch, :cw],
        "top-right": image[:ch, w - cw :],
        "bottom-left": image[h - ch :, :cw],
        "bottom-right": image[h - ch :, w - cw :],
    }
    white = [name for name, patch in corners.items() if patch.min() > 200]
    assert len(white) == 1, f"expected one white corner, got {white}"
    return white[0]


def _write_all(path, info, frames, **kwargs):
    with VideoWriter(path, info.width, info.height, info.fps, **kwargs) as writer:
        for frame in frames:
            writer.write(frame.image)
    return path


# --- probe ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", ["25", "30000/1001"])
def test_probe_constant_rate(clip_factory, fps):
    info = probe(clip_factory(fps=fps, frames=12))
    assert info.fps == Fraction(fps)
    assert isinstance(info.fps, Fraction)
    assert (info.width, info.height) == (160, 120)
    assert info.frame_count == 12
    assert info.rotation == 0
    assert not info.is_vfr
    assert not info.has_audio and info.audio_codec is None
    assert info.duration_s == pytest.approx(12 / Fraction(fps), abs=0.02)


def test_probe_audio(clip_factory):
    info = probe(clip_factory(audio=True))
    assert info.has_audio and info.audio_codec == "aac"
    assert info.frame_count == 12


@pytest.mark.parametrize(
    "rotate, corner", [(0, "top-left"), (90, "top-right"), (180, "bottom-right"), (270, "bottom-left")]
)
def test_rotation_display_orientation(clip_factory, rotate, corner):
    info = probe(clip_factory(rotate=rotate, frames=3))
    assert info.rotation == rotate
    expect_size = (120, 160) if rotate in (90, 270) else (160, 120)
    assert (info.width, info.height) == expect_size
    frames = list(read_frames(info))
    assert len(frames) == 3
    for frame in frames:
        assert frame.image.shape == (info.height, info.width, 3)
        assert _block_corner(frame.image) == corner


def test_vfr_timestamps_exact(clip_factory):
    info = probe(clip_factory(vfr=True, frames=12))
    assert info.is_vfr
    assert info.frame_count == 12
    # average rate over the whole stream: 12 frames in 1320 ms + 180 ms for the last frame
    assert info.fps == Fraction(12, 1) / Fraction(1500, 1000)
    frames = list(read_frames(info))
    assert [f.index for f in frames] == list(range(12))
    assert [f.pts_ms for f in frames] == [float(vfr_pts_ms(i)) for i in range(12)]


# --- read -------------------------------------------------------------------------------------


def test_read_frames_constant_rate_pts(clip_factory):
    info = probe(clip_factory(fps="30000/1001", frames=10))
    frames = list(read_frames(info))
    assert [f.index for f in frames] == list(range(10))
    assert [f.pts_ms for f in frames] == pytest.approx([i * 1001 / 30 for i in range(10)], abs=1e-9)
    first = frames[0].image
    assert first.dtype == np.uint8 and first.shape == (120, 160, 3) and first.flags.c_contiguous
    assert frames[1].image is not first and not np.shares_memory(frames[1].image, first)


@pytest.mark.parametrize("start, count", [(0, 5), (4, 3), (9, None), (7, 100), (3, 0)])
def test_read_range(clip_factory, start, count):
    info = probe(clip_factory(frames=12, vfr=True))
    frames = list(read_frames(info, start_frame=start, max_frames=count))
    end = 12 if count is None else min(12, start + count)
    assert [f.index for f in frames] == list(range(start, end))
    assert [f.pts_ms for f in frames] == [float(vfr_pts_ms(i)) for i in range(start, end)]


def test_read_range_matches_full_read(clip_factory):
    info = probe(clip_factory(frames=10))
    full = list(read_frames(info))
    part = list(read_frames(info, start_frame=6, max_frames=2))
    for f in part:
        np.testing.assert_array_equal(f.image, full[f.index].image)


def test_read_range_errors(clip_factory):
    info = probe(clip_factory(frames=5))
    with pytest.raises(PosevidError, match="start frame 5 is past the end"):
        read_frames(info, start_frame=5)
    with pytest.raises(ValueError):
        read_frames(info, start_frame=-1)
    with pytest.raises(ValueError):
        read_frames(info, max_frames=-2)


class _RecordingPopen(subprocess.Popen):
    started: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _RecordingPopen.started.append(self)


def test_early_close_kills_ffmpeg(clip_factory, monkeypatch):
    info = probe(clip_factory(frames=30))
    _RecordingPopen.started = []
    monkeypatch.setattr(video.subprocess, "Popen", _RecordingPopen)
    frames = read_frames(info)
    next(frames)
    (proc,) = _RecordingPopen.started
    frames.close()
    assert proc.returncode is not None  # killed and reaped

    _RecordingPopen.started = []
    with pytest.raises(RuntimeError):
        for frame in read_frames(info):
            if frame.index == 2:
                raise RuntimeError("consumer fails")
    (proc,) = _RecordingPopen.started
    assert proc.returncode is not None


def test_fewer_frames_than_expected(clip_factory):
    info = probe(clip_factory(frames=6))
    wrong = dataclasses.replace(info, frame_count=9)
    with pytest.raises(PosevidError) as err:
        list(read_frames(wrong))
    message = str(err.value)
    assert "decoded only 6 of 9 frames" in message and str(info.path) in message
    assert "\n" not in message


def test_read_memory_does_not_grow(clip_factory):
    info = probe(clip_factory(frames=300, width=160, height=120))

    def rss_bytes() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    frames = read_frames(info)
    for _ in range(30):
        next(frames)
    before = rss_bytes()
    count = 30 + sum(1 for _ in frames)
    after = rss_bytes()
    assert count == 300
    # 270 more frames would be 15 MB if kept; allow allocator noise only
    assert after - before < 4_000_000


# --- bad inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_input_one_line_error(bad_clip_factory, kind):
    path = bad_clip_factory(kind)
    with pytest.raises(PosevidError) as err:
        probe(path)
    message = str(err.value)
    assert str(path) in message
    assert "\n" not in message and "Traceback" not in message
    assert len(message) < 300


def test_bad_input_messages_say_what_is_wrong(tmp_path):
    expected = {
        "missing": "no such file",
        "directory": "directory",
        "empty": "empty file",
        "text": "not a video",
        "audio_only": "no video stream",
        "no_streams": "no video stream",
        "truncated": "truncated",
        "truncated_faststart": "truncated",
    }
    assert set(expected) == set(BAD_KINDS)
    for kind, words in expected.items():
        with pytest.raises(PosevidError, match=words):
            probe(make_bad_clip(kind, tmp_path))


# --- write ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", ["25", "30000/1001"])
def test_round_trip_frames_fps_duration(clip_factory, tmp_path, fps):
    info = probe(clip_factory(fps=fps, frames=15))
    out = _write_all(tmp_path / "out.mp4", info, read_frames(info))
    written = probe(out)
    assert written.frame_count == info.frame_count
    assert written.fps == info.fps  # exact Fraction, not rounded
    assert (written.width, written.height) == (info.width, info.height)
    assert abs(written.duration_s - info.duration_s) <= float(1 / info.fps)
    assert not written.has_audio
    assert not list(tmp_path.glob("*.partial*"))


def test_round_trip_odd_size(clip_factory, tmp_path):
    info = probe(clip_factory(width=161, height=121, frames=4))
    assert (info.width, info.height) == (161, 121)
    source = list(read_frames(info))
    assert source[0].image.shape == (121, 161, 3)
    out = _write_all(tmp_path / "odd.mp4", info, source)
    written = probe(out)
    assert (written.width, written.height) == (162, 122)  # padded by one pixel to even
    assert written.frame_count == 4
    back = list(read_frames(written))
    for a, b in zip(source, back):
        diff = np.abs(a.image.astype(int) - b.image[:121, :161].astype(int)).mean()
        assert diff < 12
        assert b.image[:, 161:].mean() < 40 and b.image[121:, :].mean() < 40  # black padding


def test_round_trip_vfr_keeps_frames(clip_factory, tmp_path):
    info = probe(clip_factory(vfr=True, frames=12))
    written = probe(_write_all(tmp_path / "out.mp4", info, read_frames(info)))
    assert written.frame_count == 12
    assert written.fps == info.fps
    assert not written.is_vfr


def test_rotated_round_trip_is_upright(clip_factory, tmp_path):
    info = probe(clip_factory(rotate=90, frames=3))
    written = probe(_write_all(tmp_path / "out.mp4", info, read_frames(info)))
    assert written.rotation == 0
    assert (written.width, written.height) == (120, 160)
    assert _block_corner(next(read_frames(written)).image) == "top-right"


@pytest.mark.parametrize("has_audio", [True, False])
def test_audio_in_output_iff_source_has_audio(clip_factory, tmp_path, has_audio):
    info = probe(clip_factory(audio=has_audio, frames=10))
    written = probe(_write_all(tmp_path / "out.mp4", info, read_frames(info), audio=info))
    assert written.has_audio == has_audio
    assert written.frame_count == 10
    if has_audio:
        assert written.audio_codec == "aac"


def test_audio_trimmed_to_range(clip_factory, tmp_path):
    info = probe(clip_factory(audio=True, frames=30))  # 1.2 s at 25 fps
    start, count = 10, 10
    frames = read_frames(info, start_frame=start, max_frames=count)
    out = _write_all(
        tmp_path / "part.mp4",
        info,
        frames,
        audio=info,
        audio_start_s=start / info.fps,
        audio_duration_s=count / info.fps,
    )
    written = probe(out)
    assert written.frame_count == count and written.has_audio
    assert written.duration_s == pytest.approx(0.4, abs=0.07)  # AAC packets are ~23 ms


def test_audio_transcoded_when_not_mp4_friendly(clip_factory, tmp_path):
    info = probe(clip_factory(audio=True, frames=5))
    pcm = dataclasses.replace(info, audio_codec="pcm_s16le")  # forces the AAC transcode path
    written = probe(_write_all(tmp_path / "out.mp4", info, read_frames(info), audio=pcm))
    assert written.audio_codec == "aac" and written.frame_count == 5


def test_abort_leaves_no_file(tmp_path):
    out = tmp_path / "out.mp4"
    writer = VideoWriter(out, 64, 48, Fraction(25))
    assert writer.partial_path.exists()
    writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_exception_in_with_block_leaves_no_file(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 64, 48, Fraction(25)) as writer:
            writer.write(np.zeros((48, 64, 3), np.uint8))
            raise RuntimeError("pipeline failed")
    assert list(tmp_path.iterdir()) == []


def test_close_renames_partial(tmp_path):
    out = tmp_path / "out.mp4"
    with VideoWriter(out, 64, 48, Fraction(25)) as writer:
        for i in range(3):
            writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
        assert writer.partial_path.name == "out.partial.mp4"
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
    assert probe(out).frame_count == 3


@pytest.mark.parametrize("where", ["missing_folder", "folder_is_a_file"])
def test_unwritable_output_folder(tmp_path, where):
    if where == "missing_folder":
        out = tmp_path / "nope" / "out.mp4"
    else:
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out.mp4"
    with pytest.raises(PosevidError) as err:
        VideoWriter(out, 64, 48, Fraction(25))
    assert str(out) in str(err.value) and "\n" not in str(err.value)


def test_ffmpeg_dying_gives_posevid_error(tmp_path):
    out = tmp_path / "out.mp4"
    writer = VideoWriter(out, 64, 48, Fraction(25))
    writer.write(np.zeros((48, 64, 3), np.uint8))
    writer._proc.kill()  # stands in for a crash or a full disk
    writer._proc.wait()
    with pytest.raises(PosevidError) as err:
        for _ in range(100):  # the pipe buffer may take a few frames before it breaks
            writer.write(np.zeros((48, 64, 3), np.uint8))
    assert str(out) in str(err.value) and "\n" not in str(err.value)
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_write_checks_shape(tmp_path):
    with pytest.raises(ValueError):
        with VideoWriter(tmp_path / "out.mp4", 64, 48, Fraction(25)) as writer:
            writer.write(np.zeros((48, 63, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_close_without_frames_saves_nothing(tmp_path):
    writer = VideoWriter(tmp_path / "out.mp4", 64, 48, Fraction(25))
    with pytest.raises(PosevidError, match="no frames"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_output_path_is_a_directory(tmp_path):
    with pytest.raises(PosevidError, match="is a directory"):
        VideoWriter(tmp_path, 64, 48, Fraction(25))
