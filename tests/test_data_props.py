"""Props: closed meshes facing outwards (the rasteriser culls back faces) and placement away from
people and the camera."""
import numpy as np
import pytest

from posevid.data import props as P
from posevid.data.render import look_at, rasterize


def _face_normals(v, f):
    return np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])


@pytest.mark.parametrize("mesh", [P.lathe([(0.0, 0.3), (0.5, 0.3), (1.0, 0.1)]), P.box(0.4, 0.6, 1.2, z0=0.2)],
                         ids=["lathe", "box"])
def test_convex_meshes_face_outwards(mesh):
    v, f = mesh
    n = _face_normals(v, f)
    real = np.linalg.norm(n, axis=1) > 1e-9
    out = v[f].mean(1) - v.mean(0)
    assert ((n * out).sum(1)[real] > 0).all()


def test_a_rendered_box_shows_its_near_side():
    v, f = P.box(1.0, 1.0, 1.0)  # from z 0 to 1, near side at y = -0.5 seen from y = -4
    cam = look_at(np.array([0.0, -4.0, 0.5]), np.array([0.0, 0.0, 0.5]), 60.0, 64, 48)
    xy, z = cam.project(v)
    r = rasterize(xy, z, f, np.ones((len(v), 1)), np.zeros(len(f), np.int16), 64, 48)
    assert abs(r.depth[24, 32] - 3.5) < 1e-3  # not the far side at 4.5 (that would mean inward faces)


def test_props_stand_clear_of_people_paths_and_camera():
    rng = np.random.default_rng(0)
    path = np.stack([np.linspace(-1, 1, 8), np.zeros(8)], 1)
    cam = np.tile([0.0, -4.0], (8, 1))
    props = [q for _ in range(20) for q in P.random_props(rng, [path], np.zeros(3), cam)]
    assert len(props) > 20
    for q in props:
        xy = q.verts[:, :2]
        gap = np.linalg.norm(xy[:, None] - path[None], axis=2).min()
        assert gap > 0.35  # 0.4 m beyond the footprint's reach
        assert np.linalg.norm(xy - cam[0], axis=1).min() > 1.4
        assert q.verts[:, 2].min() >= -1e-6 and q.verts[:, 2].max() > 0.3  # on the ground, upright
