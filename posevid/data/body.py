"""A posable human body: the anny parametric mesh (MakeHuman assets, CC0) with its CMU rig.

World frame of the body (anny's): metres, z up, the person faces -y, +x is the person's left.
The body is exported from anny once per shape into plain numpy arrays; posing (forward kinematics
and linear blend skinning) is done here in numpy so the generator does not depend on anny's
internals per frame.
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
from dataclasses import dataclass

import numpy as np

from posevid.data.render import vertex_normals
from posevid.errors import PosevidError

# Shape parameters anny exposes (each in [0, 1]); sampled per person.
PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")

# Body parts used for clothing: each CMU rig bone maps to one part.
PARTS = ("head", "neck", "torso", "upper_arm", "forearm", "hand", "hips", "thigh", "shin", "foot")
_BONE_PART = {
    "Hips": "hips", "LHipJoint": "hips", "RHipJoint": "hips",
    "LeftUpLeg": "thigh", "RightUpLeg": "thigh", "LeftLeg": "shin", "RightLeg": "shin",
    "LeftFoot": "foot", "RightFoot": "foot", "LeftToeBase": "foot", "RightToeBase": "foot",
    "LowerBack": "torso", "Spine": "torso", "Spine1": "torso",
    "LeftShoulder": "torso", "RightShoulder": "torso",
    "LeftArm": "upper_arm", "RightArm": "upper_arm", "LeftForeArm": "forearm", "RightForeArm": "forearm",
    "Neck": "neck", "Neck1": "neck", "Head": "head",
}


@dataclass(frozen=True)
class Body:
    """One body shape in its rest pose, ready to pose with `pose_vertices`.

    rest_vertices: (V, 3) float32, metres, body frame (z up, facing -y).
    faces: (F, 3) int32 triangles, counter-clockwise seen from outside.
    joint_names: rig bone names (CMU naming), parents: (J,) int, -1 for the root.
    joint_rest: (J, 3) bone head positions in the rest pose.
    skin_index, skin_weight: (V, S) bone indices and weights of linear blend skinning.
    keypoint_regressor: (17, V) float32, COCO keypoints = regressor @ vertices (rows sum to 1).
    vertex_part: (V,) int, index into PARTS.
    phenotype: the shape parameters it was built from.
    rest_normals: (V, 3) unit outward normals of the rest mesh.
    """

    rest_vertices: np.ndarray
    faces: np.ndarray
    joint_names: tuple[str, ...]
    parents: np.ndarray
    joint_rest: np.ndarray
    skin_index: np.ndarray
    skin_weight: np.ndarray
    keypoint_regressor: np.ndarray
    vertex_part: np.ndarray
    phenotype: dict
    rest_normals: np.ndarray  # (V, 3) float32 unit outward normals of the rest mesh

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)


def _require_anny():
    try:
        import warp

        warp.config.quiet = True  # no banner or "no CUDA driver" warning when anny starts warp
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import anny  # noqa: F401
    except ImportError:
        raise PosevidError(
            "the synthetic-data generator needs the 'synth' extra: pip install 'posevid[synth]'"
        ) from None
    return anny


@contextlib.contextmanager
def _quiet_fds():
    """Silence stdout/stderr at the file-descriptor level: warp's native library prints a "no CUDA
    driver" warning on a CPU machine when it starts, which users need not see."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


@functools.lru_cache(maxsize=1)
def _anny_model():
    """The anny model with the CMU rig and the COCO regressor (built once per process)."""
    anny = _require_anny()
    import torch

    with _quiet_fds():
        model = anny.Anny(rig="cmu_mb")
        regressor = anny.KeypointsRegressor.coco(model, labels=None)
        with torch.no_grad():
            model(phenotype_kwargs={"age": torch.tensor([0.5], dtype=torch.float64)})  # starts warp
    from posevid.skeleton import COCO

    rows = [regressor.labels.index(name) for name in COCO.names]
    coco = regressor.regression_weights[rows].to(torch.float32).numpy()  # (17, V)
    faces = model.get_triangular_faces().numpy().astype(np.int32)
    names = tuple(model.bone_labels)
    parents = np.asarray(model.bone_parents, dtype=np.int64)
    skin_index = model.vertex_bone_indices.numpy().astype(np.int32)
    skin_weight = model.vertex_bone_weights.numpy().astype(np.float32)
    # Each vertex's part = the part of its heaviest bone (hands and fingers -> "hand").
    heaviest = skin_index[np.arange(len(skin_index)), skin_weight.argmax(1)]
    bone_part = np.array([PARTS.index(_BONE_PART.get(n, "hand")) for n in names])
    vertex_part = bone_part[heaviest]
    return model, coco, faces, names, parents, skin_index, skin_weight, vertex_part


