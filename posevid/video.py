"""Streaming video in and out through the ffmpeg binary bundled with imageio-ffmpeg.

    probe(path) -> VideoInfo                 size, exact fps, exact frame count, rotation, audio
    read_frames(info, ...) -> Iterator[Frame] BGR frames one at a time, with exact timestamps
    VideoWriter(path, w, h, fps, audio=...)   H.264 yuv420p mp4 that browsers play

Everything runs through our own ffmpeg subprocesses (no system ffmpeg/ffprobe is assumed). Frames
stream through pipes, so memory does not depend on the length of the video. Every problem with the
user's file becomes a one-line `PosevidError` that names the file.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import tempfile
import threading
import queue
from array import array
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from posevid.errors import PosevidError

T = TypeVar("T")

# Audio codecs that go into the output mp4 unchanged (browsers play them); others become AAC.
MP4_AUDIO_COPY = frozenset({"aac", "mp3", "opus"})
STDERR_TAIL_LINES = 50  # lines of ffmpeg's stderr kept for error messages

_ffmpeg_exe: str | None = None


def ffmpeg_exe() -> str:
    """Path of imageio-ffmpeg's bundled ffmpeg binary (looked up once)."""
    global _ffmpeg_exe
    if _ffmpeg_exe is None:
        try:
            import imageio_ffmpeg

            _ffmpeg_exe = imageio_ffmpeg.get_ffmpeg_exe()
        except Exception as e:  # ImportError or RuntimeError from imageio_ffmpeg
            raise PosevidError(f"cannot find the ffmpeg binary of imageio-ffmpeg: {_one_line(str(e))}") from None
    return _ffmpeg_exe


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int  # display size: after rotation is applied (ffmpeg autorotates on decode)
    height: int
    fps: Fraction  # exact stream frame rate, e.g. Fraction(30000, 1001); for VFR the average rate
    frame_count: int  # exact number of video frames
    rotation: int  # 0, 90, 180 or 270: degrees clockwise the stored frames are turned for display
    has_audio: bool
    audio_codec: str | None  # e.g. "aac", "mp3", "opus", "pcm_s16le"
    duration_s: float | None  # container duration from the header; None when ffmpeg does not know it
    is_vfr: bool  # frame intervals differ (beyond timestamp rounding)


@dataclass
class Frame:
    index: int  # 0-based index in the source video
    pts_ms: float  # presentation time in ms, relative to the pts of the stream's first frame
    image: np.ndarray  # (H, W, 3) uint8 BGR, display orientation; a fresh array for every frame


# ---------------------------------------------------------------------------------------------
# helpers


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _ffmpeg_input(path: Path) -> str:
    # "file:" stops ffmpeg from reading "a:b.mp4" as a protocol or "-" as stdin.
    return "file:" + str(path)


def _last_error_line(lines) -> str:
    """The most useful line of an ffmpeg stderr tail: the last one that reads like an error."""
    lines = [_one_line(x) for x in lines if x.strip()]
    skip = ("frame=", "Press [q]", "Conversion failed", "Exiting normally")
    lines = [x for x in lines if not x.startswith(skip)]
    for line in reversed(lines):
        if re.search(r"error|invalid|fail|corrupt|no space|denied|not found|unable|cannot", line, re.I):
            return re.sub(r"^(\[[^\]]*\]\s*)+", "", line)
    return re.sub(r"^(\[[^\]]*\]\s*)+", "", lines[-1]) if lines else "no message from ffmpeg"


class _StderrDrain(threading.Thread):
    """Reads a subprocess's stderr to its end (so ffmpeg never blocks on it), keeping the last lines.

    `on_line`, when given, sees every line first (used to parse showinfo timestamps).
    """

    def __init__(self, stream, on_line: Callable[[str], None] | None = None):
        super().__init__(daemon=True)
        self.stream = stream
        self.on_line = on_line
        self.tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self.start()

    def run(self) -> None:
        try:
            for raw in self.stream:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if self.on_line is not None:
                    self.on_line(line)
                self.tail.append(line)
        except (OSError, ValueError):  # pipe closed under us while shutting down
            pass
        finally:
            if self.on_line is not None:
                self.on_line(None)  # type: ignore[arg-type]  # end-of-stream marker

    def last_error(self) -> str:
        return _last_error_line(list(self.tail))


