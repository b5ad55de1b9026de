"""Result files, written one frame at a time and made visible atomically.

Every writer writes ``<name>.partial`` beside its final path and renames it on ``close()``, so a file
with the final name is always complete. An interrupted keypoints file stays as ``.partial`` and
``resume_keypoints`` + ``KeypointsWriter.reopen`` continue it (``--resume``). Nothing is kept per
frame in memory: each frame is serialised, written and flushed.

Keypoints file (JSON Lines, schema ``posevid.keypoints/1``):

    {"type": "header", "schema": "posevid.keypoints/1", "source": ..., ...}      # first line
    {"frame": 12, "pts_ms": 400.0, "nms_score": 0.41, "inferred": true, "scene_cut": false,
     "persons": [{"track_id": 3, "score": 0.83, "keypoints": [[x, y, s], ...]}]}  # one line a frame

Coordinates are (x, y) source-frame pixels rounded to 2 decimals, scores rounded to 4.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from posevid.errors import PosevidError

SCHEMA = "posevid.keypoints/1"
# Header fields that identify a run: a partial file whose header differs in any of them was written
# by another run and must not be continued.
IDENTITY_FIELDS = ("source", "model", "weights_sha256", "start_frame", "stride")


def partial_path(path: str | os.PathLike) -> Path:
    """Where a writer for ``path`` writes until it closes: ``clip.jsonl`` -> ``clip.jsonl.partial``."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks so large weights files need no memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def check_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (with parents) if needed and check a file can be written there.

    Raises:
        PosevidError: naming the directory, if it cannot be created or written.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PosevidError(f"cannot create output directory {path}: {e.strerror or e}") from None
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise PosevidError(f"cannot write to output directory {path}: {e.strerror or e}") from None
    return path


def _clean_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """(P, K, 3) float64 copy, coordinates rounded to 2 decimals and scores to 4.

    A keypoint with a non-finite value becomes (0, 0, 0): JSON has no NaN, and a zero score marks it
    as not found, which every reader already handles.
    """
    kp = np.array(keypoints, dtype=np.float64, copy=True)
    if kp.ndim != 3 or kp.shape[2] != 3:
        raise ValueError(f"expected (P, K, 3) keypoints, got {kp.shape}")
    kp[~np.isfinite(kp).all(axis=2)] = 0.0
    kp[..., :2] = np.round(kp[..., :2], 2)
    kp[..., 2] = np.round(kp[..., 2], 4)
    return kp


def _round_scores(scores: np.ndarray, n: int) -> list[float]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.shape[0] != n:
        raise ValueError(f"{n} poses but {s.shape[0]} scores")
    return np.round(np.nan_to_num(s, nan=0.0, posinf=0.0, neginf=0.0), 4).tolist()


def _finite(x: float, digits: int) -> float:
    x = float(x)
    return round(x, digits) if np.isfinite(x) else 0.0


def _open_partial(path: Path, mode: str):
    try:
        return open(path, mode, encoding="utf-8", newline="\n")
    except OSError as e:
        raise PosevidError(f"cannot write {path}: {e.strerror or e}") from None


def _dumps(obj: Any) -> str:
    # default=str: header values such as Path objects are written as their text
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=str)


# ----------------------------------------------------------------------------------------- keypoints


@dataclass
class ResumeState:
    """What ``resume_keypoints`` found in an interrupted keypoints file."""

    partial: Path  # the .partial file, already cut back to its last complete line
    header: dict  # the header line, as written (with "type" and "schema")
    frames: int  # number of complete frame lines
    last_frame: int | None  # "frame" of the last complete line, None when there is none
    last_keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 17, 3)))  # (P, K, 3)
    last_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (P,)
    last_track_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (P,)
    max_track_id: int = 0  # largest track id in the whole file (ids are never reused)
    header_bytes: int = 0  # length in bytes of the header line with its newline


def check_same_run(old_header: dict, new_header: dict, where: str | os.PathLike) -> None:
    """Raise PosevidError if two headers differ in any of ``IDENTITY_FIELDS``."""
    new_header = json.loads(_dumps(new_header))  # compare as written: Path -> str, tuple -> list
    diff = [k for k in IDENTITY_FIELDS if old_header.get(k) != new_header.get(k)]
    if diff:
        k = diff[0]
        raise PosevidError(
            f"{where} belongs to another run ({k} was {old_header.get(k)!r}, now {new_header.get(k)!r}); "
            "delete it or run without --resume"
        )