def build_body(phenotype: dict[str, float]) -> Body:
    """The anny body for the given shape parameters (keys from PHENOTYPES, values in [0, 1])."""
    import torch

    model, coco, faces, names, parents, skin_index, skin_weight, vertex_part = _anny_model()
    kwargs = {k: torch.tensor([float(phenotype[k])], dtype=torch.float64) for k in PHENOTYPES if k in phenotype}
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):  # warp logs kernel loads
        out = model(phenotype_kwargs=kwargs)
    return Body(
        rest_vertices=out["rest_vertices"][0].numpy().astype(np.float32),
        faces=faces,
        joint_names=names,
        parents=parents,
        joint_rest=out["rest_bone_heads"][0].numpy().astype(np.float32),
        skin_index=skin_index,
        skin_weight=skin_weight,
        keypoint_regressor=coco,
        vertex_part=vertex_part,
        phenotype=dict(phenotype),
        rest_normals=vertex_normals(out["rest_vertices"][0].numpy(), faces),
    )


def warm_up() -> None:
    """Build anny's on-disk model cache now (slow the first time on a machine), not in the first test."""
    build_body({k: 0.5 for k in PHENOTYPES})


def random_phenotype(rng: np.random.Generator) -> dict[str, float]:
    """Adult-leaning random shape: age skewed to adults, the rest uniform in a plausible range."""
    return {
        "gender": float(rng.uniform(0.0, 1.0)),
        "age": float(rng.uniform(0.45, 1.0)),  # anny: 0.5 ~ young adult, 1 ~ old; below ~0.4 children
        "muscle": float(rng.uniform(0.1, 0.9)),
        "weight": float(rng.uniform(0.1, 0.9)),
        "height": float(rng.uniform(0.15, 0.85)),
        "proportions": float(rng.uniform(0.2, 0.8)),
    }


def skin(body: Body, rotations: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pose the body: per-bone global rotations and the root position -> vertices and keypoints.

    rotations: (J, 3, 3) global rotation of each bone relative to its rest orientation
        (x_posed = head_posed + R @ (x_rest - head_rest) for a vertex bound to that bone only).
    root: (3,) world position of the root bone head (Hips).
    Returns vertices (V, 3) and COCO keypoints (17, 3), float32.
    """
    verts, keypoints, _ = skin_with_normals(body, rotations, root, normals=False)
    return verts, keypoints


def skin_with_normals(body: Body, rotations: np.ndarray, root: np.ndarray, normals: bool = True):
    """`skin`, plus vertex normals (V, 3) turned by the blended bone rotations (None if not asked)."""
    rest = body.joint_rest.astype(np.float64)
    heads = np.zeros_like(rest)
    for j, p in enumerate(body.parents):  # parents precede children in anny's bone order
        if p < 0:
            heads[j] = root
        else:
            heads[j] = heads[p] + rotations[p] @ (rest[j] - rest[p])
    # Affine bone transforms (J, 3, 4): x -> R x + t with t = head - R head_rest.
    t = heads - np.einsum("jab,jb->ja", rotations, rest)
    A = np.concatenate([rotations, t[:, :, None]], axis=2).astype(np.float32)
    blended = np.einsum("vs,vsab->vab", body.skin_weight, A[body.skin_index])  # (V, 3, 4)
    v = body.rest_vertices
    verts = np.einsum("vab,vb->va", blended[:, :, :3], v) + blended[:, :, 3]
    keypoints = body.keypoint_regressor @ verts
    n = None
    if normals:
        n = np.einsum("vab,vb->va", blended[:, :, :3], body.rest_normals)
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
    return verts.astype(np.float32), keypoints.astype(np.float32), n
