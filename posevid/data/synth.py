"""Synthetic video clips of people with exact 2D keypoint truth, and their annotation file.

`generate(config, out_dir)` writes `out_dir/videos/NNNNNN.mp4` and `out_dir/annotations.json`:
COCO keypoints format extended PoseTrack-style (`videos`; `images` with `video_id`, `frame_id`;
`annotations` with `track_id`), loadable by pycocotools as is. Each clip is drawn from its own seed
(seed, split, clip index), so the output does not depend on the number of worker processes.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from posevid import __version__
from posevid.data import appearance as A
from posevid.data import body as B
from posevid.data import garments as G
from posevid.data import motion as M
from posevid.data import props as P
from posevid.data.render import Camera, look_at, rasterize
from posevid.errors import PosevidError
from posevid.skeleton import COCO

# Yaw ranges (degrees, |yaw|) between a person's facing direction and the direction to the camera.
SPLIT_YAW = {"train": (0.0, 180.0), "front": (0.0, 30.0), "side": (60.0, 120.0)}
_SPLIT_CODE = {"train": 0, "front": 1, "side": 2}
_EVAL_MOTION_FRACTION = 0.25  # the last quarter of each mocap file is held out for front/side
_OCCLUDER_ID0 = 100  # ids >= this in the id buffer are occluding objects, below are people
_PROP_ID0 = 200  # ids >= this are props standing in the scene


@dataclass(frozen=True)
class SynthConfig:
    split: str = "train"  # train: any yaw; front: |yaw| <= 30 deg; side: 60 <= |yaw| <= 120 deg
    num_clips: int = 8  # clips to write
    num_frames: int = 32  # frames per clip
    width: int = 256  # frame size in pixels
    height: int = 256
    fps: float = 30.0  # frame rate of the clips (mocap is resampled to it)
    seed: int = 0  # base seed; clip i uses (seed, split, i)
    max_people: int = 4  # 1..max_people people per clip
    procedural_fraction: float = 0.3  # share of people moved by procedural motion instead of mocap
    occluder_prob: float = 0.5  # chance a clip has photo patches / object cut-outs moving around people
    prop_prob: float = 0.0  # chance a clip has upright non-person things (poles, signs, cones, ...) standing
    # around; drawn from a stream of their own, so a clip with props equals the same clip without them
    # but for pixels and occlusion (0 keeps the pinned evaluation splits as they were)
    garment_prob: float = 0.0  # chance a person wears a skirt, dress or long coat (own stream, as props)
    long_hair_prob: float = 0.0  # chance a person with hair has long hair hanging down the back (own stream)
    crf: tuple[int, int] = (18, 32)  # H.264 constant rate factor range (higher = more artefacts)
    write_video: bool = True  # False: annotations only (tests, checksums)

    def __post_init__(self):
        if self.split not in SPLIT_YAW:
            raise ValueError(f"split must be one of {sorted(SPLIT_YAW)}, got {self.split!r}")
        if self.num_clips < 1 or self.num_frames < 1 or self.max_people < 1:
            raise ValueError("num_clips, num_frames and max_people must be >= 1")
        if self.width < 32 or self.height < 32 or self.width % 2 or self.height % 2:
            raise ValueError("width and height must be even and >= 32 (H.264 needs even sizes)")
        for name in ("procedural_fraction", "occluder_prob", "prop_prob", "garment_prob", "long_hair_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {getattr(self, name)}")


# ---------------------------------------------------------------------------------------------
# Held-out body shapes for the evaluation splits
@functools.lru_cache(maxsize=1)
def eval_phenotypes() -> tuple[dict, ...]:
    """16 fixed body shapes used only by the front/side splits."""
    rng = np.random.default_rng(20240917)
    return tuple(B.random_phenotype(rng) for _ in range(16))


def sample_phenotype(rng: np.random.Generator, split: str) -> dict:
    if split != "train":
        shapes = eval_phenotypes()
        return shapes[int(rng.integers(0, len(shapes)))]
    held = np.array([[p[k] for k in B.PHENOTYPES] for p in eval_phenotypes()])
    for _ in range(100):
        p = B.random_phenotype(rng)
        v = np.array([p[k] for k in B.PHENOTYPES])
        if not (np.abs(held - v).max(1) < 0.05).any():  # keep out of a box around each held-out shape
            return p
    return p


# ---------------------------------------------------------------------------------------------
# Motion
# DeepMimic clips used only by the evaluation splits (the other motion files are split in time).
EVAL_ONLY_MOTIONS = ("dance_b", "spinkick", "getup_faceup")


@dataclass(frozen=True)
class MocapEntry:
    name: str
    clip: M.MotionClip
    holdout: str  # "tail": last quarter for evaluation; "train" / "eval": the whole clip for that use


@functools.lru_cache(maxsize=1)
def mocap_library() -> tuple[MocapEntry, ...]:
    """All installed motion capture: CMU BVH (assimp-testmodels) and DeepMimic (pybullet_data)."""
    out = [MocapEntry(os.path.basename(p), M.read_bvh(p), "tail") for p in M.list_bvh_files()]
    for p in M.list_deepmimic_files():
        name = os.path.basename(p)
        out.append(MocapEntry(name, M.read_deepmimic(p),
                              "eval" if any(k in name for k in EVAL_ONLY_MOTIONS) else "train"))
    return tuple(out)


def sample_motion(rng: np.random.Generator, body: B.Body, config: SynthConfig) -> M.MotionClip:
    """A clip of config.num_frames frames: a random mocap window (held-out part for eval) or procedural."""
    train = config.split == "train"
    library = [e for e in mocap_library() if e.holdout == "tail" or (e.holdout == "train") == train]
    T, fps = config.num_frames, config.fps
    if library and rng.uniform() >= config.procedural_fraction:
        entry = library[int(rng.integers(0, len(library)))]
        clip = entry.clip
        speed = float(rng.uniform(0.8, 1.25))
        duration = clip.num_frames / clip.fps
        need = T * speed / fps
        lo, hi = 0.0, duration - need
        if entry.holdout == "tail":
            split_t = duration * (1.0 - _EVAL_MOTION_FRACTION)
            lo, hi = (0.0, split_t - need) if train else (split_t, duration - need)
        start = float(rng.uniform(lo, max(lo, hi)))
        clip = M.resample(clip, start, T, fps, speed)
        return M.mirror(clip) if rng.uniform() < 0.5 else clip
    return M.procedural_clip(body, rng, T, fps)


def facing_angles(keypoints: np.ndarray) -> np.ndarray:
    """(T,) heading (radians, atan2 of the horizontal facing vector) from (T, 17, 3) world keypoints.

    The facing direction is the horizontal vector perpendicular to the left-right axis of hips and
    shoulders: a person at rest (left = +x) faces -y.
    """
    lr = (keypoints[:, 11] - keypoints[:, 12]) + (keypoints[:, 5] - keypoints[:, 6])
    f = np.stack([lr[:, 1], -lr[:, 0]], 1)  # lr x z, horizontal
    return np.arctan2(f[:, 1], f[:, 0])


def wrap_deg(a: np.ndarray) -> np.ndarray:
    return (np.asarray(a) + 180.0) % 360.0 - 180.0


# ---------------------------------------------------------------------------------------------
@dataclass
class Person:
    body: B.Body
    outfit: A.Outfit
    verts: np.ndarray  # (T, V, 3) world
    kps: np.ndarray  # (T, 17, 3) world
    normals: np.ndarray  # (T, V, 3) world unit normals
    kp_radius: np.ndarray = field(default=None)  # (T, 17) distance from each keypoint to the surface
    yaw: np.ndarray = field(default=None)  # (T,) signed yaw to the camera, degrees


def surface_distance(verts: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(K,) distance from each of points (K, 3) to the nearest of verts (V, 3)."""
    d2 = (verts * verts).sum(1)[None] - 2.0 * points @ verts.T + (points * points).sum(1)[:, None]
    return np.sqrt(np.maximum(d2.min(1), 0.0))


