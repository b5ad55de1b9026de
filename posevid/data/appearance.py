"""Appearance of synthetic clips: skin and clothing colours, procedural textures, lighting, real-photo
backgrounds, photo occluders and camera degradations (blur, noise, exposure changes).

Everything takes an explicit `numpy.random.Generator` so clips are reproducible from their seed.
"""
from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass

import cv2
import numpy as np

from posevid.data.body import PARTS, Body

# Curated real photographs (no people) from Debian packages, with package and licence notes.
ALLOW_LIST = os.path.join(os.path.dirname(__file__), "backgrounds.txt")
TRAIN_ONLY_LIST = os.path.join(os.path.dirname(__file__), "backgrounds-train.txt")  # added after the splits were pinned
_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp")
_MIN_SIDE = 240


def curated_backgrounds(list_file: str = ALLOW_LIST) -> list[str]:
    """The photos of a curated list (default backgrounds.txt) that are installed here, sorted."""
    out = []
    with open(list_file) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                path = line.split("|", 1)[-1].strip()
                if os.path.exists(path):
                    out.append(path)
    return sorted(out)


def list_backgrounds(dirs: tuple[str, ...] | None = None) -> list[str]:
    """Background photos: the curated Debian photos, or every image under `dirs` (the user's own
    photos without people), sorted so the choice is the same on every machine."""
    if dirs is None:
        return curated_backgrounds()
    out = []
    for d in dirs:
        for path in glob.glob(os.path.join(d, "**", "*"), recursive=True):
            if path.lower().endswith(_IMAGE_EXT):
                out.append(os.path.realpath(path))
    return sorted(set(out))


def is_heldout_background(path: str) -> bool:
    """One photo in five (by a hash of its file name) is kept for the evaluation splits only."""
    return hashlib.sha1(os.path.basename(path).encode()).digest()[0] % 5 == 0


def load_image(path: str) -> np.ndarray | None:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None or min(img.shape[:2]) < _MIN_SIDE:
        return None
    return img


