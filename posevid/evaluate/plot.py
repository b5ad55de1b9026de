"""The seed's figure: the local-NMS score along the frames, one line per model, drawn with cv2."""
from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

from posevid.evaluate.report import Report
from posevid.images import write_image

COLORS = {"temporal": (180, 105, 30), "per-frame": (20, 120, 240)}  # BGR: blue, orange


def mean_curve(per_video: list[list[float]]) -> np.ndarray:
    """(T,) mean over videos of the score at each frame position (videos shorter than t left out)."""
    T = max((len(v) for v in per_video), default=0)
    total, count = np.zeros(T), np.zeros(T)
    for v in per_video:
        total[: len(v)] += v
        count[: len(v)] += 1
    return total / np.maximum(count, 1)


def _nice_step(span: float, ticks: int) -> float:
    raw = span / max(ticks, 1)
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def plot_nms_scores(report: Report, path: str | os.PathLike, width: int = 900, height: int = 400) -> Path:
    """PNG line plot of the local-NMS score along the frames, one line per model.

    With several videos each line is the mean over videos at each frame position. Written through a
    partial file then renamed (a finished `path` is always complete); PosevidError when it cannot be.
    """
    return write_image(path, draw_nms_scores(report, width, height))


def draw_nms_scores(report: Report, width: int = 900, height: int = 400) -> np.ndarray:
    """The plot of `plot_nms_scores` as an (height, width, 3) uint8 BGR image."""
    curves = [(m.name, mean_curve(m.nms_per_frame)) for m in report.models]
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 80, 20, 40, 55
    x0, x1, y0, y1 = left, width - right, top, height - bottom  # plot area (y0 top, y1 bottom)
    font, aa = cv2.FONT_HERSHEY_SIMPLEX, cv2.LINE_AA
    T = max((len(c) for _, c in curves), default=0)
    ymax_data = max((float(c.max()) for _, c in curves if len(c)), default=0.0)
    ystep = _nice_step(max(ymax_data, 1e-3) * 1.05, 5)
    ymax = ystep * math.ceil(max(ymax_data, 1e-3) * 1.05 / ystep)
    xmax = max(T - 1, 1)
    xstep = max(1, int(_nice_step(xmax, 8)))

    def px(t: float, s: float) -> tuple[int, int]:
        return (int(round(x0 + (x1 - x0) * t / xmax)), int(round(y1 - (y1 - y0) * s / ymax)))

    for i in range(int(round(ymax / ystep)) + 1):  # horizontal grid and y ticks
        s = i * ystep
        _, y = px(0, s)
        cv2.line(img, (x0, y), (x1, y), (225, 225, 225), 1, aa)
        cv2.line(img, (x0 - 5, y), (x0, y), (0, 0, 0), 1, aa)
        label = f"{s:.3g}"
        (tw, th), _ = cv2.getTextSize(label, font, 0.45, 1)
        cv2.putText(img, label, (x0 - 8 - tw, y + th // 2), font, 0.45, (0, 0, 0), 1, aa)
    for t in range(0, xmax + 1, xstep):  # x ticks
        x, _ = px(t, 0)
        cv2.line(img, (x, y1), (x, y1 + 5), (0, 0, 0), 1, aa)
        label = str(t)
        (tw, th), _ = cv2.getTextSize(label, font, 0.45, 1)
        cv2.putText(img, label, (x - tw // 2, y1 + 10 + th), font, 0.45, (0, 0, 0), 1, aa)
    cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), 1, aa)
    cv2.putText(img, "frame", ((x0 + x1) // 2 - 20, height - 12), font, 0.5, (0, 0, 0), 1, aa)
    videos = max((len(m.nms_per_frame) for m in report.models), default=0)
    title = "local NMS score (mean center peak)" + (f", mean over {videos} videos" if videos > 1 else "")
    cv2.putText(img, title, (10, 24), font, 0.55, (0, 0, 0), 1, aa)

    for name, c in curves:
        color = COLORS.get(name, (0, 0, 0))
        pts = np.array([px(t, s) for t, s in enumerate(c)], np.int32).reshape(-1, 1, 2)
        if len(c) > 1:
            cv2.polylines(img, [pts], False, color, 2, aa)
        elif len(c) == 1:
            cv2.circle(img, tuple(int(v) for v in pts[0, 0]), 4, color, -1, aa)
    # legend in the top margin, right-aligned: a short line of each colour and the model's name
    x = x1
    for name, _ in reversed(curves):
        tw = cv2.getTextSize(name, font, 0.5, 1)[0][0]
        x -= tw
        cv2.putText(img, name, (x, 24), font, 0.5, (0, 0, 0), 1, aa)
        cv2.line(img, (x - 34, 19), (x - 6, 19), COLORS.get(name, (0, 0, 0)), 2, aa)
        x -= 54
    return img