def _kill(proc: subprocess.Popen) -> None:
    """Kill and reap an ffmpeg process (no-op when it already exited)."""
    if proc.poll() is None:
        proc.kill()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                pass
    proc.wait()


# ---------------------------------------------------------------------------------------------
# probe

_RE_INPUT = re.compile(r"^Input #0, (.+?), from ")
_RE_DURATION = re.compile(r"^\s*Duration: (?:(\d+):(\d+):(\d+(?:\.\d+)?)|N/A)")
_RE_STREAM = re.compile(r"^\s*Stream #0:(\d+)\S*: (Video|Audio|Subtitle|Data|Attachment): (\S+)(.*)$")
_RE_SIZE = re.compile(r", (\d+)x(\d+)\b")
_RE_ROTATION = re.compile(r"display ?matrix: rotation of (-?\d+(?:\.\d+)?) degrees", re.I)
_RE_CONFIG_IN = re.compile(r"\] config in time_base: (\d+)/(\d+), frame_rate: (\d+)/(\d+)")
_RE_SHOWINFO = re.compile(r"\] n:\s*(\d+) pts:\s*(-?\d+|NOPTS) .* s:(\d+)x(\d+) ")
_NOPTS = -(2**63)  # AV_NOPTS_VALUE as framecrc prints it
_TRUNCATION_MARKERS = ("partial file", "corrupt input packet", "Packet corrupt")  # demuxer messages


@dataclass
class _Header:
    video_codec: str | None = None
    stored_size: tuple[int, int] | None = None  # (w, h) before rotation
    rotation: int = 0
    audio_codec: str | None = None
    duration_s: float | None = None
    has_input: bool = False


def _parse_header(lines: list[str]) -> _Header:
    head = _Header()
    section = None  # which stream's indented block we are in: "video", "other"
    for line in lines:
        if _RE_INPUT.match(line):
            head.has_input = True
            continue
        if line.startswith(("Output #", "Stream mapping")):
            break
        m = _RE_DURATION.match(line)
        if m:
            if m.group(1) is not None:
                head.duration_s = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
            continue
        m = _RE_STREAM.match(line)
        if m:
            kind, codec, rest = m.group(2), m.group(3).rstrip(","), m.group(4)
            section = "other"
            if kind == "Video" and head.video_codec is None and "(attached pic)" not in rest:
                head.video_codec = codec
                size = _RE_SIZE.search(rest)
                head.stored_size = (int(size.group(1)), int(size.group(2))) if size else None
                section = "video"
            elif kind == "Audio" and head.audio_codec is None:
                head.audio_codec = codec
            continue
        if section == "video":
            m = _RE_ROTATION.search(line)
            if m:
                head.rotation = _clockwise_rotation(float(m.group(1)))
    return head


def _clockwise_rotation(displaymatrix_degrees: float) -> int:
    """ffmpeg prints the display matrix angle counter-clockwise; we report clockwise.

    Angles that are not (within 1 degree) a multiple of 90 are reported as 0.
    """
    cw = -displaymatrix_degrees % 360.0
    nearest = round(cw / 90.0) * 90
    return int(nearest % 360) if abs(cw - nearest) <= 1.0 else 0


