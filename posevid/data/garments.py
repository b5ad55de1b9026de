"""Clothes that hang free of the legs (skirts, dresses and long coats), and long hair.

The outfit in appearance.py is painted on the body and pushed a few centimetres off the skin, which
makes trousers and shirts but nothing that hangs between the legs. A skirt or a coat changes what a
person looks like where the pose is hardest to see (the knees vanish, the silhouette becomes a cone),
and real street footage is full of them. A garment here is a tube of rings from the waist to a hem,
rebuilt in every frame from the person's keypoints and vertices: each ring is an ellipse in the
torso's horizontal plane that encloses both legs at its height, so the cloth swings out with a
stride. It is drawn with the person's id, so it hides the legs in the depth buffer and belongs to the
person's mask, box and area; keypoints never move.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from posevid.data.appearance import Outfit, cloth_colour, cloth_pattern
from posevid.data.body import PARTS, Body
from posevid.data.render import vertex_normals

KINDS = ("skirt", "dress", "coat")
_RINGS, _AROUND = 7, 28  # rings from waist to hem, vertices per ring


@dataclass
class Garment:
    verts: np.ndarray  # (T, V, 3) world
    faces: np.ndarray  # (F, 3), outer surface counter-clockwise from outside, then the inner one
    normals: np.ndarray  # (T, V, 3)
    look: Outfit  # albedo and shininess per vertex (thickness unused)


def grid_faces(rows: int, cols: int, closed: bool) -> np.ndarray:
    """Faces of a rows × cols grid of vertices (row k is vertices k·cols ...; each row lies below the one
    before and runs counter-clockwise seen from above; closed: the last column joins the first, a tube).
    Outward faces first, then the same faces reversed, so the inside of cloth or hair is drawn where a
    camera sees it (the rasteriser culls back faces)."""
    k = np.arange(rows - 1)[:, None] * cols
    j = np.arange(cols if closed else cols - 1)[None]
    j1 = (j + 1) % cols
    a, b, c, d = (k + j).ravel(), (k + j1).ravel(), (k + cols + j).ravel(), (k + cols + j1).ravel()
    outer = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
    return np.concatenate([outer, outer[:, ::-1]]).astype(np.int64)


def _upright(kps: np.ndarray) -> bool:
    """Whether the torso stays within 60 degrees of vertical in every frame of kps (T, 17, 3): garments
    and hair hang along the body, so they are only made for people who never lie or turn upside down."""
    up = (kps[:, 5] + kps[:, 6] - kps[:, 11] - kps[:, 12]) / 2
    return bool((up[:, 2] / np.linalg.norm(up, axis=1)).min() >= 0.5)


def _along(chain: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Points at arc lengths dist (R,) along the polyline chain (P, 3), clamped to its ends."""
    seg = np.linalg.norm(np.diff(chain, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    return np.stack([np.interp(dist, cum, chain[:, c]) for c in range(3)], 1)


def garment_rings(kps: np.ndarray, hips: np.ndarray, length: float, waist_up: float, leg_radius: float,
                  flare: float, folds: tuple[int, float, float], around: int = _AROUND,
                  rings: int = _RINGS) -> np.ndarray:
    """(rings·around, 3) vertices of one frame's garment.

    kps: (17, 3) COCO keypoints, world; hips: (H, 3) the vertices of the hips (they size the waist);
    length: hem as a fraction of the hip-knee-ankle length; waist_up: waist height above the hip joints (m);
    leg_radius: clearance kept around each leg (m); flare: relative widening at the hem;
    folds: (count, depth, phase) of the vertical folds that ripple the hem.
    """
    hip_l, hip_r = kps[11], kps[12]
    mid = (hip_l + hip_r) / 2
    up = (kps[5] + kps[6]) / 2 - mid
    up /= max(float(np.linalg.norm(up)), 1e-9)
    e1 = (hip_l - hip_r) - np.dot(hip_l - hip_r, up) * up  # towards the person's left
    e1 /= max(float(np.linalg.norm(e1)), 1e-9)
    e2 = np.cross(up, e1)  # e1 x e2 = up: angles run counter-clockwise seen from above
    waist = mid + waist_up * up
    d = hips - waist
    a0, b0 = np.abs(d @ e1).max() + 0.01, np.abs(d @ e2).max() + 0.01

    legs = [np.stack([waist + (h - mid), h, kps[k], kps[a]]) for h, k, a in ((hip_l, 13, 15), (hip_r, 14, 16))]
    full = min(float(np.linalg.norm(np.diff(c, axis=0), axis=1).sum()) for c in legs)
    s = np.linspace(0.0, 1.0, rings)
    pts = [_along(c, s * length * full) for c in legs]  # (rings, 3) per leg
    centre = (pts[0] + pts[1]) / 2  # ring 0 is the waist: both chains start there
    theta = np.linspace(0.0, 2 * np.pi, around, endpoint=False)
    count, depth, phase = folds
    out = np.empty((rings, around, 3))
    for r in range(rings):
        rel = [p[r] - centre[r] for p in pts]
        clear = leg_radius * min(1.0, 4 * s[r])  # at the waist the hips' own extent is the clearance
        x = np.array([abs(float(v @ e1)) + clear for v in rel])
        y = np.array([abs(float(v @ e2)) + clear for v in rel])
        a, b = max(x.max(), a0), max(y.max(), b0)
        a, b = np.array([a, b]) * max(1.0, float(np.sqrt((x / a) ** 2 + (y / b) ** 2).max()))  # legs inside
        grow = (1 + flare * s[r]) * (1 + depth * s[r] * np.sin(count * theta + phase))
        out[r] = centre[r] + (a * np.cos(theta) * grow)[:, None] * e1 + (b * np.sin(theta) * grow)[:, None] * e2
    return out.reshape(-1, 3)


def random_garment(rng: np.random.Generator, body: Body, outfit: Outfit, verts: np.ndarray,
                   kps: np.ndarray) -> tuple[Garment, Outfit] | None:
    """A skirt, dress or coat for one person over a clip, and the outfit to draw under it; None for
    a person who is upside down or lying in some frame (the tube hangs along the torso, not with gravity).

    verts: (T, V, 3) the person's vertices, kps: (T, 17, 3) keypoints, both world.
    A skirt or dress leaves bare or stockinged legs below the hem; a dress and a coat take the
    colour of the top they continue (the torso is painted in it); a coat keeps the trousers.
    """
    kind = KINDS[int(rng.integers(0, len(KINDS)))]
    if not _upright(kps):
        return None
    part = np.array(PARTS)[body.vertex_part]
    top_colour = np.median(outfit.albedo[part == "torso"], axis=0)
    if kind == "skirt":
        length, colour = rng.uniform(0.3, 0.95), cloth_colour(rng)
    elif kind == "dress":
        length, colour = rng.uniform(0.4, 0.95), top_colour
    else:
        length, colour = rng.uniform(0.45, 0.8), top_colour
    waist_up = rng.uniform(0.02, 0.1) if kind == "skirt" else rng.uniform(-0.02, 0.04)
    flare = rng.uniform(0.0, 0.5) if kind != "coat" else rng.uniform(0.0, 0.2)
    folds = (int(rng.integers(5, 14)), rng.uniform(0.0, 0.06), rng.uniform(0, 2 * np.pi))
    # Clearance around a leg: the thigh's own radius (its vertices around the hip-knee line) plus ease.
    rest = body.rest_vertices.astype(np.float64)
    thigh = rest[(part == "thigh") & (rest[:, 0] > 0)]
    axis = body.keypoint_regressor[[11, 13]] @ rest
    u = (axis[1] - axis[0]) / np.linalg.norm(axis[1] - axis[0])
    rel = thigh - axis[0]
    radius = float(np.percentile(np.linalg.norm(rel - (rel @ u)[:, None] * u, axis=1), 90))
    leg_radius = radius + float(outfit.thickness[part == "thigh"].max()) + rng.uniform(0.01, 0.04)

    hips = part == "hips"
    g_verts = np.stack([garment_rings(k, v[hips], length, waist_up, leg_radius, flare, folds)
                        for v, k in zip(verts.astype(np.float64), kps.astype(np.float64))])
    faces = grid_faces(_RINGS, _AROUND, closed=True)
    outer = faces[: len(faces) // 2]  # normals from the outer surface only (the inner one cancels it)
    normals = np.stack([vertex_normals(v, outer) for v in g_verts])

    n = _RINGS * _AROUND
    pattern = cloth_pattern(rng, g_verts[0] - g_verts[0].mean(0))
    second = cloth_colour(rng) if rng.uniform() < 0.5 else colour * rng.uniform(0.4, 0.8)
    if kind != "skirt":  # a dress or coat goes on in the top's colour, plain
        pattern = np.zeros(n)
    albedo = colour[None] * (1 - pattern[:, None]) + second[None] * pattern[:, None]
    look = Outfit(np.clip(albedo, 0, 1).astype(np.float32), np.full(n, rng.uniform(0.0, 0.2), np.float32),
                  np.zeros(n, np.float32))

    under = outfit.albedo.copy()
    if kind != "coat":  # legs below the hem: skin (bare) or tights; shoes stay
        ankle_z = float((body.keypoint_regressor[[15, 16]] @ rest)[:, 2].max())
        legs = np.isin(part, ["thigh", "shin"]) & (rest[:, 2] > ankle_z + 0.05)  # the hips stay (no bare midriff)
        skin = np.median(outfit.albedo[part == "hand"], axis=0)  # hands are never covered
        tights = cloth_colour(rng) * 0.5 if rng.uniform() < 0.4 else skin
        under[legs] = tights
    return Garment(g_verts.astype(np.float32), faces, normals.astype(np.float32), look), replace(outfit, albedo=under)


# Long hair: a sheet hanging from the back of the skull. The painted hair cap of appearance.py lies on the
# skin, so hair never left the body's silhouette; long hair over the shoulders and back does.
_HAIR_ROWS, _HAIR_COLS = 8, 13
_WRAP = 1.35  # the sheet wraps the back of the head from +_WRAP to -_WRAP radians (about ±77°)


def hair_rows(kps: np.ndarray, body: np.ndarray, length: float, width: float, rows: int = _HAIR_ROWS,
              cols: int = _HAIR_COLS) -> np.ndarray:
    """(rows·cols, 3) vertices of one frame's long hair.

    kps: (17, 3) COCO keypoints, world; body: (V, 3) vertices of the head, neck and torso (the hair
    lies on their back surface); length: how far the hair falls below the crown (m); width: half
    width of the hair over the back (m). Each row is a horizontal half ellipse behind the line between
    the ears; the rows fall straight down and keep 1 cm off the body in front of them.
    """
    ears = (kps[3] + kps[4]) / 2
    flat = np.array([1.0, 1.0, 0.0])  # rows are horizontal: hair hangs with gravity, not along the head
    e1 = (kps[3] - kps[4]) * flat  # towards the person's left
    e1 /= max(float(np.linalg.norm(e1)), 1e-9)
    back = (ears - kps[0]) * flat
    back -= np.dot(back, e1) * e1
    back /= max(float(np.linalg.norm(back)), 1e-9)
    top = ears + np.array([0.0, 0.0, 0.04])  # the crown's back, above the ears
    near = body[np.abs((body - top) @ e1) < 0.12]  # the body's band behind which the hair falls
    phi = np.linspace(_WRAP, -_WRAP, cols)  # the person's left to right: counter-clockwise seen from above
    out = np.empty((rows, cols, 3))
    depth = 0.06
    for r in range(rows):
        c = top - np.array([0.0, 0.0, length * r / (rows - 1)])
        level = near[np.abs(near[:, 2] - c[2]) < 0.04]
        if len(level):
            depth = max(float(((level - c) @ back).max()) + 0.01, 0.02)
        side = np.abs((level - c) @ e1).max() + 0.01 if r == 0 and len(level) else width
        out[r] = c + (side * np.sin(phi))[:, None] * e1 + (depth * np.cos(phi))[:, None] * back
    return out.reshape(-1, 3)


def random_hair(rng: np.random.Generator, body: Body, outfit: Outfit, verts: np.ndarray,
                kps: np.ndarray) -> Garment | None:
    """Long hair in the colour of the person's hair cap, over a clip; None for a bald person or one
    upside down or lying in some frame."""
    part = np.array(PARTS)[body.vertex_part]
    crown = int(np.argmax(body.rest_vertices[:, 2]))
    colour = outfit.albedo[crown].astype(np.float64)
    skin = np.median(outfit.albedo[part == "hand"], axis=0)
    if np.abs(colour - skin).max() < 1e-6 or not _upright(kps):
        return None
    length, width = rng.uniform(0.2, 0.5), rng.uniform(0.06, 0.11)
    carrier = np.isin(part, ["head", "neck", "torso"])
    h_verts = np.stack([hair_rows(k, v[carrier], length, width)
                        for v, k in zip(verts.astype(np.float64), kps.astype(np.float64))])
    faces = grid_faces(_HAIR_ROWS, _HAIR_COLS, closed=False)
    normals = np.stack([vertex_normals(v, faces[: len(faces) // 2]) for v in h_verts])
    n = _HAIR_ROWS * _HAIR_COLS
    col = np.tile(np.arange(_HAIR_COLS), _HAIR_ROWS)
    strands = 1 + 0.15 * np.sin(col * rng.uniform(1.5, 3.0) + rng.uniform(0, 6.3))  # darker and lighter locks
    albedo = colour[None] * strands[:, None]
    look = Outfit(np.clip(albedo, 0, 1).astype(np.float32), np.full(n, 0.3, np.float32), np.zeros(n, np.float32))
    return Garment(h_verts.astype(np.float32), faces, normals.astype(np.float32), look)
