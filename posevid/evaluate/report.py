"""The report: every metric of each model from its scored frames, as the JSON report's dict and as the
printed table."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from posevid.evaluate.accuracy import AP_KEYS, FrameEval, coco_keypoint_ap, coco_results, oks_score, people_summary
from posevid.evaluate.temporal import id_switches, jitter_score


@dataclass
class ModelReport:
    name: str  # "temporal" or "per-frame"
    frames: int  # annotated frames scored
    local_nms_score: float | None  # mean local-NMS score over the scored frames
    oks_score: float | None  # mean OKS of matched predictions
    matched: int  # matched (prediction, ground truth) pairs
    AP: float | None
    AP50: float | None
    AP75: float | None
    APM: float | None  # medium people only (32²–96² px²), as COCO reports
    APL: float | None  # large people only (over 96² px²)
    jitter: float | None  # mean keypoint acceleration error, px/frame²
    jitter_count: int  # (track, frame) terms in that mean
    nms_per_frame: list[list[float]]  # per video, every frame in order (annotated or not)
    people: dict = field(default_factory=dict)  # people_summary: threshold, found, false, missed, AP, by_threshold
    id_switches: int | None = None  # tracker id switches along the ground-truth tracks (None: no tracks)
    id_matched: int = 0  # (track, frame) matches they are counted over

    @property
    def people_precision(self) -> float | None:
        reported = self.people.get("found", 0) + self.people.get("false", 0)
        return self.people["found"] / reported if reported else None

    @property
    def people_recall(self) -> float | None:
        labelled = self.people.get("found", 0) + self.people.get("missed", 0)
        return self.people["found"] / labelled if labelled else None

    def to_dict(self) -> dict:
        return {**{k: getattr(self, k) for k in (
            "name", "frames", "local_nms_score", "oks_score", "matched", *AP_KEYS, "jitter",
            "jitter_count", "nms_per_frame", "people", "id_switches", "id_matched")},
            "people_precision": self.people_precision, "people_recall": self.people_recall}


def model_report(name: str, frames: list[FrameEval], coco_gt: dict, nms_per_frame: list[list[float]],
                 people_threshold: float) -> ModelReport:
    """All metrics of one model from its scored frames (coco_gt: the COCO ground truth, `GroundTruth.coco`)."""
    people = people_summary(frames, people_threshold)
    nms = [f.nms_score for f in frames]
    oks_mean, matched = oks_score(frames)
    jit, jit_n = jitter_score(frames)
    switches, id_matched = id_switches(frames)
    ap = coco_keypoint_ap(coco_gt, coco_results(frames), [f.image_id for f in frames])
    return ModelReport(name, len(frames), float(np.mean(nms)) if nms else None, oks_mean, matched,
                       *(ap[k] for k in AP_KEYS), jit, jit_n, nms_per_frame, people, switches, id_matched)


@dataclass
class Report:
    annotations: str
    videos: list[str]  # where each video's frames came from (mp4 or first image), in evaluation order
    threshold: float  # minimum pose score the predictors reported
    models: list[ModelReport]  # temporal first, then per-frame
    # input_size, flip, snap_radius, pose_score, precision, scales as the predictors resolved them
    decoding: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"annotations": self.annotations, "videos": self.videos, "threshold": self.threshold,
                **self.decoding, "models": {m.name: m.to_dict() for m in self.models}}

    def table(self) -> str:
        """The models side by side as a plain-text table."""
        at = self.models[0].people.get("threshold") if self.models else None
        head = ["model", "local NMS score", "OKS score", *AP_KEYS, "jitter px/frame²",
                f"people P/R @{at:g}" if at is not None else "people P/R", "people AP", "ID switches"]

        def num(x, digits=3):
            return "n/a" if x is None else f"{x:.{digits}f}"

        rows = [[m.name, num(m.local_nms_score), num(m.oks_score), *(num(getattr(m, k)) for k in AP_KEYS),
                 num(m.jitter, 2), f"{num(m.people_precision, 2)}/{num(m.people_recall, 2)}",
                 num(m.people.get("AP")), "n/a" if m.id_switches is None else str(m.id_switches)]
                for m in self.models]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

        def line(cells):
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        frames = self.models[0].frames if self.models else 0
        return "\n".join([line(head), "  ".join("-" * w for w in widths), *[line(r) for r in rows],
                          f"{frames} annotated frames in {len(self.videos)} videos"])