def _pose_person(rng: np.random.Generator, config: SynthConfig):
    """Body, vertices (T, V, 3), keypoints (T, 17, 3) and normals (T, V, 3); root starting at the
    origin, feet on z=0."""
    body = B.build_body(sample_phenotype(rng, config.split))
    clip = sample_motion(rng, body, config)
    G, root = M.retarget(body, clip)
    T = config.num_frames
    verts = np.empty((T, len(body.rest_vertices), 3), np.float32)
    normals = np.empty((T, len(body.rest_vertices), 3), np.float32)
    kps = np.empty((T, 17, 3), np.float32)
    for t in range(T):
        verts[t], kps[t], normals[t] = B.skin_with_normals(body, G[t], root[t])
    shift = np.array([root[0, 0], root[0, 1], 0.0], np.float32)
    if clip.offsets is None:  # procedural: no physics, keep the lowest point on the ground each frame
        ground = verts[:, :, 2].min(1)[:, None]
    else:
        ground = np.full((T, 1), verts[:, :, 2].min(), np.float32)
    verts -= shift
    kps -= shift
    verts[:, :, 2] -= ground
    kps[:, :, 2] -= ground
    return body, verts, kps, normals


def _place(verts, kps, heading: float, position: np.ndarray, normals=None):
    """Turn about the vertical axis through the origin by heading (radians), then move to position."""
    Rz = M.rot_axis("z", heading).astype(np.float32)
    off = np.array([position[0], position[1], 0.0], np.float32)
    if normals is None:
        return verts @ Rz.T + off, kps @ Rz.T + off
    return verts @ Rz.T + off, kps @ Rz.T + off, normals @ Rz.T


