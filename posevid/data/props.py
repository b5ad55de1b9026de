"""Upright things that are not people: poles, signs, cones, bollards, bins, boxes, trunks.

Real street footage is full of person-sized vertical objects, and a detector trained only on people
over flat photos learns "upright blob = person" (posevid's phantoms sat on signs, posts and cones).
These props stand on the ground plane of a synthetic scene, are drawn by the same z-buffer as the
people (so they hide them and are hidden by them), and never get annotations.

Meshes are counter-clockwise seen from outside, as the rasteriser's back-face culling expects.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posevid.data.appearance import Outfit
from posevid.data.render import vertex_normals


@dataclass
class Prop:
    verts: np.ndarray  # (V, 3) world, static
    faces: np.ndarray  # (F, 3)
    normals: np.ndarray  # (V, 3)
    look: Outfit  # albedo, shininess (thickness unused)

    def surface_points(self, per_face: int = 6) -> np.ndarray:
        """(F * per_face², 3) points spread over the faces: long thin triangles (a 4 m pole is 12 of
        them) need more than their corners to cast a continuous shadow."""
        u = (np.arange(per_face) + 0.5) / per_face
        a, b = np.meshgrid(u, u)
        keep = a + b < 1.0
        w = np.stack([1 - a[keep] - b[keep], a[keep], b[keep]], 1)  # barycentric, inside each face
        return np.einsum("sk,fkc->fsc", w, self.verts[self.faces]).reshape(-1, 3)


def lathe(profile: list[tuple[float, float]], segments: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Surface of revolution about the z axis from (z, radius) points, bottom to top, with flat caps.

    Each band between two profile points has its own ring of vertices at both ends, so a band can be
    coloured on its own (the stripes of a cone) and the caps shade flat.
    Returns vertices (V, 3) and faces (F, 3); band k owns vertices 2·k·segments to 2·(k+1)·segments.
    """
    a = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    c, s = np.cos(a), np.sin(a)
    verts, faces = [], []

    def ring(z, r):
        verts.append(np.stack([r * c, r * s, np.full(segments, z)], 1))
        return sum(len(v) for v in verts) - segments

    i = np.arange(segments)
    j = (i + 1) % segments
    for (z0, r0), (z1, r1) in zip(profile[:-1], profile[1:]):
        b, t = ring(z0, r0), ring(z1, r1)
        faces += [np.stack([b + i, b + j, t + i], 1), np.stack([t + i, b + j, t + j], 1)]
    for (z, r), up in ((profile[0], False), (profile[-1], True)):
        if r <= 0:
            continue
        k = ring(z, r)
        centre = sum(len(v) for v in verts)
        verts.append(np.array([[0.0, 0.0, z]]))
        tri = np.stack([np.full(segments, centre), k + i, k + j], 1)
        faces.append(tri if up else tri[:, [0, 2, 1]])
    return np.concatenate(verts), np.concatenate(faces)


