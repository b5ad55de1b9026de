"""One video file in, keypoints (JSON Lines, optionally COCO results) and an annotated video out; or
one still image in, the same keypoints file (one frame) and an annotated image out.

The data path, frame by frame: video.read_frames → Predictor (network + decode) → Tracker → outputs /
draw → VideoWriter. Nothing accumulates per frame; every output is written under a `.partial` name and
renamed only when complete.
"""
from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from posevid import __version__
from posevid.decode import Poses
from posevid.draw import draw_poses
from posevid.errors import PosevidError
from posevid.images import annotated_path, read_image, write_image
from posevid.outputs import (CocoResultsWriter, KeypointsWriter, check_writable_dir, frame_arrays,
                             read_keypoints, replay_coco, resume_keypoints)
from posevid.predict import Predictor
from posevid.skeleton import COCO
from posevid.track import Tracker
from posevid.video import VideoInfo, VideoWriter, batches, probe, read_frames

RESUME_WARMUP = 16  # frames re-run before a resume point to rebuild the GRU state


@dataclass
class InferOptions:
    out_dir: Path = Path("posevid-out")
    write_video: bool = True
    coco: bool = False  # also write COCO keypoint results (image_id = frame index)
    stride: int = 1  # run the network on every stride-th frame; frames between repeat the last poses
    batch: int = 1  # frames per network call (a clip through the GRU); memory grows with it, not with video
    start_frame: int = 0
    max_frames: int | None = None
    skip_existing: bool = False
    resume: bool = False
    header: dict = field(default_factory=dict)  # model name, weights hash, … for the keypoints header

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise PosevidError(f"--batch must be at least 1, got {self.batch}")
        if self.stride < 1:
            raise PosevidError(f"--stride must be at least 1, got {self.stride}")
        if self.start_frame < 0:
            raise PosevidError(f"--start-frame must be 0 or more, got {self.start_frame}")
        if self.max_frames is not None and self.max_frames < 1:
            raise PosevidError(f"--max-frames must be at least 1, got {self.max_frames}")


@dataclass
class InferResult:
    source: Path
    keypoints: Path | None = None
    video: Path | None = None
    coco: Path | None = None
    image: Path | None = None  # the annotated image, for a still-image input
    frames: int = 0
    seconds: float = 0.0
    max_people: int = 0
    skipped: bool = False  # --skip-existing found finished outputs

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def output_paths(source: Path, out_dir: Path) -> tuple[Path, Path, Path]:
    """(keypoints .jsonl, annotated .mp4, COCO results .json) for one input."""
    stem = source.stem
    return out_dir / f"{stem}.pose.jsonl", out_dir / f"{stem}.pose.mp4", out_dir / f"{stem}.coco.json"


def _header(info: VideoInfo, start: int, count: int, opts: InferOptions) -> dict:
    return {
        "source": str(info.path.resolve()),
        "fps": f"{info.fps.numerator}/{info.fps.denominator}",
        "frame_count": count,
        "start_frame": start,
        "source_frame_count": info.frame_count,
        "width": info.width,
        "height": info.height,
        "rotation": info.rotation,
        "variable_frame_rate": info.is_vfr,
        "stride": opts.stride,
        **opts.header,
        "posevid_version": __version__,
        "keypoint_names": list(COCO.names),
        "skeleton": [list(e) for e in COCO.edges],
    }


