"""Drawing poses onto video frames: limbs, keypoint dots and a track-id label, one colour per track."""
from __future__ import annotations

import colorsys

import cv2
import numpy as np

from posevid.skeleton import COCO, Skeleton

_SHIFT = 4  # cv2 fixed-point bits: sub-pixel endpoints keep anti-aliased limbs from wobbling
_ONE = 1 << _SHIFT
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, saturated BGR colour for a track id (the same id is the same colour in every frame).

    Hues step by the golden ratio, so consecutive ids (which are usually on screen together) differ a lot.
    """
    hue = (int(track_id) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_poses(
    image: np.ndarray,
    keypoints: np.ndarray,
    track_ids: np.ndarray | None = None,
    kpt_threshold: float = 0.2,
    skeleton: Skeleton = COCO,
) -> np.ndarray:
    """Draw poses onto ``image`` in place and return it.

    Args:
        image: (H, W, 3) uint8 BGR frame, C-contiguous (cv2 draws into its memory).
        keypoints: (P, K, 3) poses, (x, y, score) in this image's pixels.
        track_ids: (P,) int track ids for colour and label, or None (colour by index, no label).
        kpt_threshold: only keypoints with score >= this are drawn, and only limbs joining two of them.
        skeleton: keypoint metadata; its ``edges`` are the limbs.

    Returns:
        ``image`` itself.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"draw_poses: expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if not image.flags.c_contiguous:
        raise ValueError("draw_poses: the image must be C-contiguous to be drawn on in place")
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, skeleton.num_keypoints, 3)
    if track_ids is not None and len(track_ids) != kp.shape[0]:
        raise ValueError(f"draw_poses: {kp.shape[0]} poses but {len(track_ids)} track ids")
    H, W = image.shape[:2]
    # sizes follow the frame so a 4K render looks like a 640-pixel one
    frame_thickness = max(1, int(round(min(H, W) / 150)))
    frame_font = max(0.35, min(H, W) / 700)

    lim = 4 * max(H, W)
    edges = np.asarray(skeleton.edges, dtype=np.int64).reshape(-1, 2)
    for p in range(kp.shape[0]):
        ok = (kp[p, :, 2] >= kpt_threshold) & np.isfinite(kp[p, :, :2]).all(axis=1)
        if not ok.any():
            continue
        color = track_color(int(track_ids[p]) if track_ids is not None else p + 1)
        # ... but no thicker than the person is big: distant people keep visible limbs and small labels
        span = float(np.ptp(kp[p, ok, :2], axis=0).max())
        thickness = int(np.clip(round(span / 40), 1, frame_thickness))
        radius = thickness + 1
        font_scale, font_thick = min(frame_font, max(0.35, span / 120)), max(1, thickness // 2)
        # fixed-point pixel coordinates, clipped so huge outliers cannot overflow cv2's int32 maths
        pts = np.round(np.clip(kp[p, :, :2], -lim, lim) * _ONE).astype(np.int64).tolist()
        for a, b in edges[ok[edges[:, 0]] & ok[edges[:, 1]]].tolist():
            cv2.line(image, pts[a], pts[b], color, thickness, cv2.LINE_AA, _SHIFT)
        for j in np.flatnonzero(ok).tolist():
            cv2.circle(image, pts[j], radius * _ONE, color, -1, cv2.LINE_AA, _SHIFT)

        if track_ids is not None:
            # label above the top of the visible keypoints' box (the head for an upright person)
            text = str(int(track_ids[p]))
            (tw, th), base = cv2.getTextSize(text, _FONT, font_scale, font_thick)
            x0 = int(np.clip(kp[p, ok, 0].min(), 0, max(0, W - tw - 2)))
            y_top = int(kp[p, ok, 1].min()) - radius - 2
            y1 = int(np.clip(y_top, th + base + 2, H - 1))  # keep the label on screen
            cv2.rectangle(image, (x0, y1 - th - base - 2), (x0 + tw + 2, y1), color, -1)
            cv2.putText(image, text, (x0 + 1, y1 - base), _FONT, font_scale, (0, 0, 0), font_thick,
                        cv2.LINE_AA)
    return image
