"""The model loop: the networks run over every video of an annotation file, their predictions kept for
the labelled frames and scored (evaluate), or their offsets read at the true centers (center_regression)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import cv2
import numpy as np

from posevid.data.readers import VideoRecord, frame_reference
from posevid.errors import PosevidError
from posevid.evaluate.accuracy import FrameEval
from posevid.evaluate.ground_truth import load_ground_truth
from posevid.evaluate.regression import (center_regression_errors, center_regression_sizes, heatmap_window_errors,
                                        regression_summary)
from posevid.evaluate.report import Report, model_report
from posevid.video import batches

if TYPE_CHECKING:
    from posevid.predict import PredictConfig

MODEL_NAMES = ("temporal", "per-frame")


def evaluate(
    model_temporal,
    model_per_frame,
    annotations: str | os.PathLike,
    videos_root: str | os.PathLike | None = None,
    threshold: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
    device: str = "cpu",
    batch: int = 8,
    predict: PredictConfig | None = None,
) -> Report:
    """Run a temporal model and its per-frame twin over every video of an annotation file and score both.

    Args:
        model_temporal, model_per_frame: DEKR networks (typically the same weights, temporal=True/False);
            model_temporal may be None to score the per-frame network alone.
        annotations: COCO / PoseTrack-style keypoint annotation file.
        videos_root: folder the file names are relative to (default: the annotation file's folder).
        threshold: minimum pose score reported (0 keeps everything, as COCO AP wants).
        progress: optional callable(done_videos, total_videos).
        device: where the models run.
        batch: frames per `Predictor.predict` call (memory stays flat: one batch at a time).
        predict: decoding settings (input size, flip, snapping, pose score, precision); the predictors
            report from `threshold`, and people found / false / missed are counted at the larger of it and
            `predict.threshold` (default: the weights' threshold), as `posevid infer` reports them.

    Every frame of a video goes through each predictor in order (the ConvGRU needs consecutive
    frames); predictions are kept only for the annotated, labelled frames.
    """
    from posevid.predict import PredictConfig, Predictor
    from posevid.track import Tracker

    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    annotations = Path(annotations)
    gt = load_ground_truth(annotations)
    root = Path(videos_root) if videos_root is not None else annotations.parent
    named = [(n, m) for n, m in zip(MODEL_NAMES, (model_temporal, model_per_frame)) if m is not None]
    config = replace(predict or PredictConfig(), threshold=threshold)
    predictors = [Predictor(m, config, device=device) for _, m in named]
    scored: list[list[FrameEval]] = [[] for _ in named]
    nms_curves: list[list[list[float]]] = [[] for _ in named]
    names: list[str] = []
    # people as `posevid infer` reports them by default: at the weights' threshold unless `predict` sets one
    people_at = max(threshold, predict.threshold if predict and predict.threshold is not None
                    else named[-1][1].cfg.threshold)
    trackers = [Tracker() for _ in named]  # and tracks them
    for v_index, video in enumerate(gt.videos):
        frame_of = {r.image_id: r for r in video.frames}
        sources = _sources(video, root)
        names.append(str(sources[0].video_path or sources[0].images[0][0]) if sources else "")
        curves: list[list[float]] = [[] for _ in named]
        for source in sources:
            for p, t in zip(predictors, trackers):
                p.reset()
                t.reset()
            for chunk in batches(_source_frames(source, annotations), batch):
                images = [c[0] for c in chunk]
                for m, p in enumerate(predictors):
                    for (_, image_id), res in zip(chunk, p.predict(images)):
                        curves[m].append(res.nms_score)
                        reported = res.poses.scores >= people_at
                        track_ids = np.full(len(reported), -1, np.int64)
                        track_ids[reported] = trackers[m].update(res.poses.keypoints[reported],
                                                                 res.poses.scores[reported], res.scene_cut)
                        if image_id not in gt.labelled:
                            continue
                        scored[m].append(FrameEval(video.video_id, frame_of[image_id].frame_id, image_id,
                                                   *gt.people_in(image_id), res.poses.keypoints,
                                                   res.poses.scores, res.nms_score, *gt.boxes_in(image_id),
                                                   track_ids))
        for m in range(len(named)):
            nms_curves[m].append(curves[m])
        if progress:
            progress(v_index + 1, len(gt.videos))
    models = [model_report(name, scored[m], gt.coco, nms_curves[m], people_at) for m, (name, _) in enumerate(named)]
    p = predictors[-1]
    decoding = {"input_size": p.input_size, "flip": p.config.flip, "snap_radius": p.snap_radius,
                "pose_score": p.pose_score, "precision": p.precision, "scales": list(p.config.scales)}
    return Report(str(annotations), names, float(threshold), models, decoding)


def center_regression(model, annotations: str | os.PathLike, videos_root: str | os.PathLike | None = None,
                      input_size: int | None = None, device: str = "cpu") -> dict:
    """Median regression error at the true centers (per-frame network, no flip) against the mean-pose
    oracle, overall and per keypoint, over every labelled annotated frame; the fraction of people
    whose prediction is closer with left and right exchanged (about 0 when the sides are learnt); and the
    keypoint heatmaps' error near the true keypoints against chance. See `regression_summary`."""
    import torch

    from posevid.frames import STRIDE, Resize, to_tensor

    annotations = Path(annotations)
    gt = load_ground_truth(annotations)
    root = Path(videos_root) if videos_root is not None else annotations.parent
    size = input_size or model.cfg.input_size
    model = model.to(device).eval()
    net, swapped, heat, people, sizes = [], [], [], [], []
    for video in gt.videos:
        for source in _sources(video, root):
            for image, image_id in _source_frames(source, annotations):
                if image_id not in gt.labelled:
                    continue
                plan = Resize.plan(image.shape[1], image.shape[0], size)
                with torch.no_grad():
                    out = model(to_tensor(image, plan).to(device))
                offsets, heatmaps = (t[0].float().cpu().numpy() for t in (out.offsets, out.heatmaps))
                g = gt.people_in(image_id)[0].astype(np.float64).copy()
                g[..., :2] = plan.to_input(g[..., :2])
                net.append(center_regression_errors(offsets, g, STRIDE))
                swapped.append(center_regression_errors(offsets, g, STRIDE, swap=True))
                heat.append(heatmap_window_errors(heatmaps, g, STRIDE))
                sizes.append(center_regression_sizes(offsets, g, STRIDE))
                people.append(g)
    return regression_summary(net, swapped, people, size, heat, sizes)


# ---------------------------------------------------------------------------------------------
# Where a video's frames come from: an mp4, or image files


@dataclass
class _Source:
    """Consecutive frames of one video that come from one place."""

    video_path: Path | None  # an mp4 (frame index → image id in `wanted`), or None: image files
    images: list[tuple[Path, int]] = field(default_factory=list)  # image files, in order, with image ids
    wanted: dict[int, int] = field(default_factory=dict)  # mp4 frame index → image id


def _sources(video: VideoRecord, root: Path) -> list[_Source]:
    out: list[_Source] = []
    for rec in video.frames:
        split = frame_reference(rec.file_name)
        if split is not None:
            path = root / split[0]
            if not out or out[-1].video_path != path:
                out.append(_Source(path))
            out[-1].wanted[split[1]] = rec.image_id
        else:
            if not out or out[-1].video_path is not None:
                out.append(_Source(None))
            out[-1].images.append((root / rec.file_name, rec.image_id))
    return out


def _source_frames(source: _Source, annotations: Path) -> Iterator[tuple[np.ndarray, int | None]]:
    """Every frame of the source in order, (H, W, 3) BGR, with its image id (None: not annotated)."""
    from posevid.video import probe, read_frames

    if source.video_path is None:
        for path, image_id in source.images:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                what = "image not found" if not path.exists() else "cannot read image"
                raise PosevidError(f"{what}: {path} (named in {annotations})")
            yield image, image_id
        return
    if not source.video_path.is_file():
        raise PosevidError(f"video not found: {source.video_path} (named in {annotations})")
    info = probe(source.video_path)
    last = max(source.wanted)
    if last >= info.frame_count:
        raise PosevidError(f"{source.video_path} has {info.frame_count} frames, {annotations} annotates "
                           f"frame {last}")
    frames = read_frames(info)
    try:
        for fr in frames:
            yield fr.image, source.wanted.get(fr.index)
    finally:
        getattr(frames, "close", lambda: None)()  # stops ffmpeg at once when we stop early