class KeypointsWriter:
    """Streams one JSON line per frame into ``<path>.partial``; ``close()`` renames it to ``path``.

    Use as a context manager: a clean exit closes, KeyboardInterrupt keeps the ``.partial`` for
    ``--resume``, any other exception deletes it.
    """

    def __init__(self, path: str | os.PathLike, header: dict, *, _resume: ResumeState | None = None):
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self._new_header: dict | None = None
        if _resume is None:
            line = _dumps(_header_line(header)) + "\n"
            self._f = _open_partial(self.partial, "w")
            self._write(line)
            self._header_bytes = len(line.encode("utf-8"))
            self.frames_written = 0
        else:
            self._f = _open_partial(self.partial, "a")
            self._header_bytes = _resume.header_bytes
            self.frames_written = _resume.frames

    @classmethod
    def reopen(
        cls, path: str | os.PathLike, state: ResumeState, header: dict | None = None
    ) -> "KeypointsWriter":
        """Continue appending to the partial file ``resume_keypoints(path)`` described.

        Args:
            path: the final path, as given to the interrupted writer.
            state: from ``resume_keypoints(path)``.
            header: the new run's header; if given, it must match the partial's identity fields.
        """
        if partial_path(path) != state.partial:
            raise ValueError(f"state describes {state.partial}, not the partial of {path}")
        if header is not None:
            check_same_run(state.header, header, state.partial)
        return cls(path, state.header, _resume=state)

    def write_frame(
        self,
        frame: int,
        pts_ms: float,
        keypoints: np.ndarray,
        scores: np.ndarray,
        track_ids: np.ndarray,
        nms_score: float,
        inferred: bool = True,
        scene_cut: bool = False,
    ) -> None:
        """Append and flush one frame line.

        Args:
            frame: source frame index.
            pts_ms: presentation time of the frame in milliseconds.
            keypoints: (P, K, 3) poses, (x, y, score) in source-frame pixels.
            scores: (P,) pose scores.
            track_ids: (P,) int track ids.
            nms_score: the frame's local-NMS score (mean center-heatmap peak of the reported people).
            inferred: False when the poses were carried over rather than computed for this frame.
            scene_cut: the video cut to another scene before this frame (new tracks start here).
        """
        kp = _clean_keypoints(keypoints)
        P = kp.shape[0]
        sc = _round_scores(scores, P)
        ids = np.asarray(track_ids, dtype=np.int64).reshape(-1).tolist()
        if len(ids) != P:
            raise ValueError(f"{P} poses but {len(ids)} track ids")
        kpl = kp.tolist()
        persons = [{"track_id": ids[i], "score": sc[i], "keypoints": kpl[i]} for i in range(P)]
        line = _dumps({
            "frame": int(frame),
            "pts_ms": _finite(pts_ms, 3),
            "nms_score": _finite(nms_score, 4),
            "inferred": bool(inferred),
            "scene_cut": bool(scene_cut),
            "persons": persons,
        })
        # one write per line, newline last: a crash leaves at worst one cut line, no newline
        self._write(line + "\n")
        self.frames_written += 1

    def _write(self, text: str) -> None:
        try:
            self._f.write(text)
            self._f.flush()
        except OSError as e:  # disk full, drive gone: a message, not a traceback
            raise PosevidError(f"cannot write {self.partial}: {e.strerror or e}") from None

    def replace_header(self, header: dict) -> None:
        """Write ``header`` instead of the original one when closing (e.g. the true frame count)."""
        self._new_header = _header_line(header)

    def close(self) -> Path:
        """Finish the file: flush, fsync, rename ``.partial`` to the final path. Returns the path."""
        if self._f.closed:
            return self.path
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        if self._new_header is not None:
            tmp = self.partial.with_name(self.partial.name + ".tmp")
            with open(self.partial, "rb") as src, open(tmp, "wb") as dst:
                dst.write((_dumps(self._new_header) + "\n").encode("utf-8"))
                src.seek(self._header_bytes)
                shutil.copyfileobj(src, dst, 1 << 20)  # chunked: memory stays flat
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, self.partial)
        os.replace(self.partial, self.path)
        return self.path

    def abort(self, keep_partial: bool) -> None:
        """Stop writing; keep the ``.partial`` (interrupted run, for --resume) or delete it."""
        if not self._f.closed:
            self._f.flush()
            self._f.close()
        if not keep_partial:
            self.partial.unlink(missing_ok=True)

    def __enter__(self) -> "KeypointsWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort(keep_partial=issubclass(exc_type, KeyboardInterrupt))
        return False