def _yaw_to_camera(kps: np.ndarray, cam_positions: np.ndarray) -> np.ndarray:
    """(T,) signed yaw in degrees between facing and the horizontal direction to the camera."""
    face = facing_angles(kps)
    centre = kps[:, [5, 6, 11, 12]].mean(1)
    to_cam = cam_positions - centre
    cam_dir = np.arctan2(to_cam[:, 1], to_cam[:, 0])
    return wrap_deg(np.rad2deg(cam_dir - face))


def _cameras(rng: np.random.Generator, config: SynthConfig, centre: np.ndarray) -> tuple[list[Camera], np.ndarray]:
    """Slowly moving cameras around a group centred at `centre` (world), one per frame."""
    W, H, T = config.width, config.height, config.num_frames
    fov = np.deg2rad(rng.uniform(40, 75))
    fx = (W / 2) / np.tan(fov / 2)
    frac = np.exp(rng.uniform(np.log(0.18), np.log(0.85)))  # person height / frame height
    dist = max(fx * 1.7 / (frac * H), 1.6)
    azimuth = rng.uniform(-np.pi, np.pi)
    height = rng.uniform(0.3, 3.0)
    target = centre + np.array([rng.normal(0, 0.3), rng.normal(0, 0.3), rng.uniform(0.6, 1.3)])
    eye = target + np.array([dist * np.cos(azimuth), dist * np.sin(azimuth), 0.0])
    eye[2] = height
    slow = 0.1 if config.split != "train" else 0.3
    v_eye = rng.normal(0, slow, 3) * [1, 1, 0.3]
    v_target = rng.normal(0, slow / 2, 3) * [1, 1, 0.3]
    roll = rng.normal(0, 0.03)
    cams, positions = [], []
    for t in range(T):
        s = t / config.fps
        e = eye + v_eye * s
        cams.append(look_at(e, target + v_target * s, fx, W, H, roll=roll))
        positions.append(e)
    return cams, np.asarray(positions)