def infer_video(source: str | Path, predictor: Predictor, opts: InferOptions,
                on_frame: Callable[[int, int], None] | None = None) -> InferResult:
    """Runs the whole pipeline on one video; raises PosevidError (one line) for bad input or output."""
    source = Path(source)
    info = probe(source)
    start = opts.start_frame
    if start >= info.frame_count:
        raise PosevidError(f"{source}: --start-frame {start} is past the last frame ({info.frame_count} frames)")
    count = info.frame_count - start if opts.max_frames is None else min(opts.max_frames, info.frame_count - start)
    out_dir = check_writable_dir(opts.out_dir)
    kp_path, video_path, coco_path = output_paths(source, out_dir)
    result = InferResult(source, kp_path, video_path if opts.write_video else None,
                         coco_path if opts.coco else None)
    wanted = [p for p in (result.keypoints, result.video, result.coco) if p is not None]
    if opts.skip_existing and all(p.exists() for p in wanted):
        result.skipped = True
        return result

    header = _header(info, start, count, opts)
    predictor.reset()
    tracker = Tracker()
    resume = resume_keypoints(kp_path, header) if opts.resume else None
    resume_from = start  # first frame the network must produce poses for
    old_frames = None
    if resume is not None and resume.last_frame is not None:
        resume_from = resume.last_frame + 1
        _, old_frames = read_keypoints(resume.partial)  # replayed into the tracker and drawn again

    t0 = time.perf_counter()
    with ExitStack() as stack:
        if resume is not None:
            keypoints = stack.enter_context(KeypointsWriter.reopen(kp_path, resume, header))
        else:
            keypoints = stack.enter_context(KeypointsWriter(kp_path, header))
        coco = stack.enter_context(CocoResultsWriter(coco_path)) if opts.coco else None
        if coco is not None and resume is not None:
            replay_coco(resume.partial, coco)  # COCO results cannot be appended to: rewrite them
        video = None
        if opts.write_video:
            whole = start == 0 and count == info.frame_count
            video = stack.enter_context(VideoWriter(
                video_path, info.width, info.height, info.fps, audio=info,
                audio_start_s=float(start / info.fps), audio_duration_s=None if whole else float(count / info.fps)))

        last = Poses.empty(COCO.num_keypoints)
        last_ids = np.zeros(0, np.int64)
        last_nms = 0.0
        if resume is not None and resume.last_frame is not None:  # a stride gap continues the last poses
            last = Poses(resume.last_keypoints, resume.last_scores, np.zeros(len(resume.last_scores)))
            last_ids = resume.last_track_ids
        warm_from = resume_from - RESUME_WARMUP * opts.stride
        done = 0
        for chunk in batches(read_frames(info, start, count), opts.batch):
            # The network sees every stride-th frame: those still to do, and before a resume point the
            # last few already written, to rebuild the GRU state.
            run = [f for f in chunk if (f.index - start) % opts.stride == 0 and f.index >= warm_from]
            predicted = dict(zip((f.index for f in run), predictor.predict([f.image for f in run])))
            for frame in chunk:
                if frame.index < resume_from:  # already in the resumed file: replay it
                    line = next(old_frames)
                    kp, _, ids = frame_arrays(line)
                    tracker.observe(kp, ids, line.get("scene_cut", False))
                    if video is not None:
                        video.write(draw_poses(frame.image, kp, ids))
                    continue
                out = predicted.get(frame.index)
                if out is not None:
                    last, last_nms = out.poses, out.nms_score
                    last_ids = tracker.update(last.keypoints, last.scores, out.scene_cut)
                keypoints.write_frame(frame.index, frame.pts_ms, last.keypoints, last.scores, last_ids, last_nms,
                                      out is not None, out is not None and out.scene_cut)
                if coco is not None:
                    coco.write_frame(frame.index, last.keypoints, last.scores)
                if video is not None:
                    video.write(draw_poses(frame.image, last.keypoints, last_ids))
                result.max_people = max(result.max_people, len(last))
            done += len(chunk)
            if on_frame is not None:
                on_frame(done, count)
        if done != count:  # read_frames raises on short reads; this guards the contract itself
            raise PosevidError(f"{source}: decoded {done} of {count} frames")
    result.frames = count
    result.seconds = time.perf_counter() - t0
    return result


def infer_image(source: str | Path, predictor: Predictor, opts: InferOptions,
                on_frame: Callable[[int, int], None] | None = None) -> InferResult:
    """One still image: OUT/<name>.pose.jsonl (the video schema, one frame), OUT/<name>.pose.<ext> (annotated,
    same format as the input) and with `opts.coco` OUT/<name>.coco.json. Raises PosevidError for bad input."""
    source = Path(source)
    if opts.start_frame > 0:
        raise PosevidError(f"{source}: --start-frame {opts.start_frame} is past the last frame (a still image)")
    out_dir = check_writable_dir(opts.out_dir)
    kp_path, _, coco_path = output_paths(source, out_dir)
    result = InferResult(source, kp_path, None, coco_path if opts.coco else None,
                         annotated_path(source, out_dir) if opts.write_video else None)
    wanted = [p for p in (result.keypoints, result.image, result.coco) if p is not None]
    if opts.skip_existing and all(p.exists() for p in wanted):
        result.skipped = True
        return result

    image, rotation = read_image(source)
    header = {"source": str(source.resolve()), "fps": None, "frame_count": 1, "start_frame": 0,
              "source_frame_count": 1, "width": image.shape[1], "height": image.shape[0], "rotation": rotation,
              "variable_frame_rate": False, "stride": 1, **opts.header, "posevid_version": __version__,
              "keypoint_names": list(COCO.names), "skeleton": [list(e) for e in COCO.edges]}
    t0 = time.perf_counter()
    predictor.reset()
    out = predictor(image)
    ids = Tracker().update(out.poses.keypoints, out.poses.scores, False)
    done: list[Path] = []  # outputs of this run already in place, removed if a later one fails
    try:
        with KeypointsWriter(kp_path, header) as keypoints:  # renamed last: it marks a finished run
            keypoints.write_frame(0, 0.0, out.poses.keypoints, out.poses.scores, ids, out.nms_score)
            if opts.coco:
                with CocoResultsWriter(coco_path) as coco:
                    coco.write_frame(0, out.poses.keypoints, out.poses.scores)
                done.append(coco_path)
            if result.image is not None:
                done.append(write_image(result.image, draw_poses(image, out.poses.keypoints, ids)))
    except BaseException:
        for path in done:
            path.unlink(missing_ok=True)
        raise
    if on_frame is not None:
        on_frame(1, 1)
    result.frames, result.max_people = 1, len(out.poses)
    result.seconds = time.perf_counter() - t0
    return result