def _header_line(header: dict) -> dict:
    """The header object as written: "type" and "schema" first, then the caller's fields."""
    rest = {k: v for k, v in header.items() if k not in ("type", "schema")}
    return {"type": "header", "schema": SCHEMA, **rest}


def frame_arrays(frame: dict, num_keypoints: int = 17) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A frame dict (from ``read_keypoints``) as arrays: keypoints (P, K, 3) (x, y, score), scores (P,),
    track_ids (P,) int64."""
    persons = frame.get("persons", [])
    kp = np.asarray([p["keypoints"] for p in persons], dtype=np.float64).reshape(-1, num_keypoints, 3)
    scores = np.asarray([p["score"] for p in persons], dtype=np.float64)
    ids = np.asarray([p["track_id"] for p in persons], dtype=np.int64)
    return kp, scores, ids


def resume_keypoints(path: str | os.PathLike, header: dict | None = None) -> ResumeState | None:
    """Inspect ``<path>.partial`` left by an interrupted run, so the run can continue it.

    Reads it line by line (memory stays flat), cuts off a half-written last line (a crash can leave
    one), and returns what the continuing run needs. Returns None if there is no partial file, or if
    not even its header line was completed (then there is nothing to keep; a new writer replaces it).

    Args:
        path: the final output path (the partial is found beside it).
        header: the new run's header; if given, checked against the partial's identity fields
            *before* anything is cut.

    Raises:
        PosevidError: the partial belongs to another run, is not a posevid keypoints file, or is
            damaged before its last line.
    """
    partial = partial_path(path)
    if not partial.exists():
        return None
    with open(partial, "rb") as f:
        first = f.readline()
        if not first.endswith(b"\n"):
            return None
        old_header = _parse_header(first, partial)
        if header is not None:
            check_same_run(old_header, header, partial)
        state = ResumeState(partial=partial, header=old_header, frames=0, last_frame=None,
                            header_bytes=len(first))
        good_end = len(first)  # byte offset just after the last complete line
        last: dict | None = None
        lineno = 1
        while raw := f.readline():
            lineno += 1
            obj = None
            if raw.endswith(b"\n"):
                try:
                    obj = json.loads(raw)
                except ValueError:
                    obj = None
            if obj is None or not _is_frame(obj):
                if f.read(1):
                    # damage in the middle is not a crash artefact: refuse rather than drop frames
                    raise PosevidError(f"{partial}:{lineno}: damaged line; cannot resume from this file")
                break  # a cut (or garbled) last line: drop it
            last = obj
            state.frames += 1
            for p in obj["persons"]:
                state.max_track_id = max(state.max_track_id, int(p.get("track_id", 0)))
            good_end = f.tell()
    if last is not None:
        state.last_frame = int(last["frame"])
        state.last_keypoints, state.last_scores, state.last_track_ids = frame_arrays(
            last, _num_keypoints(last)
        )
    if good_end != partial.stat().st_size:
        os.truncate(partial, good_end)
    return state


def _is_frame(obj: Any) -> bool:
    return (
        isinstance(obj, dict) and isinstance(obj.get("frame"), int) and isinstance(obj.get("persons"), list)
    )


def _parse_header(raw: bytes | str, where: Path, lineno: int = 1) -> dict:
    try:
        obj = json.loads(raw)
    except ValueError as e:
        raise PosevidError(f"{where}:{lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(obj, dict) or obj.get("type") != "header":
        raise PosevidError(f"{where}:{lineno}: not a posevid keypoints file (no header line)")
    if obj.get("schema") != SCHEMA:
        raise PosevidError(
            f"{where}:{lineno}: unsupported schema {obj.get('schema')!r} (expected {SCHEMA!r})"
        )
    return obj


def read_keypoints(path: str | os.PathLike) -> tuple[dict, Iterator[dict]]:
    """Open a keypoints file: its header now, its frames lazily.

    Returns:
        (header dict, iterator of frame dicts as written; see ``frame_arrays`` for numpy arrays).

    Raises:
        PosevidError: naming the file and line, for a missing file, bad JSON or a wrong schema
            (frames are checked as the iterator reaches them).
    """
    path = Path(path)
    try:
        f = open(path, "r", encoding="utf-8")
    except OSError as e:
        raise PosevidError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        first = f.readline()
        if not first.strip():
            raise PosevidError(f"{path}:1: empty file, expected a posevid keypoints header")
        header = _parse_header(first, path)
    except BaseException:
        f.close()
        raise
    return header, _iter_frames(f, path)


def _iter_frames(f, path: Path) -> Iterator[dict]:
    with f:
        for lineno, line in enumerate(f, start=2):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise PosevidError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not _is_frame(obj):
                raise PosevidError(f"{path}:{lineno}: not a frame line (needs \"frame\" and \"persons\")")
            yield obj


# -------------------------------------------------------------------------------------- COCO results


class CocoResultsWriter:
    """A COCO keypoint-results JSON array, streamed one detection at a time, atomic like the others.

    Each element: ``{"image_id": int, "category_id": 1, "keypoints": [x1, y1, s1, ...], "score": float}``
    (3K floats, (x, y) pixels). Loads with pycocotools' ``COCO.loadRes``. Context manager: closes on
    success, deletes the partial on any exception (it cannot be resumed; regenerate it from the
    keypoints file with ``coco_results_from_keypoints``).
    """

    def __init__(self, path: str | os.PathLike, image_id_offset: int = 0):
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.image_id_offset = int(image_id_offset)
        self.count = 0
        self._f = _open_partial(self.partial, "w")
        self._f.write("[")

    def write_frame(self, frame: int, keypoints: np.ndarray, scores: np.ndarray) -> None:
        """Append one frame's poses as detections of image ``image_id_offset + frame``.

        Args:
            frame: frame index (image id before the offset).
            keypoints: (P, K, 3) poses, (x, y, score).
            scores: (P,) pose scores.
        """
        kp = _clean_keypoints(keypoints)
        sc = _round_scores(scores, kp.shape[0])
        image_id = self.image_id_offset + int(frame)
        flat = kp.reshape(kp.shape[0], kp.shape[1] * 3).tolist()
        for i in range(kp.shape[0]):
            item = {"image_id": image_id, "category_id": 1, "keypoints": flat[i], "score": sc[i]}
            self._f.write(("," if self.count else "") + "\n" + _dumps(item))
            self.count += 1
        self._f.flush()

    def close(self) -> Path:
        """Close the array and rename the partial to the final path. Returns the path."""
        if self._f.closed:
            return self.path
        self._f.write("\n]\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self.partial, self.path)
        return self.path

    def abort(self, keep_partial: bool = False) -> None:
        """Stop writing; delete the partial unless ``keep_partial``."""
        if not self._f.closed:
            self._f.close()
        if not keep_partial:
            self.partial.unlink(missing_ok=True)

    def __enter__(self) -> "CocoResultsWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort(keep_partial=False)
        return False


def coco_results_from_keypoints(
    keypoints_path: str | os.PathLike, out_path: str | os.PathLike, image_id_offset: int = 0
) -> int:
    """Write COCO results for every frame of a keypoints file (e.g. after a resumed run).

    Returns the number of detections written.
    """
    with CocoResultsWriter(out_path, image_id_offset) as w:
        replay_coco(keypoints_path, w)
    return w.count


def replay_coco(keypoints_path: str | os.PathLike, writer: "CocoResultsWriter") -> None:
    """Append to `writer` the COCO results of every frame in a keypoints file (or its .partial)."""
    _, frames = read_keypoints(keypoints_path)
    for fr in frames:
        kp, scores, _ = frame_arrays(fr, _num_keypoints(fr))
        writer.write_frame(fr["frame"], kp, scores)


def _num_keypoints(frame: dict) -> int:
    persons = frame.get("persons") or []
    return len(persons[0]["keypoints"]) if persons else 17