def compose_clip(config: SynthConfig, index: int, backgrounds: A.BackgroundPool, buffers: list | None = None):
    """Render one clip. Returns (frames: list of (H, W, 3) BGR uint8, per-frame annotation dicts, crf).

    Annotation dicts carry track_id, keypoints (17, 3) with visibility, bbox, area, RLE
    segmentation and yaw, in image coordinates of this clip.
    buffers: if a list is given, one dict per frame is appended with the final `ids` and `depth`
    buffers, `keypoint_depth` (people, 17) and the visibility depth tolerance `keypoint_tolerance`
    (people, 17) (for tests and debugging).
    """
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, _SPLIT_CODE[config.split], index]))
    W, H, T = config.width, config.height, config.num_frames
    n_people = int(rng.integers(1, config.max_people + 1))

    # People on the ground plane around the origin, not inside each other.
    positions = [np.zeros(2)]
    while len(positions) < n_people:
        p = rng.normal(0, 1.3, 2)
        if min(np.linalg.norm(p - q) for q in positions) > 0.6:
            positions.append(p)
    centre = np.array([*np.mean(positions, 0), 0.0])
    cams, cam_pos = _cameras(rng, config, centre)
    lo, hi = SPLIT_YAW[config.split]

    people: list[Person] = []
    for k in range(n_people):
        if k > 0 and np.linalg.norm(positions[k] - cam_pos[:, :2], axis=1).min() < 1.5:
            continue  # would stand right in front of the lens
        for attempt in range(40):
            body, verts0, kps0, normals0 = _pose_person(rng, config)
            if config.split == "train":
                heading = rng.uniform(-np.pi, np.pi)
            else:  # turn the person so the yaw at mid-clip is inside the split's range
                mid = T // 2
                want = rng.uniform(lo + 0.2 * (hi - lo), hi - 0.2 * (hi - lo)) * rng.choice([-1, 1])
                _, k_mid = _place(verts0[mid:mid + 1], kps0[mid:mid + 1], 0.0, positions[k])
                yaw0 = _yaw_to_camera(k_mid, cam_pos[mid:mid + 1])[0]
                heading = np.deg2rad(yaw0 - want)
            verts, kps, normals = _place(verts0, kps0, heading, positions[k], normals0)
            yaw = np.abs(_yaw_to_camera(kps, cam_pos))
            if config.split == "train" or ((yaw >= lo) & (yaw <= hi)).all():
                break
        else:
            if k == 0:
                raise PosevidError(f"could not pose a person within the {config.split} yaw range")
            continue
        outfit = A.random_outfit(rng, body)
        verts = verts + outfit.thickness[None, :, None] * normals  # clothes and hair stand off the skin
        person = Person(body, outfit, verts, kps, normals)
        person.kp_radius = np.stack([surface_distance(verts[t], kps[t]) for t in range(T)])
        person.yaw = _yaw_to_camera(kps, cam_pos)
        people.append(person)

    light = A.random_lighting(rng)
    look = A.random_degradation(rng)
    # Pixels of photos come from their own stream, so annotations do not depend on which photos
    # are installed on a machine.
    photo_rng = np.random.default_rng(np.random.SeedSequence([config.seed, _SPLIT_CODE[config.split], index, 1]))
    background = backgrounds.sample(photo_rng, W, H).astype(np.float32)
    light = A.match_scene(light, background)
    bg_drift = rng.normal(0, 0.3, 2)  # background pans slowly with the camera
    occluders = _random_occluders(rng, photo_rng, backgrounds, config) if rng.uniform() < config.occluder_prob else []
    crf = int(rng.integers(config.crf[0], config.crf[1] + 1))

    props = []
    prop_rng = np.random.default_rng(np.random.SeedSequence([config.seed, _SPLIT_CODE[config.split], index, 2]))
    if prop_rng.uniform() < config.prop_prob:
        paths = [p.kps[:, [11, 12]].mean(1)[:, :2] for p in people]
        props = P.random_props(prop_rng, paths, centre, cam_pos[:, :2])

    # Garments and long hair: meshes of their own, drawn with their person's id; each from its own stream.
    worn: list[tuple[int, G.Garment]] = []
    garment_rng, hair_rng = (np.random.default_rng(np.random.SeedSequence([config.seed, _SPLIT_CODE[config.split],
                                                                            index, k])) for k in (3, 4))
    for i, p in enumerate(people):
        if garment_rng.uniform() < config.garment_prob:
            made = G.random_garment(garment_rng, p.body, p.outfit, p.verts, p.kps)
            if made is not None:
                worn.append((i, made[0]))
                p.outfit = made[1]
        if hair_rng.uniform() < config.long_hair_prob:
            hair = G.random_hair(hair_rng, p.body, p.outfit, p.verts, p.kps)
            if hair is not None:
                worn.append((i, hair))

    # People, what they wear, then props, as one mesh: vertices (T, ...) per person, static per prop.
    meshes = [(p.verts, p.body.faces, p.normals, p.outfit) for p in people]
    meshes += [(g.verts, g.faces, g.normals, g.look) for _, g in worn]
    meshes += [(q.verts[None].repeat(T, 0), q.faces, q.normals[None].repeat(T, 0), q.look) for q in props]
    ids = list(range(len(people))) + [i for i, _ in worn] + [_PROP_ID0 + k for k in range(len(props))]
    start = np.cumsum([0] + [m[0].shape[1] for m in meshes])
    faces = np.concatenate([m[1] + s for m, s in zip(meshes, start)])
    face_ids = np.concatenate([np.full(len(m[1]), i, np.int16) for m, i in zip(meshes, ids)])
    prop_shadows = [(q.surface_points(), q.verts) for q in props]  # static: computed once, not per frame
    frames, annotations = [], []
    for t in range(T):
        cam = cams[t]
        verts = np.concatenate([m[0][t] for m in meshes])
        xy, z = cam.project(verts)
        colours = []
        for v, _, n, surface in meshes:
            view = cam.position[None] - v[t]
            view /= np.linalg.norm(view, axis=1, keepdims=True)
            colours.append(A.shade(surface, n[t], view, light))
        r = rasterize(xy, z, faces, np.concatenate(colours), face_ids, W, H)
        M_bg = np.float32([[1, 0, bg_drift[0] * t], [0, 1, bg_drift[1] * t]])
        img = cv2.warpAffine(background, M_bg, (W, H), borderMode=cv2.BORDER_REFLECT)
        casters = [(np.concatenate([p.verts[t][::4]] + [g.verts[t] for j, g in worn if j == i]), p.kps[t])
                   for i, p in enumerate(people)]
        _cast_shadows(img, casters + prop_shadows, cam, light)
        drawn = r.ids >= 0
        img[drawn] = r.color[drawn][:, ::-1] * 255.0  # RGB -> BGR
        for k, occ in enumerate(occluders):
            _draw_occluder(img, r, occ, t, _OCCLUDER_ID0 + k, people, cam)
        frames.append(A.degrade(rng, img, look, t / config.fps))
        annotations.append([_annotate(p, i, t, cam, r) for i, p in enumerate(people)])
        if buffers is not None:
            buffers.append({"ids": r.ids, "depth": r.depth,
                            "keypoint_depth": np.stack([cam.project(p.kps[t])[1] for p in people]),
                            "keypoint_tolerance": np.stack([_visibility_tolerance(p, t) for p in people])})
    return frames, annotations, crf


