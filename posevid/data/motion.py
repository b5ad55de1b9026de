"""Motion for the synthetic people: CMU motion capture (BVH) and procedural joint-angle trajectories.

A motion source gives a `MotionClip` (local joint rotations of its own skeleton over time);
`retarget` turns it into the per-bone global rotations and root positions `body.skin` wants.
All positions and rotations are in the body frame of `posevid.data.body` (metres, z up, a person in
its rest orientation faces -y, +x is the person's left).
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, replace

import numpy as np

from posevid.data.body import Body
from posevid.errors import PosevidError

# Where Debian's assimp-testmodels puts the CMU BVH files (CMU mocap: free for any use).
BVH_DIRS = ("/usr/share/assimp/models/BVH",)

# BVH (y up, subject faces +z, +x the subject's left) -> body frame (z up, faces -y, +x left).
_BVH_TO_BODY = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

# Joint names of other BVH skeletons -> CMU names of the anny rig.
_ALIASES = {
    "Ab": "LowerBack", "Chest": "Spine1",
    "LeftCollar": "LeftShoulder", "RightCollar": "RightShoulder",
    "LeftElbow": "LeftForeArm", "RightElbow": "RightForeArm",
    "LeftWrist": "LeftHand", "RightWrist": "RightHand",
    "LeftHip": "LeftUpLeg", "RightHip": "RightUpLeg", "LeftKnee": "LeftLeg", "RightKnee": "RightLeg",
    "LeftAnkle": "LeftFoot", "RightAnkle": "RightFoot", "LeftToes": "LeftToeBase", "RightToes": "RightToeBase",
}
# Skeletons that name the upper arm "LeftShoulder" (with a "LeftCollar" above it).
_COLLAR_ALIASES = {"LeftShoulder": "LeftArm", "RightShoulder": "RightArm"}
# For bones with several children: the children (in preference order) whose direction defines the
# bone's rest orientation.
_MAIN_CHILD = {"Hips": ("LowerBack", "Spine", "Spine1"), "Spine1": ("Neck",), "Spine": ("Neck",),
               "LeftHand": ("LeftFingerBase",), "RightHand": ("RightFingerBase",)}

# DeepMimic humanoid (pybullet_data/data/motions/humanoid3d_*.txt): joint order of a frame, its
# rest offsets (humanoid.urdf, y up, facing +x, right = +z; scale irrelevant) and the rig names.
# Frame layout: duration, root position (3), root quaternion (w, x, y, z), then per joint a
# quaternion (w, x, y, z) or, for knees and elbows, one angle about the joint's z axis.
_DM_JOINTS = (  # (DeepMimic name, rig name, parent index in the clip (0 = root), rest offset, values)
    ("chest", "Spine", 0, (0.0, 0.944604, 0.0), 4),
    ("neck", "Neck", 1, (0.0, 0.895576, 0.0), 4),
    ("right_hip", "RightUpLeg", 0, (0.0, 0.0, 0.339548), 4),
    ("right_knee", "RightLeg", 3, (0.0, -1.686184, 0.0), 1),
    ("right_ankle", "RightFoot", 4, (0.0, -1.639480, 0.0), 4),
    ("right_shoulder", "RightArm", 1, (-0.0962, 0.974, 0.73244), 4),
    ("right_elbow", "RightForeArm", 6, (0.0, -1.099152, 0.0), 1),
    ("left_hip", "LeftUpLeg", 0, (0.0, 0.0, -0.339548), 4),
    ("left_knee", "LeftLeg", 8, (0.0, -1.686184, 0.0), 1),
    ("left_ankle", "LeftFoot", 9, (0.0, -1.639480, 0.0), 4),
    ("left_shoulder", "LeftArm", 1, (-0.0962, 0.974, -0.73244), 4),
    ("left_elbow", "LeftForeArm", 11, (0.0, -1.099152, 0.0), 1),
)
# Leaf ends (wrists, toes) as extra joints so that elbows and ankles get a rest direction.
_DM_ENDS = (("RightHand", 7, (0.0, -1.035788, 0.0)), ("LeftHand", 12, (0.0, -1.035788, 0.0)),
            ("RightToeBase", 5, (0.18, -0.09, 0.0)), ("LeftToeBase", 10, (0.18, -0.09, 0.0)))
# DeepMimic (y up, facing +x, right +z) -> body frame (z up, facing -y, left +x).
_DM_TO_BODY = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@dataclass(frozen=True)
class MotionClip:
    """Local rotations of a skeleton over time.

    names: joint names in the anny rig's CMU naming; parents: (J,) parent index or -1.
    offsets: (J, 3) rest offset of each joint from its parent (body frame; scale irrelevant),
        or None when the rotations are already relative to the target body's own rest pose.
    local: (T, J, 3, 3) local rotation of each joint in its parent's frame.
    root: (T, 3) root position, metres (body frame axes); fps: frames per second.
    """

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray | None
    local: np.ndarray
    root: np.ndarray
    fps: float

    @property
    def num_frames(self) -> int:
        return len(self.local)

    def global_rotations(self) -> np.ndarray:
        """(T, J, 3, 3) rotations of each joint in the world."""
        G = np.empty_like(self.local)
        for j, p in enumerate(self.parents):
            if p >= j:
                raise ValueError("MotionClip joints must come after their parents")
            G[:, j] = self.local[:, j] if p < 0 else G[:, p] @ self.local[:, j]
        return G


# ---------------------------------------------------------------------------------------------
# Rotations
def rot_axis(axis: str, angle) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about a coordinate axis by angle (radians, right-handed)."""
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    if axis == "x":
        m = [[o, z, z], [z, c, -s], [z, s, c]]
    elif axis == "y":
        m = [[c, z, s], [z, o, z], [-s, z, c]]
    else:
        m = [[c, -s, z], [s, c, z], [z, z, o]]
    return np.moveaxis(np.array(m), (0, 1), (-2, -1))