def random_crop(rng: np.random.Generator, img: np.ndarray, width: int, height: int) -> np.ndarray:
    """A random crop at a random scale, resized to (height, width, 3) BGR uint8; random mirror."""
    H, W = img.shape[:2]
    scale = rng.uniform(0.35, 1.0)
    ch = int(min(H, W * height / width) * scale)
    cw = int(ch * width / height)
    y = int(rng.integers(0, H - ch + 1))
    x = int(rng.integers(0, W - cw + 1))
    crop = cv2.resize(img[y:y + ch, x:x + cw], (width, height), interpolation=cv2.INTER_AREA)
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def clutter_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Fallback when no photos are installed: random rectangles, ellipses and lines over a gradient."""
    img = np.zeros((height, width, 3), np.float32)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    g = np.linspace(0, 1, height)[:, None, None]
    img[:] = c0 * (1 - g) + c1 * g
    for _ in range(int(rng.integers(20, 60))):
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        s = int(rng.integers(4, max(5, width // 3)))
        kind = rng.integers(0, 3)
        if kind == 0:
            cv2.rectangle(img, (x, y), (x + s, y + int(rng.integers(4, s + 5))), color, -1)
        elif kind == 1:
            cv2.ellipse(img, (x, y), (s // 2, int(rng.integers(2, s))), float(rng.uniform(0, 180)), 0, 360, color, -1)
        else:
            end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(img, (x, y), end, color, int(rng.integers(1, 4)))
    img = cv2.GaussianBlur(img, (0, 0), 0.8)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


# Photographic cut-outs of objects (PNG with alpha) used as occluders in training clips.
OBJECT_DIRS = ("/usr/share/tuxpaint/stamps",)
_OBJECT_SKIP = ("/people/", "/symbols/")  # no people; letters and signs are not objects


def list_objects(dirs: tuple[str, ...] = OBJECT_DIRS) -> list[str]:
    """PNG cut-outs under dirs (people and symbols excluded), sorted; photo-likeness is checked on load."""
    out = []
    for d in dirs:
        for path in glob.glob(os.path.join(d, "**", "*.png"), recursive=True):
            if not any(k in path for k in _OBJECT_SKIP) and "_thumb" not in path:
                out.append(path)
    return sorted(out)


def load_object(path: str) -> np.ndarray | None:
    """(H, W, 4) BGRA of a photographic cut-out, or None for small, mostly empty or drawn images
    (fewer than 150 distinct colours at 4 bits per channel in the opaque part)."""
    im = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if im is None or im.ndim != 3 or im.shape[2] != 4 or min(im.shape[:2]) < 48:
        return None
    opaque = im[..., 3] > 200
    if opaque.mean() < 0.1:
        return None
    q = (im[..., :3][opaque] // 16).astype(np.int64)
    if len(np.unique(q[:, 0] * 256 + q[:, 1] * 16 + q[:, 2])) < 150:
        return None
    return im


class BackgroundPool:
    """Real photographs to crop backgrounds and occluders from, and object cut-outs (decoded lazily,
    a few kept)."""

    def __init__(self, paths: list[str], objects: list[str] | None = None, cache_size: int = 8):
        self.paths = paths
        self.objects = objects or []
        self._cache: dict[str, np.ndarray | None] = {}
        self._cache_size = cache_size

    def sample_object(self, rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray] | None:
        """A random cut-out fitted into (height, width): BGR float32 pixels and a bool mask, or None."""
        for _ in range(8):
            if not self.objects:
                return None
            path = self.objects[int(rng.integers(0, len(self.objects)))]
            if path not in self._cache:
                self._remember(path, load_object(path))
            im = self._cache[path]
            if im is None:
                continue
            s = min(width / im.shape[1], height / im.shape[0])
            size = (max(1, int(im.shape[1] * s)), max(1, int(im.shape[0] * s)))
            im = cv2.resize(im, size, interpolation=cv2.INTER_AREA)
            if rng.uniform() < 0.5:
                im = im[:, ::-1]
            return im[..., :3].astype(np.float32), im[..., 3] > 127
        return None

    def _remember(self, key: str, value) -> None:
        if len(self._cache) >= self._cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = value

    def sample(self, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
        for _ in range(5):
            if not self.paths:
                break
            path = self.paths[int(rng.integers(0, len(self.paths)))]
            img = self._get(path)
            if img is not None:
                return random_crop(rng, img, width, height)
        return clutter_background(rng, width, height)

    def _get(self, path: str) -> np.ndarray | None:
        if path not in self._cache:
            img = load_image(path)
            if img is not None and max(img.shape[:2]) > 1600:  # keep memory and crop time small
                f = 1600 / max(img.shape[:2])
                img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            self._remember(path, img)
        return self._cache[path]


# ---------------------------------------------------------------------------------------------
# Bodies: skin, clothing, hair
# Skin tones (linear-ish RGB in [0, 1]) spanning very light to very dark.
_SKIN = np.array([
    [0.96, 0.80, 0.69], [0.92, 0.72, 0.60], [0.85, 0.64, 0.50], [0.78, 0.57, 0.44],
    [0.66, 0.46, 0.33], [0.55, 0.37, 0.26], [0.42, 0.27, 0.18], [0.30, 0.19, 0.13],
])
_HAIR = np.array([[0.05, 0.04, 0.03], [0.2, 0.12, 0.06], [0.45, 0.3, 0.15], [0.8, 0.65, 0.4],
                  [0.55, 0.2, 0.08], [0.6, 0.6, 0.6]])


@dataclass(frozen=True)
class Outfit:
    """Per-vertex base colours (V, 3) RGB in [0, 1], specular strength (V,) and thickness (V,):
    metres the surface is pushed out along its normal (loose clothes, hair volume, shoes)."""

    albedo: np.ndarray
    shininess: np.ndarray
    thickness: np.ndarray


def cloth_colour(rng: np.random.Generator) -> np.ndarray:
    if rng.uniform() < 0.3:  # greys, black, white, navy: common in real clothes
        v = rng.uniform(0.03, 0.95)
        return np.array([v, v, v]) * rng.uniform(0.9, 1.1, 3)
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(40, 255), rng.integers(40, 255)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0] / 255.0


def cloth_pattern(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """(V,) pattern in [0, 1] from rest positions p (V, 3): plain, stripes, checks, blotches."""
    kind = rng.choice(["plain", "stripes", "checks", "blotch", "plain"])
    if kind == "plain":
        return np.zeros(len(p))
    if kind == "stripes":
        axis = rng.normal(size=3) * [0.3, 0.3, 1.0]
        axis /= np.linalg.norm(axis)
        f = rng.uniform(10, 60)
        return (np.sin(p @ axis * f) > rng.uniform(-0.5, 0.5)).astype(np.float64)
    if kind == "checks":
        f = rng.uniform(10, 40)
        return ((np.floor(p[:, 0] * f) + np.floor(p[:, 2] * f) + np.floor(p[:, 1] * f)) % 2).astype(np.float64)
    acc = np.zeros(len(p))
    for _ in range(4):
        d = rng.normal(size=3)
        acc += np.sin(p @ d * rng.uniform(5, 25) + rng.uniform(0, 6.3))
    return (acc > 0.5).astype(np.float64)


def random_outfit(rng: np.random.Generator, body: Body) -> Outfit:
    """Skin, hair, top (sleeve length), bottom (shorts/trousers), shoes with colours and patterns."""
    V = len(body.rest_vertices)
    p = body.rest_vertices.astype(np.float64)
    part = np.array(PARTS)[body.vertex_part]
    skin = _SKIN[int(rng.integers(0, len(_SKIN)))] * rng.uniform(0.92, 1.08, 3)
    albedo = np.tile(skin, (V, 1))
    shininess = np.full(V, 0.15)

    # Position along each limb, 0 at the proximal joint and 1 at the distal one, for sleeve lengths.
    names = body.joint_names
    def along(upper: str, lower: str, side: str) -> np.ndarray:
        a = body.joint_rest[names.index(side + upper)]
        b = body.joint_rest[names.index(side + lower)]
        return (p - a) @ (b - a) / max(float(np.dot(b - a, b - a)), 1e-9)

    left = p[:, 0] > 0
    top = np.isin(part, ["torso", "neck"]) & (p[:, 2] < body.joint_rest[names.index("Neck")][2] + 0.0)
    sleeve = rng.choice([0.0, 0.35, 0.6, 1.0, 1.0, 1.9])  # 0 sleeveless .. 1.9 long (into forearm)
    arm_pos = np.where(left, along("Arm", "ForeArm", "Left"), along("Arm", "ForeArm", "Right"))
    top |= (part == "upper_arm") & (arm_pos < sleeve)
    fore_pos = 1.0 + np.where(left, along("ForeArm", "Hand", "Left"), along("ForeArm", "Hand", "Right"))
    top |= (part == "forearm") & (fore_pos < sleeve)
    hips_z = body.joint_rest[names.index("Hips")][2]
    if rng.uniform() < 0.8:  # tops usually reach below the waist
        top |= (part == "hips") & (p[:, 2] > hips_z - rng.uniform(0.0, 0.15))
    bottom = (part == "hips") & ~top
    leg_len = rng.choice([0.5, 1.0, 1.6, 1.9, 1.9, 1.9])  # shorts .. trousers to the ankle
    leg_pos = np.where(left, along("UpLeg", "Leg", "Left"), along("UpLeg", "Leg", "Right"))
    shin_pos = 1.0 + np.where(left, along("Leg", "Foot", "Left"), along("Leg", "Foot", "Right"))
    bottom |= (part == "thigh") & (leg_pos < leg_len)
    bottom |= (part == "shin") & (shin_pos < leg_len)
    shoes = part == "foot"
    shoes |= (part == "shin") & (shin_pos > rng.uniform(1.85, 1.97))

    thickness = np.zeros(V)
    thickness[top] = rng.uniform(0.003, 0.025)
    thickness[bottom] = rng.uniform(0.003, 0.035)
    thickness[shoes] = rng.uniform(0.004, 0.012)
    top_c, bottom_c, shoe_c = cloth_colour(rng), cloth_colour(rng), cloth_colour(rng) * 0.7
    for mask, c in ((top, top_c), (bottom, bottom_c)):
        pattern = cloth_pattern(rng, p)
        second = cloth_colour(rng) if rng.uniform() < 0.5 else c * rng.uniform(0.4, 0.8)
        col = c[None] * (1 - pattern[:, None]) + second[None] * pattern[:, None]
        albedo[mask] = col[mask]
        shininess[mask] = rng.uniform(0.0, 0.2)
    albedo[shoes] = shoe_c
    shininess[shoes] = rng.uniform(0.1, 0.5)

    # Hair: a cap over the skull, optionally long down the back.
    head = body.joint_rest[names.index("Head")]
    rel = p - head
    hair_line = rng.uniform(0.02, 0.07)
    eye_z = float((body.keypoint_regressor[1:3] @ p)[:, 2].mean())
    forehead = p[:, 2] > eye_z + 0.01 + 0.7 * hair_line  # hairline 2.4-6 cm above the eyes
    cap = (np.isin(part, ["head", "neck"])) & (forehead | ((rel[:, 1] > 0.02) & (rel[:, 2] > -0.04)))
    if rng.uniform() < 0.35:  # long hair over the neck and upper back
        cap |= (rel[:, 1] > 0.0) & (rel[:, 2] > -rng.uniform(0.1, 0.3)) & (np.abs(rel[:, 0]) < 0.12)
    volume = rng.uniform(0.004, 0.05)  # hair volume on the crown, thinning towards its edges
    brow_c = np.array([0.12, 0.08, 0.05])
    if rng.uniform() < 0.9:
        hair_c = _HAIR[int(rng.integers(0, len(_HAIR)))] * rng.uniform(0.8, 1.2)
        albedo[cap] = hair_c
        shininess[cap] = 0.3
        thickness[cap] = volume * np.clip((rel[cap, 2] + 0.1) / 0.2, 0.2, 1.0)
        brow_c = hair_c * 0.8
    _paint_face(albedo, p, body, skin, brow_c)
    return Outfit(np.clip(albedo, 0, 1).astype(np.float32), shininess.astype(np.float32),
                  thickness.astype(np.float32))


def _paint_face(albedo: np.ndarray, p: np.ndarray, body: Body, skin: np.ndarray, brow: np.ndarray) -> None:
    """Eyes, eyebrows and lips around the regressed rest keypoints (nose 0, eyes 1 and 2), so faces
    have the features real face keypoints sit on. In place; draws no random numbers."""
    kp = body.keypoint_regressor @ p  # (17, 3) rest keypoints
    front = p[:, 1] < kp[0, 1] + 0.06  # the face side of the head (the body faces -y)
    for e in (1, 2):
        d = p - kp[e]
        r = np.linalg.norm(d[:, [0, 2]], axis=1)
        near = front & (np.abs(d[:, 1]) < 0.03)
        albedo[near & (np.abs(d[:, 0]) < 0.013) & (np.abs(d[:, 2]) < 0.0045)] = (0.8, 0.77, 0.75)  # sclera
        albedo[near & (r < 0.005)] = (0.1, 0.07, 0.05)  # iris and pupil
        brow_band = near & (np.abs(d[:, 0]) < 0.02) & (d[:, 2] > 0.012) & (d[:, 2] < 0.018)
        albedo[brow_band] = brow
    mouth = kp[0] + np.array([0.0, 0.0, -0.035])
    d = p - mouth
    lips = front & (np.abs(d[:, 0]) < 0.022) & (np.abs(d[:, 2]) < 0.008) & (np.abs(d[:, 1]) < 0.04)
    albedo[lips] = skin * np.array([0.75, 0.5, 0.5])


@dataclass(frozen=True)
class Lighting:
    """A directional key light, an ambient term and a warm/cool tint (RGB multipliers)."""

    direction: np.ndarray  # (3,) unit vector pointing from the light towards the scene, world frame
    key: float
    ambient: float
    tint: np.ndarray


def random_lighting(rng: np.random.Generator) -> Lighting:
    d = np.array([rng.normal(), rng.normal(), -abs(rng.normal()) - 0.3])
    return Lighting(d / np.linalg.norm(d), float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.35, 0.7)),
                    rng.uniform(0.85, 1.15, 3))


def match_scene(light: Lighting, background: np.ndarray) -> Lighting:
    """Scale the lights with the background's brightness and tint it slightly with its colour, so a
    person in a dark photo is dark too. background: (H, W, 3) BGR in [0, 255]."""
    mean_bgr = background.reshape(-1, 3).mean(0)
    gain = float(np.clip(mean_bgr.mean() / 110.0, 0.6, 1.4))
    tint = 0.85 + 0.15 * mean_bgr[::-1] / max(float(mean_bgr.mean()), 1.0)  # RGB
    return Lighting(light.direction, light.key * gain, light.ambient * gain, light.tint * tint)


def shade(outfit: Outfit, normals: np.ndarray, view_dir: np.ndarray, light: Lighting) -> np.ndarray:
    """(V, 3) shaded RGB in [0, 1]: Lambert key + ambient with hemispheric falloff + Blinn specular.

    normals: (V, 3) unit world normals; view_dir: (V, 3) unit vectors from the surface to the camera.
    """
    lam = np.clip(-(normals @ light.direction), 0, None)
    hemi = 0.75 + 0.25 * normals[:, 2]  # sky from above, ground bounce below
    h = view_dir - light.direction[None]
    h /= np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-9)
    spec = np.clip((normals * h).sum(1), 0, None) ** 20 * outfit.shininess
    rgb = outfit.albedo * (light.ambient * hemi + light.key * lam)[:, None] + (spec * light.key)[:, None]
    return np.clip(rgb * light.tint, 0, 1).astype(np.float32)


def ground_shadow(points_xy: np.ndarray, valid: np.ndarray, width: int, height: int, size: float) -> np.ndarray:
    """(H, W) float32 soft shadow mask in [0, 1] from image points of a body's shadow on the ground.

    points_xy: (N, 2) projected shadow points (x, y); valid: (N,) bool; size: blur scale in pixels
    (about a tenth of the person's height in the image).
    """
    mask = np.zeros((height, width), np.float32)
    p = np.round(points_xy[valid]).astype(np.int64)
    ok = (p[:, 0] >= 0) & (p[:, 0] < width) & (p[:, 1] >= 0) & (p[:, 1] < height)
    mask[p[ok, 1], p[ok, 0]] = 1.0
    k = int(max(3, round(size / 3))) | 1
    mask = cv2.dilate(mask, np.ones((k, k), np.uint8))
    return cv2.GaussianBlur(mask, (0, 0), max(1.0, size / 4))


# ---------------------------------------------------------------------------------------------
# Camera degradations applied to a whole composited frame.
@dataclass(frozen=True)
class Degradation:
    """Per-clip camera look: exposure/contrast/gamma, colour balance, blur, noise (drift per frame)."""

    gain: float
    contrast: float
    gamma: float
    white: np.ndarray
    blur_sigma: float
    motion_len: float
    motion_angle: float
    noise: float
    flicker: float


def random_degradation(rng: np.random.Generator) -> Degradation:
    return Degradation(
        gain=float(rng.uniform(0.7, 1.3)), contrast=float(rng.uniform(0.75, 1.2)),
        gamma=float(rng.uniform(0.8, 1.25)), white=rng.uniform(0.9, 1.1, 3),
        blur_sigma=float(rng.uniform(0.3, 1.0)), motion_len=float(rng.choice([0.0, 0.0, rng.uniform(2, 7)])),
        motion_angle=float(rng.uniform(0, 180)), noise=float(rng.uniform(0.0, 6.0)),
        flicker=float(rng.uniform(0.0, 0.05)),
    )


def degrade(rng: np.random.Generator, img: np.ndarray, d: Degradation, t: float) -> np.ndarray:
    """Apply the clip's look to a (H, W, 3) float32 BGR frame in [0, 255] at time t (seconds)."""
    x = img
    if d.motion_len > 0.5:
        n = int(np.ceil(d.motion_len)) | 1
        k = np.zeros((n, n), np.float32)
        k[n // 2, :] = 1.0
        M = cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), d.motion_angle, 1.0)
        k = cv2.warpAffine(k, M, (n, n))
        k /= max(k.sum(), 1e-6)
        x = cv2.filter2D(x, -1, k)
    x = cv2.GaussianBlur(x, (0, 0), d.blur_sigma)
    gain = d.gain * (1.0 + d.flicker * np.sin(2 * np.pi * 0.7 * t))
    x = x / 255.0
    x = np.clip((x - 0.5) * d.contrast + 0.5, 0, 1) ** d.gamma * gain * d.white[None, None]
    x = x * 255.0 + rng.normal(0, d.noise, x.shape).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)