def _cast_shadows(img: np.ndarray, things: list[tuple[np.ndarray, np.ndarray]], cam: Camera,
                  light: A.Lighting) -> None:
    """Darken the background where the shadows of things (people, props) fall on the ground plane
    (z = 0), along the key light (kept at least 15 degrees above the horizon). Pixels only: annotations
    are unaffected.

    things: per thing, (points (N, 3) that cast the shadow, points (M, 3) whose image height sets its blur).
    """
    d = light.direction.astype(np.float64).copy()
    d[2] = min(d[2], -0.26 * np.linalg.norm(d[:2]) - 1e-3)
    d /= np.linalg.norm(d)
    strength = float(np.clip(0.7 * light.key / (light.key + light.ambient), 0.15, 0.6))
    H, W = img.shape[:2]
    shade = np.zeros((H, W), np.float32)
    for verts, extent in things:
        v = verts.astype(np.float64)
        on_ground = v - (v[:, 2:3] / d[2]) * d[None]  # slide each point along the light to z = 0
        xy, z = cam.project(on_ground)
        ext_xy, ext_z = cam.project(extent)
        if not (ext_z > 0.1).any():
            continue
        # Only what is in front of the camera: a prop reaching behind it would project to infinity.
        height_px = min(np.ptp(ext_xy[ext_z > 0.1, 1]) + 1.0, 4.0 * H)
        shade = np.maximum(shade, A.ground_shadow(xy, z > 0.1, W, H, 0.1 * height_px))
    img *= (1.0 - strength * shade)[..., None]