def _stream_frame_rate(
    pts: array, last_duration: int, time_base: Fraction, guessed: Fraction | None
) -> tuple[Fraction, bool]:
    """(fps, is_vfr) from all packet timestamps of the video stream (in `time_base` units).

    Constant-rate streams get ffmpeg's guessed rate when it agrees with the timestamps (this is how
    1/1000 time bases still give exactly 30000/1001), otherwise the rate the timestamps imply.
    VFR streams get the average rate: frame count / (last pts + its duration - first pts).
    """
    n = len(pts)
    ts = np.sort(np.frombuffer(pts, dtype=np.int64)) if n else np.zeros(0, np.int64)
    if n < 2:
        if guessed:
            return guessed, False
        if last_duration > 0:
            return Fraction(1) / (last_duration * time_base), False
        return Fraction(25), False
    deltas = np.diff(ts)
    median = int(np.median(deltas))
    spread = int(deltas.max() - deltas.min())
    is_vfr = median <= 0 or spread > max(2, median // 20)
    total = int(ts[-1] - ts[0]) + (last_duration if last_duration > 0 else median)
    if total <= 0:
        return (guessed or Fraction(25)), True
    average = Fraction(n) / (total * time_base)
    if not is_vfr:
        if guessed and abs(guessed - average) <= average / 100:
            return guessed, False
        if spread == 0:
            return Fraction(1) / (median * time_base), False
    return average.limit_denominator(1_000_000), is_vfr


def probe(path) -> VideoInfo:
    """Read size, exact frame rate, exact frame count, rotation and audio of the video at `path`.

    One ffmpeg run: it prints the container header (streams, rotation, audio codec, duration),
    copies the first video stream's packets to framecrc on stdout (count and timestamps, no
    decoding) and decodes one frame through showinfo (time base, frame rate, display size).
    Raises PosevidError with a one-line message for every input it cannot use.
    """
    path = Path(path)
    if not path.exists():
        raise PosevidError(f"{path}: no such file")
    if path.is_dir():
        raise PosevidError(f"{path}: is a directory, not a video file")
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except OSError as e:
        raise PosevidError(f"{path}: cannot read the file ({e.strerror or e})") from None
    if size == 0:
        raise PosevidError(f"{path}: empty file (0 bytes), not a video")

    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
        "-i", _ffmpeg_input(path),
        # output 1: every packet of the first (non cover-art) video stream, no decoding
        "-map", "0:V:0", "-c", "copy", "-f", "framecrc", "-",
        # output 2: decode one frame to learn time base, guessed frame rate and display size
        "-map", "0:V:0", "-frames:v", "1", "-vf", "showinfo=checksum=0", "-f", "null", "-",
    ]  # fmt: skip
    time_base: Fraction | None = None
    pts = array("q")
    max_pts, max_pts_duration = None, 0
    untimed = 0  # packets with neither pts nor dts
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        except OSError as e:
            raise PosevidError(f"{path}: cannot run ffmpeg ({e.strerror or e})") from None
        try:
            for raw in proc.stdout:
                if raw[:2] == b"0,":  # stream, dts, pts, duration, size, crc[, flags]
                    fields = raw.split(b",")
                    p, d = int(fields[2]), int(fields[3])
                    if p == _NOPTS:  # e.g. raw .h264 streams: only decode timestamps
                        p = int(fields[1])
                    if p == _NOPTS:
                        untimed += 1
                        continue
                    pts.append(p)
                    if max_pts is None or p > max_pts:
                        max_pts, max_pts_duration = p, d
                elif raw.startswith(b"#tb 0:"):
                    num, den = raw[6:].strip().split(b"/")
                    time_base = Fraction(int(num), int(den))
        except ValueError:
            _kill(proc)
            raise PosevidError(f"{path}: ffmpeg printed packet data that could not be parsed") from None
        except BaseException:
            _kill(proc)
            raise
        proc.stdout.close()
        rc = proc.wait()
        err.seek(0)
        # The header sits at the start; corruption messages and the error at the end.
        stderr = err.read(4_000_000).decode("utf-8", "replace").splitlines()

    head = _parse_header(stderr)
    text = "\n".join(stderr)
    if not head.has_input:
        if "moov atom not found" in text and "low score" not in text:
            raise PosevidError(f"{path}: truncated or incomplete mp4 (moov atom not found)")
        reason = _last_error_line(stderr).split(": ", 1)[-1]  # drop "Error opening input files: "
        raise PosevidError(f"{path}: not a video file ffmpeg can read ({reason})")
    if head.video_codec is None:
        what = f"only an {head.audio_codec} audio stream" if head.audio_codec else "no streams"
        raise PosevidError(f"{path}: no video stream (the file has {what})")
    if rc != 0 and not pts and not untimed:
        raise PosevidError(f"{path}: cannot read the video stream ({_last_error_line(stderr)})")
    frame_count = len(pts) + untimed
    if frame_count == 0:
        raise PosevidError(f"{path}: the video stream has zero frames")
    if untimed:  # no timestamps to measure: trust ffmpeg's guess and treat as constant rate
        pts = array("q")
    if any(marker in text for marker in _TRUNCATION_MARKERS):
        expected = ""
        guess = _RE_CONFIG_IN.search(text)
        if head.duration_s and guess and int(guess.group(4)):
            rate = Fraction(int(guess.group(3)), int(guess.group(4)))
            expected = f" of about {round(head.duration_s * rate)}"
        raise PosevidError(
            f"{path}: truncated or corrupt video (only {frame_count}{expected} frames readable)"
        )
    if time_base is None or time_base <= 0:
        raise PosevidError(f"{path}: ffmpeg did not report the video time base")

    guessed = None
    m = _RE_CONFIG_IN.search(text)
    if m and int(m.group(3)) > 0 and int(m.group(4)) > 0:
        guessed = Fraction(int(m.group(3)), int(m.group(4)))
    fps, is_vfr = _stream_frame_rate(pts, max_pts_duration, time_base, guessed)

    m = _RE_SHOWINFO.search(text)
    if m:  # the decoded (autorotated) size is exactly what read_frames delivers
        width, height = int(m.group(3)), int(m.group(4))
    elif head.stored_size:
        width, height = head.stored_size
        if head.rotation in (90, 270):
            width, height = height, width
    else:
        raise PosevidError(f"{path}: cannot decode the video stream ({_last_error_line(stderr)})")

    return VideoInfo(
        path=path,
        width=width,
        height=height,
        fps=fps,
        frame_count=frame_count,
        rotation=head.rotation,
        has_audio=head.audio_codec is not None,
        audio_codec=head.audio_codec,
        duration_s=head.duration_s,
        is_vfr=is_vfr,
    )


