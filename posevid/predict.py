"""Frames in, poses out: runs the network on a stream of frames and owns the ConvGRU state."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from posevid.decode import Poses, decode, merge_flipped, pose_map
from posevid.frames import STRIDE, Resize, to_tensor
from posevid.model.dekr import DEKR
from posevid.skeleton import COCO, Skeleton


@dataclass
class PredictConfig:
    # Minimum pose score reported. 0.2 has the best precision/recall balance (F1) of 0.1/0.2/0.3 on real
    # and synthetic labelled people with the then shipped weights (small-v6 in docs/training-history.md).
    threshold: float = 0.2
    center_threshold: float = 0.01  # minimum center-heatmap peak considered a person candidate
    max_people: int = 30
    flip: bool = False  # average with a pass on the mirrored frame (2× slower, slightly more accurate)
    input_size: int | None = None  # shorter input side; None = the model's own
    scene_cut: float = 0.2  # mean absolute thumbnail difference (0..1) that resets the GRU state
    snap_radius: float | None = None  # keypoints move to heatmap peaks within this × pose size; None = the model's


@dataclass
class FrameResult:
    poses: Poses  # source-pixel coordinates
    nms_score: float  # mean center peak of the reported people (the local-NMS score), 0 when none
    scene_cut: bool  # the GRU state was reset before this frame


class Predictor:
    """Stateful per-video predictor: call it on consecutive frames; `reset()` between videos."""

    def __init__(self, model: DEKR, config: PredictConfig | None = None, device: str | torch.device = "cpu",
                 skeleton: Skeleton = COCO):
        self.model = model.eval().to(device)
        self.config = config or PredictConfig()
        self.device = torch.device(device)
        self.skeleton = skeleton
        self.input_size = self.config.input_size or model.cfg.input_size
        snap = self.config.snap_radius
        self.snap_radius = model.cfg.snap_radius if snap is None else snap
        self.reset()

    def reset(self) -> None:
        """Forget the video context (new video)."""
        self._state: torch.Tensor | None = None  # (streams, hidden, h, w): the frames, and with flip their mirror
        self._thumb: np.ndarray | None = None
        self._plan: Resize | None = None

    def _is_scene_cut(self, image: np.ndarray) -> bool:
        thumb = cv2.resize(image, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        prev, self._thumb = self._thumb, thumb
        return prev is not None and float(np.abs(thumb - prev).mean()) > self.config.scene_cut

    def __call__(self, image: np.ndarray) -> FrameResult:
        """image: (H, W, 3) uint8 BGR → poses in source pixels."""
        return self.predict([image])[0]

    @torch.inference_mode()
    def predict(self, images: list[np.ndarray]) -> list[FrameResult]:
        """Consecutive frames of one video, oldest first → one result each.

        The frames go through the network as one clip (faster than one by one); the GRU state still
        advances frame by frame and is reset at scene cuts and size changes.
        """
        results: list[FrameResult] = []
        run: list[np.ndarray] = []
        run_starts_at_cut = False
        for image in images:
            h, w = image.shape[:2]
            resized = self._plan is None or (self._plan.src_w, self._plan.src_h) != (w, h)
            cut = not resized and self._is_scene_cut(image)
            if resized or cut:
                if run:  # frames before the cut finish with the old state
                    results += self._run(run, run_starts_at_cut)
                run, run_starts_at_cut = [], cut
                if resized:
                    self.reset()
                    self._plan = Resize.plan(w, h, self.input_size)
                    self._is_scene_cut(image)  # remember this frame for the next comparison
                self._state = None
            run.append(image)
        if run:
            results += self._run(run, run_starts_at_cut)
        return results

    def _run(self, images: list[np.ndarray], cut: bool) -> list[FrameResult]:
        plan = self._plan
        # The mirrored frames (flip test) are a second stream of the same batch, with their own GRU state.
        streams = [torch.stack([to_tensor(im, plan, flip=flip)[0] for im in images])
                   for flip in ((False, True) if self.config.flip else (False,))]
        out = self.model.forward_clip(torch.stack(streams).to(self.device), self._state)  # (S, T, 3, H, W)
        self._state = out.state
        heatmaps, offsets = out.heatmaps.float().cpu(), out.offsets.float().cpu()  # (S, T, C, h, w)
        results = []
        for t in range(len(images)):
            heat, poses = heatmaps[0, t], pose_map(offsets[0, t])
            if self.config.flip:
                heat, poses = merge_flipped(heat, poses, heatmaps[1, t], pose_map(offsets[1, t]),
                                            self.skeleton.flip_index, plan.out_w)
            found = decode(heat, poses, self.config.max_people, self.config.center_threshold,
                           snap_radius=self.snap_radius)
            found = found.select(found.scores >= self.config.threshold)
            found.keypoints[..., :2] = plan.to_source(found.keypoints[..., :2] * STRIDE)
            nms_score = float(found.center_scores.mean()) if len(found) else 0.0
            results.append(FrameResult(found, nms_score, cut and t == 0))
        return results