@dataclass
class _Occluder:
    patch: np.ndarray  # (h, w, 3) float32 BGR
    mask: np.ndarray  # (h, w) bool
    x0: float
    y0: float
    vx: float
    vy: float
    depth_frac: float  # depth as a fraction of the nearest person's depth (> 1: behind some people)


def _random_occluders(rng, photo_rng, backgrounds: A.BackgroundPool, config: SynthConfig) -> list[_Occluder]:
    """1-3 things drifting across the view: photo patches (rectangles, ellipses, polygons) in front of
    the people, and in training clips also photographic object cut-outs, in front of or behind them.

    Shapes and depths come from `rng`; pixels (and in training the cut-out's outline) from photo_rng.
    The evaluation splits use the generated shapes only, so their annotations do not depend on which
    packages are installed.
    """
    W, H = config.width, config.height
    out = []
    for _ in range(int(rng.integers(1, 4))):
        w = int(rng.uniform(0.1, 0.45) * W)
        h = int(rng.uniform(0.1, 0.6) * H)
        kind = int(rng.integers(0, 3))
        use_object = config.split == "train" and rng.uniform() < 0.6
        depth_frac = rng.uniform(0.3, 1.6) if use_object else rng.uniform(0.3, 0.9)
        x0, y0 = rng.uniform(-0.2, 1.0) * W, rng.uniform(-0.1, 1.0) * H
        vx, vy = rng.normal(0, 1.5), rng.normal(0, 0.5)  # pixels per frame
        corners = rng.uniform(0, 1, (6, 2))  # polygon outline (drawn always: same stream use either way)
        cut = backgrounds.sample_object(photo_rng, max(w, 8), max(h, 8)) if use_object else None
        if cut is not None:
            patch, mask = cut
        else:
            patch = backgrounds.sample(photo_rng, max(w, 8), max(h, 8)).astype(np.float32)
            m = np.zeros(patch.shape[:2], np.uint8)
            hh, ww = m.shape
            if kind == 0:
                m[:] = 1
            elif kind == 1:
                cv2.ellipse(m, (ww // 2, hh // 2), (ww // 2, hh // 2), 0, 0, 360, 1, -1)
            else:
                pts = (corners * [ww, hh]).astype(np.int32)
                cv2.fillConvexPoly(m, cv2.convexHull(pts), 1)
            mask = m.astype(bool)
        out.append(_Occluder(patch, mask, x0, y0, vx, vy, depth_frac))
    return out


def _draw_occluder(img, r, occ: _Occluder, t: int, occ_id: int, people: list[Person], cam: Camera) -> None:
    """Paste a photo object in front (depth-tested) of the people and update the depth/id buffers."""
    H, W = r.ids.shape
    x, y = int(round(occ.x0 + occ.vx * t)), int(round(occ.y0 + occ.vy * t))
    h, w = occ.mask.shape
    xa, ya, xb, yb = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if xa >= xb or ya >= yb:
        return
    nearest = min(float(cam.project(p.kps[t])[1].min()) for p in people)
    d = occ.depth_frac * nearest
    m = occ.mask[ya - y:yb - y, xa - x:xb - x] & (r.depth[ya:yb, xa:xb] > d)
    img[ya:yb, xa:xb][m] = occ.patch[ya - y:yb - y, xa - x:xb - x][m]
    r.depth[ya:yb, xa:xb][m] = d
    r.ids[ya:yb, xa:xb][m] = occ_id


# Extra visibility tolerance (m) per keypoint: ears stick out of the head, so annotators call them
# visible in frontal and back views although the cheek or the back of the head lies a few cm nearer.
_EXTRA_TOLERANCE = np.array([0, 0, 0, 0.08, 0.08] + [0] * 12, np.float32)


def _visibility_tolerance(p: Person, t: int) -> np.ndarray:
    """(17,) how far (m) in front of a keypoint its own surface may be for it to count as visible:
    keypoints are joint centres inside the body, so the skin over them is about their depth to the
    surface nearer; 1.5x that plus 3 cm, so a limb seen over itself or the torso counts as occluded."""
    return 1.5 * p.kp_radius[t] + 0.03 + _EXTRA_TOLERANCE


def _annotate(p: Person, pid: int, t: int, cam: Camera, r) -> dict:
    """Keypoints with visibility (2 visible, 1 occluded, 0 outside the frame), mask box/area, RLE."""
    from pycocotools import mask as mask_utils

    H, W = r.ids.shape
    xy, depth = cam.project(p.kps[t])
    mask = r.ids == pid
    kp = np.zeros((17, 3))
    tol = _visibility_tolerance(p, t)
    for j in range(17):
        x, y = round(float(xy[j, 0]), 2), round(float(xy[j, 1]), 2)  # as stored; the pixel follows from it
        c, rr = int(round(x)), int(round(y))
        if depth[j] <= 0 or not (0 <= c < W and 0 <= rr < H):
            continue  # outside the frame: v = 0 with x = y = 0, as COCO does
        seen = r.depth[rr, c] >= depth[j] - tol[j]  # no surface (own body, others, objects) in front
        kp[j] = (x, y, 2 if seen else 1)
    area = int(mask.sum())
    if area:
        ys, xs = np.nonzero(mask)
        # pixel edges: pixel c covers [c - 0.5, c + 0.5]
        bbox = [float(xs.min()) - 0.5, float(ys.min()) - 0.5,
                float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
    else:
        bbox = [0.0, 0.0, 0.0, 0.0]
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {
        "track_id": pid,
        "keypoints": [float(v) if i % 3 < 2 else int(v) for i, v in enumerate(kp.reshape(-1))],
        "num_keypoints": int((kp[:, 2] > 0).sum()),
        "bbox": bbox,
        "area": float(area),
        "segmentation": {"size": [H, W], "counts": rle["counts"].decode("ascii")},
        "iscrowd": 0,
        "category_id": 1,
        "yaw": round(float(p.yaw[t]), 1),
    }


# ---------------------------------------------------------------------------------------------
# Whole datasets
def _categories() -> list[dict]:
    return [{
        "id": 1, "name": "person", "supercategory": "person",
        "keypoints": list(COCO.names),
        "skeleton": [[a + 1, b + 1] for a, b in COCO.edges],
    }]


_WORKER: dict = {}


def _init_worker(background_paths: list[str], object_paths: list[str]) -> None:
    _WORKER["backgrounds"] = A.BackgroundPool(background_paths, object_paths)


def _clip_job(args) -> tuple[int, list, int]:
    config, index, out_dir = args
    frames, annotations, crf = compose_clip(config, index, _WORKER["backgrounds"])
    if config.write_video:
        write_video(os.path.join(out_dir, "videos", f"{index:06d}.mp4"), frames, config.fps, crf)
    return index, annotations, crf


def write_video(path: str, frames: list[np.ndarray], fps: float, crf: int) -> None:
    """H.264 mp4 (yuv420p) with the bundled ffmpeg, from BGR uint8 frames."""
    import imageio_ffmpeg

    H, W = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(
        path, (W, H), pix_fmt_in="bgr24", fps=fps, codec="libx264", macro_block_size=1,
        output_params=["-crf", str(crf), "-preset", "veryfast"], ffmpeg_log_level="error",
    )
    writer.send(None)
    for f in frames:
        writer.send(np.ascontiguousarray(f))
    writer.close()


def background_paths(split: str) -> list[str]:
    """The curated photos of a split: one in five of backgrounds.txt is held out for front/side; the
    photos of backgrounds-train.txt (added later) go to training only, so the pinned splits never change."""
    paths = A.list_backgrounds()
    if split != "train":
        return [p for p in paths if A.is_heldout_background(p)]
    return sorted([p for p in paths if not A.is_heldout_background(p)] + A.curated_backgrounds(A.TRAIN_ONLY_LIST))


def generate(config: SynthConfig, out_dir: str, workers: int = 1, progress=None,
             background_dirs: list[str] | None = None, photos: bool = True) -> dict:
    """Write the clips and `annotations.json` under out_dir; returns the annotation dict.

    progress: optional callable(done, total) called after each clip.
    background_dirs: folders of the user's own photos without people, used instead of the curated
    Debian photos (annotations do not depend on the photos).
    photos: False draws backgrounds and occluder patches as procedural clutter, without photos or
    object cut-outs (to measure what real photos are worth).
    """
    os.makedirs(os.path.join(out_dir, "videos"), exist_ok=True)
    if not photos:
        bg = []
    elif background_dirs:
        bg = A.list_backgrounds(tuple(background_dirs))
        if not bg:
            raise PosevidError(f"no images (.jpg, .png, .webp) under {', '.join(background_dirs)}")
    else:
        bg = background_paths(config.split)
    objects = A.list_objects() if config.split == "train" and photos else []
    jobs = [(config, i, out_dir) for i in range(config.num_clips)]
    results = {}
    if workers <= 1:
        _init_worker(bg, objects)
        for job in jobs:
            i, ann, crf = _clip_job(job)
            results[i] = ann
            if progress:
                progress(len(results), len(jobs))
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(bg, objects)) as pool:
            for i, ann, crf in pool.imap_unordered(_clip_job, jobs):
                results[i] = ann
                if progress:
                    progress(len(results), len(jobs))
    data = assemble(config, results, num_backgrounds=len(bg))
    with open(os.path.join(out_dir, "annotations.json"), "w") as f:
        f.write(dumps(data))
    return data


def assemble(config: SynthConfig, results: dict[int, list], num_backgrounds: int = 0) -> dict:
    """Per-clip annotations -> one COCO/PoseTrack-style dict with global ids, in clip order."""
    videos, images, annotations = [], [], []
    ann_id = 1
    for i in sorted(results):
        vid = i + 1
        videos.append({"id": vid, "file_name": f"videos/{i:06d}.mp4", "width": config.width,
                       "height": config.height, "num_frames": config.num_frames, "fps": config.fps})
        for t, frame_anns in enumerate(results[i]):
            image_id = i * config.num_frames + t + 1
            images.append({"id": image_id, "video_id": vid, "frame_id": t, "nframes": config.num_frames,
                           "file_name": f"videos/{i:06d}.mp4#{t}", "width": config.width,
                           "height": config.height})
            for a in frame_anns:
                if a["area"] == 0 and a["num_keypoints"] == 0:
                    continue
                annotations.append({"id": ann_id, "image_id": image_id, **a})
                ann_id += 1
    info = {"description": f"posevid synthetic {config.split} split", "version": __version__,
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
            "num_backgrounds": num_backgrounds}
    return {"info": info, "licenses": [], "categories": _categories(), "videos": videos,
            "images": images, "annotations": annotations}


def dumps(data: dict) -> str:
    """Canonical JSON text (fixed key order and separators) so equal data gives equal bytes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def annotation_checksum(data: dict) -> str:
    """sha256 of the canonical JSON of videos, images and annotations (the info block is excluded)."""
    core = {k: data[k] for k in ("videos", "images", "annotations")}
    return hashlib.sha256(dumps(core).encode()).hexdigest()