# ---------------------------------------------------------------------------------------------
# reading

_PTS_QUEUE_SIZE = 4096  # far above the few frames ffmpeg buffers between its log and its output
_PTS_TIMEOUT_S = 30.0  # waiting longer for a frame's showinfo line means the parse went wrong


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last may be shorter), for batched network calls."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def read_frames(info: VideoInfo, start_frame: int = 0, max_frames: int | None = None) -> Iterator[Frame]:
    """Decode frames [start_frame, start_frame + max_frames) of `info.path`, one at a time.

    ffmpeg autorotates, converts to BGR and pipes raw frames; `-fps_mode passthrough` keeps exactly
    one output frame per decoded frame. Timestamps come from a showinfo filter before the `trim`
    that selects the range; its log lines are parsed by the thread that drains stderr. Frames before
    `start_frame` are decoded and dropped inside ffmpeg (no seeking). Memory is one frame plus pipe
    buffers, whatever the length. Closing the generator early kills and reaps ffmpeg.

    Arguments are checked at call time (PosevidError when start_frame is past the end); during
    iteration it raises PosevidError when ffmpeg fails or delivers fewer frames than the range
    holds (truncated or corrupt data), naming how many were decoded of how many.
    """
    if start_frame < 0:
        raise ValueError(f"start_frame must be >= 0, got {start_frame}")
    if max_frames is not None and max_frames < 0:
        raise ValueError(f"max_frames must be >= 0 or None, got {max_frames}")
    path = info.path
    if start_frame >= info.frame_count:
        raise PosevidError(
            f"{path}: start frame {start_frame} is past the end of the video ({info.frame_count} frames)"
        )
    end = info.frame_count if max_frames is None else min(info.frame_count, start_frame + max_frames)
    if end == start_frame:
        return iter(())
    return _read_range(info, start_frame, end)


