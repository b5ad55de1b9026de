"""Pinhole camera and a vectorised numpy z-buffer rasteriser.

Pixel convention (the one posevid's targets use): pixel (col c, row r) has its centre at image
coordinate (x, y) = (c, r); a point projected to (x, y) lies on pixel (round(x), round(y)).
Camera frame (OpenCV): x right, y down, z forward.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    """A pinhole camera. R: (3, 3) world->camera rotation, t: (3,) so x_cam = R @ x_world + t."""

    R: np.ndarray
    t: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def position(self) -> np.ndarray:
        """(3,) camera centre in world coordinates."""
        return -self.R.T @ self.t

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> (..., 3) camera-frame points."""
        return points @ self.R.T + self.t

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(..., 3) world points -> image points (..., 2) as (x, y), and depth (...) along the axis."""
        pc = self.to_camera(points)
        z = pc[..., 2]
        zs = np.where(np.abs(z) < 1e-9, 1e-9, z)
        xy = np.stack([self.fx * pc[..., 0] / zs + self.cx, self.fy * pc[..., 1] / zs + self.cy], axis=-1)
        return xy, z


def look_at(position: np.ndarray, target: np.ndarray, fx: float, width: int, height: int,
            roll: float = 0.0) -> Camera:
    """A camera at `position` (world, z up) looking at `target`, square pixels, centred principal point."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    up = np.array([0.0, 0.0, 1.0])
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-6:  # looking straight down/up
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])  # rows: camera axes in world coordinates
    if roll:
        c, s = np.cos(roll), np.sin(roll)
        R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) @ R
    t = -R @ position
    return Camera(R, t, fx, fx, (width - 1) / 2.0, (height - 1) / 2.0, width, height)


@dataclass
class Raster:
    """What the rasteriser writes per pixel.

    color: (H, W, C) float32 interpolated vertex attributes (zeros where empty).
    depth: (H, W) float32 camera depth of the nearest surface (inf where empty).
    ids: (H, W) int16 object id of the nearest surface (-1 where empty).
    """

    color: np.ndarray
    depth: np.ndarray
    ids: np.ndarray


def rasterize(xy: np.ndarray, z: np.ndarray, faces: np.ndarray, attributes: np.ndarray,
              face_ids: np.ndarray, width: int, height: int, near: float = 0.05,
              cull_backfaces: bool = True) -> Raster:
    """Draw triangles with a z-buffer.

    xy: (N, 2) projected vertices (x, y); z: (N,) camera depths; faces: (F, 3) vertex indices;
    attributes: (N, C) per-vertex values interpolated perspective-correctly (e.g. shaded colour);
    face_ids: (F,) int object id per face (written to `ids`).
    Back faces (clockwise in the image, i.e. counter-clockwise meshes seen from behind) are culled.
    """
    C = attributes.shape[1]
    color = np.zeros((height, width, C), np.float32)
    depth = np.full((height, width), np.inf, np.float32)
    ids = np.full((height, width), -1, np.int16)

    # Cull first (behind the near plane, back-facing, degenerate), then bound only what is left.
    zf = z[faces]  # (F, 3)
    P = xy.astype(np.float64)
    X0, Y0 = P[faces[:, 0], 0], P[faces[:, 0], 1]
    X1, Y1 = P[faces[:, 1], 0], P[faces[:, 1], 1]
    X2, Y2 = P[faces[:, 2], 0], P[faces[:, 2], 1]
    area = (X1 - X0) * (Y2 - Y0) - (X2 - X0) * (Y1 - Y0)  # < 0: counter-clockwise on screen (y down)
    keep = (area < -1e-12) if cull_backfaces else (np.abs(area) > 1e-12)
    keep &= (zf[:, 0] > near) & (zf[:, 1] > near) & (zf[:, 2] > near)
    f = np.nonzero(keep)[0]
    x0, y0, x1, y1, x2, y2, area = X0[f], Y0[f], X1[f], Y1[f], X2[f], Y2[f], area[f]
    xmin = np.ceil(np.minimum(np.minimum(x0, x1), x2) - 1e-9).clip(0, width)
    xmax = np.floor(np.maximum(np.maximum(x0, x1), x2)).clip(-1, width - 1)
    ymin = np.ceil(np.minimum(np.minimum(y0, y1), y2) - 1e-9).clip(0, height)
    ymax = np.floor(np.maximum(np.maximum(y0, y1), y2)).clip(-1, height - 1)
    inb = (xmax >= xmin) & (ymax >= ymin)
    f, x0, y0, x1, y1, x2, y2, area = f[inb], x0[inb], y0[inb], x1[inb], y1[inb], x2[inb], y2[inb], area[inb]
    xmin, xmax, ymin, ymax = xmin[inb], xmax[inb], ymin[inb], ymax[inb]
    if len(f) == 0:
        return Raster(color, depth, ids)
    xmin, ymin = xmin.astype(np.int64), ymin.astype(np.int64)
    w = xmax.astype(np.int64) - xmin + 1
    h = ymax.astype(np.int64) - ymin + 1
    n = w * h
    # One candidate fragment per (face, pixel in its bounding box).
    tri = np.repeat(np.arange(len(f)), n)  # index into the kept faces
    start = np.repeat(np.cumsum(n) - n, n)
    local = np.arange(tri.size) - start
    wt = w[tri]
    px = xmin[tri] + local % wt
    py = ymin[tri] + local // wt
    # Barycentric weights of vertex k = signed area of the sub-triangle opposite it / area.
    X, Y = px.astype(np.float64), py.astype(np.float64)
    a = area[tri]
    b0 = ((x1[tri] - X) * (y2[tri] - Y) - (x2[tri] - X) * (y1[tri] - Y)) / a
    b1 = ((x2[tri] - X) * (y0[tri] - Y) - (x0[tri] - X) * (y2[tri] - Y)) / a
    b2 = 1.0 - b0 - b1
    inside = (b0 >= -1e-9) & (b1 >= -1e-9) & (b2 >= -1e-9)
    fi, px, py = f[tri[inside]], px[inside], py[inside]
    b = np.stack([b0[inside], b1[inside], b2[inside]], 1)  # (M, 3)
    invz = b / zf[fi]  # perspective-correct weights before normalisation
    s = invz.sum(1)
    frag_depth = 1.0 / s
    pix = py * width + px
    order = np.lexsort((frag_depth, pix))  # by pixel, nearest first
    pix_sorted = pix[order]
    first = np.ones(len(order), bool)
    first[1:] = pix_sorted[1:] != pix_sorted[:-1]
    win = order[first]
    wpix = pix[win]
    wb = invz[win] / s[win, None]  # (P, 3) perspective-correct barycentrics
    wf = fi[win]
    vals = np.einsum("pk,pkc->pc", wb, attributes[faces[wf]])
    color.reshape(-1, C)[wpix] = vals
    depth.reshape(-1)[wpix] = frag_depth[win]
    ids.reshape(-1)[wpix] = face_ids[wf]
    return Raster(color, depth, ids)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit vertex normals, area-weighted average of the face normals (outward for CCW faces)."""
    v = vertices.astype(np.float64)
    fn = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    V = len(v)
    n = np.stack([sum(np.bincount(faces[:, k], fn[:, c], minlength=V) for k in range(3)) for c in range(3)], 1)
    return (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)).astype(np.float32)
