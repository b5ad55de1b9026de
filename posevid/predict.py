"""Frames in, poses out: runs the network on a stream of frames and owns the ConvGRU state."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from posevid.config import check_pose_score
from posevid.decode import Poses, center_peaks, decode, merge_flipped, merge_scales, pose_map
from posevid.errors import PosevidError
from posevid.frames import STRIDE, Resize, to_tensor
from posevid.model.dekr import PoseHeads
from posevid.model.inference import inference_copy, resolve_precision
from posevid.skeleton import COCO, Skeleton


@dataclass
class PredictConfig:
    threshold: float | None = None  # minimum pose score reported; None = the model's (ModelConfig.threshold)
    center_threshold: float = 0.01  # minimum center-heatmap peak considered a person candidate
    max_people: int = 30
    flip: bool = False  # average with a pass on the mirrored frame (2× slower, slightly more accurate)
    input_size: int | None = None  # shorter input side; None = the model's own
    scene_cut: float = 0.2  # mean absolute thumbnail difference (0..1) that resets the GRU state
    snap_radius: float | None = None  # keypoints move to heatmap peaks within this × pose size; None = the model's
    pose_score: str | None = None  # config.POSE_SCORES; None = the model's
    # "fp32", "bf16" (the backbone in bfloat16: faster where the CPU has it, outputs differ slightly), or "auto":
    # bf16 on CPUs that compute it natively, else fp32 (posevid.model.inference.resolve_precision)
    precision: str = "auto"
    # Multi-scale test: input sizes as factors of input_size, largest first, each person taken from the
    # largest scale that sees it under scale_max_size (decode.merge_scales); each scale costs its pixels.
    scales: tuple[float, ...] = (1.0,)
    # Keypoint-box diagonal (input pixels) above which a person is taken from a smaller scale: on the dev
    # photos effnet's regression draws people above about 200 px shrunk (0.67 of their size, against 0.95
    # below), and two-scale keypoint AP was best at 220 of 180-360 (posevid/weights/posevid_effnet.md).
    scale_max_size: float = 220.0


@dataclass
class FrameResult:
    poses: Poses  # source-pixel coordinates
    nms_score: float  # mean center peak of the reported people (the local-NMS score), 0 when none
    scene_cut: bool  # the GRU state was reset before this frame


class Predictor:
    """Stateful per-video predictor: call it on consecutive frames; `reset()` between videos."""

    def __init__(self, model: PoseHeads, config: PredictConfig | None = None, device: str | torch.device = "cpu",
                 skeleton: Skeleton = COCO):
        self.model = inference_copy(model).to(device)  # `model` itself is left as it is
        self.config = config or PredictConfig()
        self.device = torch.device(device)
        self.precision = resolve_precision(self.config.precision, self.device)
        self.skeleton = skeleton
        self.input_size = self.config.input_size or model.cfg.input_size
        scales = tuple(self.config.scales)
        self.input_sizes = [round(self.input_size * s) for s in scales]  # shorter input side per scale
        if not scales or self.input_sizes[-1] < 32 or any(a <= b for a, b in zip(self.input_sizes, self.input_sizes[1:])):
            raise PosevidError(f"scales {scales} give input sizes {self.input_sizes} at input size {self.input_size}: "
                               "they must decrease, none under 32")
        # Decoding settings the config leaves open are the weights' own (ModelConfig).
        c, m = self.config, model.cfg
        self.snap_radius = m.snap_radius if c.snap_radius is None else c.snap_radius
        self.pose_score = check_pose_score(m.pose_score if c.pose_score is None else c.pose_score)
        self.threshold = m.threshold if c.threshold is None else c.threshold
        self.reset()

    def reset(self) -> None:
        """Forget the video context (new video)."""
        # per scale, (streams, hidden, h, w): the frames, and with flip their mirror
        self._states: list[torch.Tensor | None] = [None] * len(self.input_sizes)
        self._thumb: np.ndarray | None = None
        self._plans: list[Resize] = []  # per scale

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
            resized = not self._plans or (self._plans[0].src_w, self._plans[0].src_h) != (w, h)
            cut = not resized and self._is_scene_cut(image)
            if resized or cut:
                if run:  # frames before the cut finish with the old state
                    results += self._run(run, run_starts_at_cut)
                run, run_starts_at_cut = [], cut
                if resized:
                    self.reset()
                    self._plans = [Resize.plan(w, h, size) for size in self.input_sizes]
                    self._is_scene_cut(image)  # remember this frame for the next comparison
                self._states = [None] * len(self.input_sizes)
            run.append(image)
        if run:
            results += self._run(run, run_starts_at_cut)
        return results

    def _run(self, images: list[np.ndarray], cut: bool) -> list[FrameResult]:
        passes = [self._run_scale(images, i) for i in range(len(self._plans))]  # (scales, frames) of Poses
        results = []
        for t in range(len(images)):
            if len(passes) == 1:
                found = passes[0][t]
            else:
                shorter = min(self._plans[0].src_w, self._plans[0].src_h)
                found = merge_scales([p[t] for p in passes], [size / shorter for size in self.input_sizes],
                                     self.config.scale_max_size)
            found = found.select(found.scores >= self.threshold)
            nms_score = float(found.center_scores.mean()) if len(found) else 0.0
            results.append(FrameResult(found, nms_score, cut and t == 0))
        return results

    def _run_scale(self, images: list[np.ndarray], scale: int) -> list[Poses]:
        """The network and decoding at one input scale → each frame's poses in source pixels, unthresholded."""
        plan = self._plans[scale]
        # The mirrored frames (flip test) are a second stream of the same batch, with their own GRU state.
        streams = [torch.stack([to_tensor(im, plan, flip=flip)[0] for im in images])
                   for flip in ((False, True) if self.config.flip else (False,))]
        x = torch.stack(streams).to(self.device)  # (S, T, 3, H, W)
        bf16 = self.precision == "bf16"
        if self.config.flip:  # merging the mirrored pass needs the dense maps
            out = self.model.forward_clip(x, self._states[scale], bf16)
            offsets = out.offsets.float().cpu()  # (S, T, C, h, w)
        else:  # the regression is read at local-NMS centres only: compute it there (offsets_at)
            out = self.model.run_clip(x, self._states[scale], bf16)
        heatmaps = out.heatmaps.float().cpu()
        self._states[scale] = out.state
        results = []
        for t in range(len(images)):
            if self.config.flip:
                heat, poses = merge_flipped(heatmaps[0, t], pose_map(offsets[0, t]), heatmaps[1, t],
                                            pose_map(offsets[1, t]), self.skeleton.flip_index, plan.out_w)
            else:
                heat = heatmaps[0, t]
                poses = pose_map(self._sparse_offsets(heat[-1], out.features[0, t]))
            found = decode(heat, poses, self.config.max_people, self.config.center_threshold,
                           snap_radius=self.snap_radius, pose_score=self.pose_score)
            found.keypoints[..., :2] = plan.to_source(found.keypoints[..., :2] * STRIDE)
            results.append(found)
        return results

    def _sparse_offsets(self, center: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """(2K, h, w) offsets, computed only at the centres `decode` will keep (`center_peaks` with its
        settings) and zero elsewhere: what decode reads of them equals the dense maps."""
        idx, _ = center_peaks(center, self.config.max_people, self.config.center_threshold)
        k2 = 2 * self.model.cfg.num_keypoints
        offsets = torch.zeros(k2, center.numel())
        if len(idx):
            offsets[:, idx] = self.model.offsets_at(features, idx.to(features.device)).float().cpu().T
        return offsets.view(k2, *center.shape)