def _read_range(info: VideoInfo, start: int, end: int) -> Iterator[Frame]:
    path, width, height = info.path, info.width, info.height
    expected = end - start
    frame_bytes = width * height * 3
    vf = "showinfo=checksum=0"
    if start > 0 or end < info.frame_count:
        vf += f",trim=start_frame={start}:end_frame={end}"
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
        "-i", _ffmpeg_input(path), "-map", "0:V:0", "-an", "-sn", "-dn",
        "-vf", vf, "-fps_mode", "passthrough",
        "-f", "rawvideo", "-pix_fmt", "bgr24", "-",
    ]  # fmt: skip

    # (n, pts) of frames in [start, end) from showinfo, in output order; None marks end of stderr.
    stamps: queue.Queue = queue.Queue(maxsize=_PTS_QUEUE_SIZE)
    state = {"time_base": None, "first_pts": None}
    stopping = threading.Event()

    def on_line(line: str | None) -> None:
        if line is None:
            item = None
        else:
            if "Parsed_showinfo_0" not in line:
                return
            m = _RE_SHOWINFO.search(line)
            if m is None:
                m2 = _RE_CONFIG_IN.search(line)
                if m2:
                    state["time_base"] = Fraction(int(m2.group(1)), int(m2.group(2)))
                return
            n, p = int(m.group(1)), (None if m.group(2) == "NOPTS" else int(m.group(2)))
            if n == 0:
                state["first_pts"] = p
            if not start <= n < end:
                return
            item = (n, p)
        while not stopping.is_set():
            try:
                stamps.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    try:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as e:
        raise PosevidError(f"{path}: cannot run ffmpeg ({e.strerror or e})") from None
    drain = _StderrDrain(proc.stderr, on_line)
    delivered = 0
    try:
        stdout = proc.stdout
        while delivered < expected:
            image = np.empty((height, width, 3), dtype=np.uint8)
            view = memoryview(image).cast("B")
            got = 0
            while got < frame_bytes:
                k = stdout.readinto(view[got:])
                if not k:
                    break
                got += k
            if got < frame_bytes:
                break
            try:
                # showinfo logs a frame before ffmpeg writes it, so its line is (nearly) here.
                item = stamps.get(timeout=_PTS_TIMEOUT_S)
            except queue.Empty:
                item = None
            if item is None:
                raise PosevidError(f"{path}: lost ffmpeg's timestamps at frame {start + delivered}")
            n, p = item
            tb, first_pts = state["time_base"], state["first_pts"]
            if p is None or first_pts is None or tb is None:  # untimed stream: nominal rate
                pts_ms = float(n * 1000 / info.fps)
            else:
                pts_ms = float((p - first_pts) * tb * 1000)
            yield Frame(index=n, pts_ms=pts_ms, image=image)
            delivered += 1
        if delivered < expected:
            rc = proc.wait()
            drain.join()
            reason = drain.last_error() if rc != 0 or delivered == 0 else "stream ended early"
            raise PosevidError(
                f"{path}: decoded only {delivered} of {expected} frames, the video is truncated or corrupt ({reason})"
            )
    finally:
        stopping.set()
        _kill(proc)
        drain.join(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()


# ---------------------------------------------------------------------------------------------
# writing


class VideoWriter:
    """Encode BGR frames to an H.264 yuv420p mp4 that browsers play (`+faststart`).

    Frames go to `<stem>.partial.mp4` beside `path`, which `close()` renames to `path`; `abort()`
    (or any ffmpeg failure) deletes it, so a finished `path` is always a complete video.

    Odd sizes: yuv420p needs even dimensions, so an odd width or height is padded by one black
    pixel column on the right / row at the bottom (the written video is then e.g. 162x122).

    `fps` is passed to ffmpeg as the exact fraction. With `audio` (a probed source that has audio),
    its first audio stream is muxed in: copied when the codec is mp4- and browser-friendly (aac,
    mp3, opus), else transcoded to AAC; trimmed to [audio_start_s, audio_start_s +
    audio_duration_s) of the source when given. Video frames are never dropped for audio length.

    Use as a context manager: `__exit__` closes on success and aborts when an exception propagates.
    """

    def __init__(
        self,
        path,
        width: int,
        height: int,
        fps: Fraction,
        audio: VideoInfo | None = None,
        audio_start_s: float = 0.0,
        audio_duration_s: float | None = None,
        crf: int = 23,
        preset: str = "veryfast",
    ):
        if width <= 0 or height <= 0:
            raise ValueError(f"width and height must be positive, got {width}x{height}")
        fps = Fraction(fps)
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        audio_start_s = float(audio_start_s)
        audio_duration_s = None if audio_duration_s is None else float(audio_duration_s)
        if audio_start_s < 0 or (audio_duration_s is not None and audio_duration_s <= 0):
            raise ValueError(f"bad audio range: start {audio_start_s}, duration {audio_duration_s}")
        self.path = Path(path)
        self.partial_path = self.path.with_name(self.path.stem + ".partial.mp4")
        self.width, self.height, self.fps = width, height, fps
        self.frames_written = 0
        self._frame_bytes = width * height * 3
        self._closed = False

        if self.path.is_dir():
            raise PosevidError(f"{self.path}: is a directory; give a file name for the output video")
        # Fail here, naming the path, when the folder is missing or not writable.
        try:
            with open(self.partial_path, "wb"):
                pass
        except OSError as e:
            raise PosevidError(
                f"{self.path}: cannot write the output video here ({e.strerror or e}: {self.partial_path.parent})"
            ) from None

        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
            "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", "pipe:0",
        ]  # fmt: skip
        maps = ["-map", "0:v:0"]
        audio_args: list[str] = []
        if audio is not None and audio.has_audio:
            if audio_start_s > 0:
                cmd += ["-ss", f"{audio_start_s:.6f}"]
            if audio_duration_s is not None:
                cmd += ["-t", f"{audio_duration_s:.6f}"]
            cmd += ["-vn", "-i", _ffmpeg_input(audio.path)]
            maps += ["-map", "1:a:0"]
            if audio.audio_codec in MP4_AUDIO_COPY:
                audio_args = ["-c:a", "copy"]
            else:
                audio_args = ["-c:a", "aac", "-b:a", "160k"]
        video_args = ["-fps_mode", "passthrough", "-c:v", "libx264", "-preset", preset, "-crf", str(crf)]
        if width % 2 or height % 2:
            video_args += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2:0:0:black"]
        video_args += ["-pix_fmt", "yuv420p"]
        cmd += maps + video_args + audio_args
        cmd += ["-movflags", "+faststart", "-f", "mp4", _ffmpeg_input(self.partial_path)]
        try:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as e:
            self._remove_partial()
            raise PosevidError(f"{self.path}: cannot run ffmpeg ({e.strerror or e})") from None
        self._drain = _StderrDrain(self._proc.stderr)

    def write(self, image: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 BGR frame, H x W as given to __init__."""
        if self._closed:
            raise ValueError("write() on a closed VideoWriter")
        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise ValueError(
                f"expected a ({self.height}, {self.width}, 3) uint8 image, got {image.shape} {image.dtype}"
            )
        try:
            self._proc.stdin.write(np.ascontiguousarray(image).data)
        except (BrokenPipeError, OSError, ValueError):
            reason = self._fail()
            raise PosevidError(
                f"{self.path}: ffmpeg stopped while writing frame {self.frames_written} ({reason})"
            ) from None
        self.frames_written += 1

    def close(self) -> None:
        """Finish encoding and rename the partial file to `path` (PosevidError if no frames came)."""
        if self._closed:
            return
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        rc = self._proc.wait()
        self._drain.join()
        if rc != 0:
            reason = self._fail()
            raise PosevidError(f"{self.path}: ffmpeg failed to finish the video ({reason})")
        if self.frames_written == 0:
            self._fail()
            raise PosevidError(f"{self.path}: no frames were written, so no video was saved")
        self._closed = True
        try:
            os.replace(self.partial_path, self.path)
        except OSError as e:
            self._remove_partial()
            raise PosevidError(f"{self.path}: cannot move the finished video into place ({e.strerror or e})") from None

    def abort(self) -> None:
        """Kill ffmpeg and delete the partial file; `path` is left untouched."""
        if self._closed:
            return
        self._fail()

    def _fail(self) -> str:
        """Kill ffmpeg, delete the partial file, return ffmpeg's last error line."""
        self._closed = True
        _kill(self._proc)
        self._drain.join(timeout=5)
        self._remove_partial()
        return self._drain.last_error()

    def _remove_partial(self) -> None:
        try:
            self.partial_path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