def box(width: float, depth: float, height: float, z0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box centred on the z axis from z0 to z0 + height; 4 vertices per side (flat shading)."""
    x, y = width / 2, depth / 2
    quads = [  # corners counter-clockwise seen from outside
        [(-x, -y, 0), (x, -y, 0), (x, -y, 1), (-x, -y, 1)],  # -y
        [(x, y, 0), (-x, y, 0), (-x, y, 1), (x, y, 1)],  # +y
        [(x, -y, 0), (x, y, 0), (x, y, 1), (x, -y, 1)],  # +x
        [(-x, y, 0), (-x, -y, 0), (-x, -y, 1), (-x, y, 1)],  # -x
        [(-x, -y, 1), (x, -y, 1), (x, y, 1), (-x, y, 1)],  # top
        [(-x, y, 0), (x, y, 0), (x, -y, 0), (-x, -y, 0)],  # bottom
    ]
    v = np.array(quads, np.float64).reshape(-1, 3)
    v[:, 2] = z0 + v[:, 2] * height
    q = np.arange(6)[:, None] * 4
    faces = np.concatenate([q + [0, 1, 2], q + [0, 2, 3]])
    return v, faces


def _colour(rng: np.random.Generator) -> np.ndarray:
    """RGB in [0, 1]: greys and metals half the time, otherwise any hue."""
    if rng.uniform() < 0.5:
        return np.full(3, rng.uniform(0.1, 0.85)) * rng.uniform(0.95, 1.05, 3)
    hsv_v, sat = rng.uniform(0.25, 0.95), rng.uniform(0.3, 1.0)
    rgb = np.clip(np.abs(((rng.uniform() * 6 + np.array([0, 4, 2])) % 6) - 3) - 1, 0, 1)  # a random hue
    return hsv_v * (1 - sat + sat * rgb)


_ORANGE, _WHITE = np.array([0.95, 0.35, 0.05]), np.array([0.92, 0.92, 0.9])


def _shape(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, faces and per-vertex RGB of one prop at the origin."""
    u = rng.uniform
    if kind == "pole":  # lamp post, post, pipe; sometimes with a lamp or a ball on top
        r, h = u(0.03, 0.12), u(1.4, 4.0)
        prof = [(0.0, r * 1.3), (0.05, r), (h, r * u(0.6, 1.0))]
        if u() < 0.4:
            head = u(0.1, 0.25)
            prof += [(h + 0.02, head), (h + head, head * 0.8), (h + 1.6 * head, 0.0)]
        v, f = lathe(prof)
        col = np.tile(_colour(rng), (len(v), 1))
    elif kind == "trunk":
        r, h = u(0.08, 0.3), u(1.8, 4.0)
        v, f = lathe([(0.0, r * 1.3), (0.3, r), (h * 0.6, r * 0.9), (h, r * 0.7)], segments=14)
        col = np.tile(np.array([0.35, 0.25, 0.15]) * u(0.5, 1.3), (len(v), 1))
    elif kind == "cone":
        r, h = u(0.12, 0.3), u(0.4, 1.0)
        zs, seg = np.linspace(0, h, 6), 12
        v, f = lathe([(0.0, r * 1.4), (0.03, r * 1.4), (0.03, r)] + [(z, r * (1 - 0.85 * z / h)) for z in zs[1:]],
                     segments=seg)
        col = np.tile(_ORANGE * u(0.7, 1.05), (len(v), 1))
        for band in (3, 5):  # white bands on the upper part (bands 0-1 are the square foot)
            col[band * 2 * seg:(band + 1) * 2 * seg] = _WHITE
    elif kind == "bollard":  # bollards, bins, hydrants, pillars: fat and person-high or lower
        r, h = u(0.1, 0.35), u(0.5, 1.9)
        v, f = lathe([(0.0, r), (h * u(0.7, 0.95), r * u(0.85, 1.1)), (h, r * u(0.3, 0.9))])
        col = np.tile(_colour(rng), (len(v), 1))
    elif kind == "sign":  # a post with a panel: road signs, boards
        r, h = u(0.025, 0.06), u(1.6, 2.8)
        pv, pf = lathe([(0.0, r), (h, r)], segments=8)
        w, ph = u(0.3, 1.0), u(0.3, 0.9)
        bv, bf = box(w, 0.03, ph, z0=h - ph * u(0.5, 1.0))
        bv[:, 1] += r + 0.02
        v, f = np.concatenate([pv, bv]), np.concatenate([pf, bf + len(pv)])
        col = np.concatenate([np.tile(_colour(rng), (len(pv), 1)), np.tile(_colour(rng), (len(bv), 1))])
    else:  # "box": cabinets, crates, vending machines
        v, f = box(u(0.3, 1.2), u(0.3, 0.8), u(0.4, 2.0))
        col = np.tile(_colour(rng), (len(v), 1))
    col = col * u(0.85, 1.15, (len(v), 1))  # dirt and wear, per vertex
    return v, f, np.clip(col, 0, 1)


KINDS = ("pole", "trunk", "cone", "bollard", "sign", "box")


def random_props(rng: np.random.Generator, people_xy: list[np.ndarray], centre: np.ndarray,
                 cam_xy: np.ndarray) -> list[Prop]:
    """1-4 props on the ground around `centre` (world xy), at least 0.4 m beyond any point of any
    person's path (people_xy: (T, 2) each) and 1.5 m from every camera position (cam_xy: (T, 2))."""
    out = []
    for _ in range(int(rng.integers(1, 5))):
        kind = KINDS[int(rng.integers(0, len(KINDS)))]
        v, f, col = _shape(kind, rng)
        reach = float(np.linalg.norm(v[:, :2], axis=1).max())
        for _ in range(30):
            a, d = rng.uniform(0, 2 * np.pi), rng.uniform(0.7, 5.0)
            xy = centre[:2] + d * np.array([np.cos(a), np.sin(a)])
            far_from_people = all(np.linalg.norm(p - xy, axis=1).min() > reach + 0.4 for p in people_xy)
            if far_from_people and np.linalg.norm(cam_xy - xy, axis=1).min() > 1.5 + reach:
                break
        else:
            continue
        turn = rng.uniform(0, 2 * np.pi)
        c, s = np.cos(turn), np.sin(turn)
        world = v @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T + [xy[0], xy[1], 0.0]
        look = Outfit(col.astype(np.float32), np.full(len(v), rng.uniform(0.0, 0.5), np.float32),
                      np.zeros(len(v), np.float32))
        out.append(Prop(world.astype(np.float32), f.astype(np.int64), vertex_normals(world, f), look))
    return out