def rotvec_to_matrix(v: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation vectors (..., 3) -> matrices (..., 3, 3)."""
    v = np.asarray(v, dtype=np.float64)
    theta = np.linalg.norm(v, axis=-1, keepdims=True)
    k = v / np.maximum(theta, 1e-12)
    K = np.zeros(v.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2] = -k[..., 2], k[..., 1]
    K[..., 1, 0], K[..., 1, 2] = k[..., 2], -k[..., 0]
    K[..., 2, 0], K[..., 2, 1] = -k[..., 1], k[..., 0]
    t = theta[..., None]
    return np.eye(3) + np.sin(t) * K + (1 - np.cos(t)) * (K @ K)


def align_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction a to direction b (both (3,))."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -0.999999:  # opposite: turn half a circle about any axis orthogonal to a
        axis = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0.0, 1.0, 0.0])
        return rotvec_to_matrix(np.pi * axis / np.linalg.norm(axis))
    K = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + K + K @ K / (1.0 + c)


# ---------------------------------------------------------------------------------------------
# BVH
def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) as (w, x, y, z) -> rotation matrices (..., 3, 3)."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.moveaxis(np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]), (0, 1), (-2, -1))


def list_deepmimic_files() -> list[str]:
    """DeepMimic humanoid clips shipped in pybullet_data (walk, run, jump, kick, ...), if installed."""
    try:
        import pybullet_data
    except ImportError:
        return []
    return sorted(glob.glob(os.path.join(pybullet_data.getDataPath(), "data", "motions", "humanoid3d_*.txt")))


def read_deepmimic(path: str) -> MotionClip:
    """Parse a DeepMimic humanoid motion (JSON with "Frames") into a MotionClip in the body frame."""
    import json

    with open(path) as f:
        data = json.load(f)
    raw = np.asarray(data["Frames"], dtype=np.float64)
    # Frame durations vary within a file: resample to a uniform 30 frames/s (nearest frame).
    times = np.concatenate([[0.0], np.cumsum(raw[:-1, 0])])
    grid = np.arange(0.0, times[-1] + 1e-9, 1.0 / 30)
    frames = raw[np.abs(times[None, :] - grid[:, None]).argmin(1)]
    T = len(frames)
    J = 1 + len(_DM_JOINTS) + len(_DM_ENDS)
    names = ["Hips"] + [m[1] for m in _DM_JOINTS] + [e[0] for e in _DM_ENDS]
    parents = [-1] + [m[2] for m in _DM_JOINTS] + [e[1] for e in _DM_ENDS]
    offsets = np.zeros((J, 3))
    local = np.tile(np.eye(3), (T, J, 1, 1))
    local[:, 0] = quat_to_matrix(frames[:, 4:8])
    col = 8
    for j, (_, _, _, off, width) in enumerate(_DM_JOINTS, start=1):
        offsets[j] = off
        if width == 4:
            local[:, j] = quat_to_matrix(frames[:, col:col + 4])
        else:
            local[:, j] = rot_axis("z", frames[:, col])
        col += width
    for k, (_, _, off) in enumerate(_DM_ENDS):
        offsets[1 + len(_DM_JOINTS) + k] = off
    M = _DM_TO_BODY
    clip = MotionClip(tuple(names), np.asarray(parents), offsets @ M.T, M @ local @ M.T, frames[:, 1:4] @ M.T, 30.0)
    return loop(clip, 8.0) if data.get("Loop") == "wrap" else clip


def loop(clip: MotionClip, min_seconds: float) -> MotionClip:
    """Repeat a cyclic motion until it lasts min_seconds; each cycle continues from where the
    previous one ended on the ground (horizontal root displacement accumulates)."""
    n = int(np.ceil(min_seconds * clip.fps / clip.num_frames))
    if n <= 1:
        return clip
    step = clip.root[-1] - clip.root[0]
    step[2] = 0.0
    root = np.concatenate([clip.root + k * step for k in range(n)])
    return replace(clip, local=np.concatenate([clip.local] * n), root=root)


def list_bvh_files(dirs: tuple[str, ...] = BVH_DIRS) -> list[str]:
    return sorted(f for d in dirs for f in glob.glob(os.path.join(d, "*.bvh")))


def read_bvh(path: str) -> MotionClip:
    """Parse a BVH file into a MotionClip in the body frame (positions scaled to metres later)."""
    with open(path) as f:
        tokens = f.read().split()
    names, parents, offsets, channels = [], [], [], []
    stack: list[int] = []
    i = 0
    pending_end = False
    while tokens[i] != "MOTION":
        tok = tokens[i]
        if tok in ("ROOT", "JOINT"):
            names.append(tokens[i + 1])
            parents.append(stack[-1] if stack else -1)
            i += 2
        elif tok == "End":
            pending_end = True
            i += 2
        elif tok == "{":
            stack.append(-2 if pending_end else len(names) - 1)
            i += 1
        elif tok == "}":
            stack.pop()
            pending_end = False
            i += 1
        elif tok == "OFFSET":
            if not pending_end:
                offsets.append([float(t) for t in tokens[i + 1:i + 4]])
            i += 4
        elif tok == "CHANNELS":
            n = int(tokens[i + 1])
            channels.append(tokens[i + 2:i + 2 + n])
            i += 2 + n
        else:
            i += 1
    n_frames = int(tokens[i + 2])
    frame_time = float(tokens[i + 5])
    values = np.asarray(tokens[i + 6:], dtype=np.float64)
    width = sum(len(c) for c in channels)
    values = values[: n_frames * width].reshape(n_frames, width)

    J = len(names)
    local = np.tile(np.eye(3), (n_frames, J, 1, 1))
    root = np.zeros((n_frames, 3))
    col = 0
    for j, chans in enumerate(channels):
        R = np.tile(np.eye(3), (n_frames, 1, 1))
        for c in chans:
            v = values[:, col]
            col += 1
            if c.endswith("position"):
                if parents[j] < 0:
                    root[:, "XYZ".index(c[0])] = v
            else:
                R = R @ rot_axis(c[0].lower(), np.deg2rad(v))
        local[:, j] = R
    M = _BVH_TO_BODY
    local = M @ local @ M.T
    root = root @ M.T
    offsets_b = np.asarray(offsets) @ M.T

    collar = any(n in ("LeftCollar", "RightCollar") for n in names)
    mapped = [(_COLLAR_ALIASES.get(n, n) if collar and n in _COLLAR_ALIASES else _ALIASES.get(n, n)) for n in names]
    return MotionClip(tuple(mapped), np.asarray(parents), offsets_b, local, root, 1.0 / frame_time)


def leg_length(names, parents, offsets: np.ndarray) -> float:
    """Length of the left leg chain hip -> ankle of a skeleton given by offsets (any unit)."""
    total = 0.0
    for name in ("LeftLeg", "LeftFoot"):
        if name in names:
            total += float(np.linalg.norm(offsets[names.index(name)]))
    return total


# ---------------------------------------------------------------------------------------------
# Clip edits: time window/resampling, mirroring, heading
def resample(clip: MotionClip, start: float, num_frames: int, fps: float, speed: float = 1.0) -> MotionClip:
    """num_frames frames at fps starting at `start` seconds, played at `speed` (nearest frame)."""
    t = start + np.arange(num_frames) * speed / fps
    idx = np.clip(np.round(t * clip.fps).astype(int), 0, clip.num_frames - 1)
    return replace(clip, local=clip.local[idx], root=clip.root[idx], fps=fps)


def mirror(clip: MotionClip) -> MotionClip:
    """The left-right mirrored motion (x -> -x, Left* <-> Right* joints)."""
    S = np.diag([-1.0, 1.0, 1.0])
    swap = {}
    for j, n in enumerate(clip.names):
        other = n.replace("Left", "\0").replace("Right", "Left").replace("\0", "Right")
        other = other.replace("LHip", "\0").replace("RHip", "LHip").replace("\0", "RHip")
        other = other.replace("LThumb", "\0").replace("RThumb", "LThumb").replace("\0", "RThumb")
        swap[j] = clip.names.index(other) if other in clip.names else j
    perm = np.array([swap[j] for j in range(len(clip.names))])
    local = S @ clip.local[:, perm] @ S
    offsets = None if clip.offsets is None else clip.offsets[perm] @ S
    # The tree structure stays (mirrored joints have mirrored parents), so names/parents are kept.
    return replace(clip, local=local, offsets=offsets, root=clip.root @ S)


# ---------------------------------------------------------------------------------------------
# Procedural motion: smooth random trajectories of joint rotation vectors within joint limits.
# Limits are rotation-vector components (x, y, z) in degrees relative to the anny rest pose
# (an A-pose: arms ~40 degrees below horizontal). For the person's left side; the right side
# mirrors them (y and z components negate).
_LIMITS = {
    "LowerBack": ((-15, 35), (-15, 15), (-20, 20)),
    "Spine": ((-10, 20), (-10, 10), (-15, 15)),
    "Spine1": ((-10, 15), (-10, 10), (-15, 15)),
    "Neck": ((-25, 30), (-20, 20), (-35, 35)),
    "Head": ((-20, 20), (-15, 15), (-30, 30)),
    "LeftArm": ((-80, 80), (-70, 45), (-60, 60)),
    "LeftForeArm": ((-10, 10), (-10, 10), (-130, 0)),
    "LeftHand": ((-40, 40), (-20, 20), (-20, 20)),
    "LeftUpLeg": ((-100, 25), (-10, 40), (-30, 30)),
    "LeftLeg": ((0, 130), (0, 0), (0, 0)),
    "LeftFoot": ((-30, 30), (-10, 10), (-10, 10)),
}
_PROCEDURAL_JOINTS = tuple(_LIMITS) + tuple(
    n.replace("Left", "Right") for n in _LIMITS if n.startswith("Left")
)


def _limits(name: str) -> np.ndarray:
    if name.startswith("Right"):
        lo_hi = np.deg2rad(np.array(_LIMITS[name.replace("Right", "Left")], dtype=np.float64))
        out = lo_hi.copy()
        out[1:] = -lo_hi[1:, ::-1]  # mirror: y and z components change sign
        return out
    return np.deg2rad(np.array(_LIMITS[name], dtype=np.float64))


def smooth_noise(rng: np.random.Generator, num_frames: int, dims: int, fps: float,
                 period_s: tuple[float, float]) -> np.ndarray:
    """(num_frames, dims) smooth random curves in [0, 1]: a few random sinusoids per dimension."""
    t = np.arange(num_frames)[:, None] / fps
    out = np.zeros((num_frames, dims))
    for _ in range(3):
        period = rng.uniform(*period_s, size=dims)
        phase = rng.uniform(0, 2 * np.pi, size=dims)
        amp = rng.uniform(0.3, 1.0, size=dims)
        out += amp * np.sin(2 * np.pi * t / period + phase)
    out /= 3.0
    return 0.5 + 0.5 * out  # in [0, 1] (sum of 3 sines with amplitude <= 1 each, / 3)


def procedural_clip(body: Body, rng: np.random.Generator, num_frames: int, fps: float) -> MotionClip:
    """Smooth random joint-angle motion within limits, for the anny rig in its own rest frame.

    A random base posture (standing, crouching, bending, arms raised, ...) is drawn per clip and
    the joints wander smoothly around it; the hips may drift slowly along the ground.
    """
    J = body.num_joints
    local = np.tile(np.eye(3), (num_frames, J, 1, 1))
    names = body.joint_names
    crouch = rng.uniform(0, 1) < 0.25
    for name in _PROCEDURAL_JOINTS:
        j = names.index(name)
        lim = _limits(name)  # (3, 2)
        base = rng.uniform(0.0, 1.0, size=3)
        wander = rng.uniform(0.1, 0.5)
        curve = smooth_noise(rng, num_frames, 3, fps, (1.0, 4.0))
        u = np.clip(base + wander * (curve - 0.5), 0.0, 1.0)
        if crouch and name.endswith("UpLeg"):
            u[:, 0] = rng.uniform(0.0, 0.2)  # hips flexed (negative x = thigh forward)
        if crouch and name.endswith("Leg") and not name.endswith("UpLeg"):
            u[:, 0] = rng.uniform(0.7, 1.0)  # knees flexed
        if not crouch and name.endswith("Leg") and not name.endswith("UpLeg"):
            u[:, 0] *= 0.35  # standing people keep knees mostly straight
        if not crouch and name.endswith("UpLeg"):
            u[:, 0] = 0.6 + 0.4 * (u[:, 0] - 0.5)
        angles = lim[:, 0] + u * (lim[:, 1] - lim[:, 0])
        local[:, j] = rotvec_to_matrix(angles)
    # Root: slow walk-like drift on the ground and a slowly turning heading.
    speed = rng.uniform(0.0, 0.8) if not crouch else 0.0
    heading = rng.uniform(-np.pi, np.pi) + np.cumsum(rng.normal(0, 0.01, num_frames))
    step = speed / fps * np.stack([np.sin(heading), -np.cos(heading), 0 * heading], 1)
    root = np.cumsum(step, 0) + body.joint_rest[0]
    local[:, 0] = rot_axis("z", heading - heading[0])
    return MotionClip(names, body.parents.copy(), None, local, root, fps)


# ---------------------------------------------------------------------------------------------
def retarget(body: Body, clip: MotionClip) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame global bone rotations (T, J, 3, 3) and root positions (T, 3) for this body.

    Each body bone that exists in the clip's skeleton takes the clip's global rotation, corrected by
    the smallest rotation that aligns the body's rest bone direction with the clip's rest bone
    direction; bones the clip lacks move rigidly with their parent. Root motion is scaled by the
    ratio of leg lengths, and the root keeps the body's rest height above the clip's feet.
    """
    G_src = clip.global_rotations()  # (T, Js, 3, 3)
    T = clip.num_frames
    Jb = body.num_joints
    rest = body.joint_rest.astype(np.float64)
    if clip.offsets is None:  # already in this body's rest frame (procedural)
        return G_src, clip.root.copy()

    src_index = {n: j for j, n in enumerate(clip.names)}
    # Correction C_j: body rest direction -> clip rest direction.
    C = np.tile(np.eye(3), (Jb, 1, 1))
    for j, name in enumerate(body.joint_names):
        if name not in src_index:
            continue
        s = src_index[name]
        kids = [k for k, n in enumerate(body.joint_names)
                if n in src_index and clip.parents[src_index[n]] == s
                and _is_descendant(body.parents, k, j)]
        if not kids:
            C[j] = C[body.parents[j]] if body.parents[j] >= 0 else np.eye(3)
            continue
        order = _MAIN_CHILD.get(name, ())
        preferred = sorted((k for k in kids if body.joint_names[k] in order),
                           key=lambda k: order.index(body.joint_names[k]))
        k = (preferred or kids)[0]
        d_body = rest[k] - rest[j]
        d_src = clip.offsets[src_index[body.joint_names[k]]]
        if np.linalg.norm(d_body) < 1e-6 or np.linalg.norm(d_src) < 1e-9:
            continue
        C[j] = align_rotation(d_body, d_src)
    G = np.empty((T, Jb, 3, 3))
    for j, name in enumerate(body.joint_names):
        p = body.parents[j]
        if name in src_index:
            G[:, j] = G_src[:, src_index[name]] @ C[j]
        elif p >= 0:
            G[:, j] = G[:, p]
        else:
            G[:, j] = np.eye(3)
    src_leg = leg_length(clip.names, clip.parents, clip.offsets)
    hip, knee, ankle = (rest[body.joint_names.index(n)] for n in ("LeftUpLeg", "LeftLeg", "LeftFoot"))
    body_leg = float(np.linalg.norm(ankle - knee) + np.linalg.norm(knee - hip))
    if src_leg <= 0:
        raise PosevidError("motion skeleton has no legs to scale by (needs LeftLeg and LeftFoot joints)")
    root = clip.root * (body_leg / src_leg)
    return G, root


def _is_descendant(parents: np.ndarray, k: int, j: int) -> bool:
    while k >= 0:
        k = parents[k]
        if k == j:
            return True
    return False
