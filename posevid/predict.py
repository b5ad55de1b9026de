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
    threshold: float = 0.1  # minimum pose score reported
    center_threshold: float = 0.01  # minimum center-heatmap peak considered a person candidate
    max_people: int = 30
    flip: bool = False  # average with a pass on the mirrored frame (2× slower, slightly more accurate)
    input_size: int | None = None  # shorter input side; None = the model's own
    scene_cut: float = 0.35  # mean absolute thumbnail difference (0..1) that resets the GRU state


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
        self.reset()

    def reset(self) -> None:
        """Forget the video context (new video)."""
        self._state: torch.Tensor | None = None
        self._state_flip: torch.Tensor | None = None
        self._thumb: np.ndarray | None = None
        self._plan: Resize | None = None

    def _is_scene_cut(self, image: np.ndarray) -> bool:
        thumb = cv2.resize(image, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        prev, self._thumb = self._thumb, thumb
        return prev is not None and float(np.abs(thumb - prev).mean()) > self.config.scene_cut

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> FrameResult:
        """image: (H, W, 3) uint8 BGR → poses in source pixels."""
        h, w = image.shape[:2]
        if self._plan is None or (self._plan.src_w, self._plan.src_h) != (w, h):
            self.reset()
            self._plan = Resize.plan(w, h, self.input_size)
        cut = self._is_scene_cut(image)
        if cut:
            self._state = self._state_flip = None
        plan = self._plan
        out = self.model(to_tensor(image, plan).to(self.device), self._state)
        self._state = out.state
        heatmaps, poses = out.heatmaps[0].float().cpu(), pose_map(out.offsets[0].float().cpu())
        if self.config.flip:
            out_f = self.model(to_tensor(image, plan, flip=True).to(self.device), self._state_flip)
            self._state_flip = out_f.state
            heatmaps, poses = merge_flipped(heatmaps, poses, out_f.heatmaps[0].float().cpu(),
                                            pose_map(out_f.offsets[0].float().cpu()),
                                            self.skeleton.flip_index, plan.out_w)
        found = decode(heatmaps, poses, self.config.max_people, self.config.center_threshold)
        found = found.select(found.scores >= self.config.threshold)
        found.keypoints[..., :2] = plan.to_source(found.keypoints[..., :2] * STRIDE)
        nms_score = float(found.center_scores.mean()) if len(found) else 0.0
        return FrameResult(found, nms_score, cut)
