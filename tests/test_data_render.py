"""Camera and rasteriser of the synthetic-data generator (no optional packages needed)."""
import numpy as np

from posevid.data.render import look_at, rasterize, vertex_normals


def _quad(x0, y0, x1, y1, z):
    """Two counter-clockwise (seen from the camera at the origin looking down +z) triangles."""
    v = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], np.float64)
    f = np.array([[0, 2, 1], [0, 3, 2]])
    return v, f


def _draw(quads, w=40, h=30, f=20.0, cull=True):
    verts, faces, ids = [], [], []
    for i, (v, fc) in enumerate(quads):
        faces.append(fc + sum(len(x) for x in verts))
        verts.append(v)
        ids.append(np.full(len(fc), i))
    v = np.concatenate(verts)
    xy = np.stack([f * v[:, 0] / v[:, 2] + (w - 1) / 2, f * v[:, 1] / v[:, 2] + (h - 1) / 2], 1)
    attr = np.repeat(np.arange(len(quads), dtype=np.float32), [len(x) for x in verts])[:, None]
    return rasterize(xy, v[:, 2], np.concatenate(faces), attr, np.concatenate(ids), w, h, cull_backfaces=cull)


def test_depth_buffer_keeps_the_nearest_surface():
    far = _quad(-1, -1, 1, 1, 4.0)  # covers the middle of the image
    near = _quad(0, -1, 1, 1, 2.0)  # right half, nearer
    r = _draw([far, near])
    assert r.ids[15, 22] == 1 and abs(r.depth[15, 22] - 2.0) < 1e-5
    assert r.ids[15, 16] == 0 and abs(r.depth[15, 16] - 4.0) < 1e-5
    r2 = _draw([near, far])  # drawing order does not matter
    assert r2.ids[15, 22] == 0 and r2.ids[15, 16] == 1
    assert r.ids[0, 0] == -1 and np.isinf(r.depth[0, 0])


def test_pixel_coverage_follows_the_centre_convention():
    # A quad spanning x in [-0.5, 0.5] at z=1 with f=20 covers image x in [9.5, 29.5] - pixel centres 10..29.
    r = _draw([_quad(-0.5, -0.5, 0.5, 0.5, 1.0)])
    cols = np.nonzero((r.ids >= 0).any(0))[0]
    assert cols.min() == 10 and cols.max() == 29


def test_back_faces_are_culled():
    v, f = _quad(-1, -1, 1, 1, 3.0)
    assert (_draw([(v, f[:, ::-1])]).ids >= 0).sum() == 0
    assert (_draw([(v, f[:, ::-1])], cull=False).ids >= 0).sum() > 0


def test_attributes_are_interpolated_perspective_correctly():
    # A floor-like quad receding in depth; attribute = z of each vertex, so the result must equal depth.
    v = np.array([[-1, 0.5, 2.0], [1, 0.5, 2.0], [1, 0.5, 8.0], [-1, 0.5, 8.0]])
    f = np.array([[0, 1, 2], [0, 2, 3]])
    w, h, fl = 40, 30, 20.0
    xy = np.stack([fl * v[:, 0] / v[:, 2] + (w - 1) / 2, fl * v[:, 1] / v[:, 2] + (h - 1) / 2], 1)
    r = rasterize(xy, v[:, 2], f, v[:, 2:3].astype(np.float32), np.zeros(2, int), w, h, cull_backfaces=False)
    m = r.ids >= 0
    assert m.sum() > 20
    np.testing.assert_allclose(r.color[..., 0][m], r.depth[m], rtol=1e-4)


def test_look_at_puts_the_target_at_the_principal_point_and_world_x_to_the_right():
    cam = look_at(np.array([0.0, -5.0, 1.0]), np.array([0.0, 0.0, 1.0]), 100.0, 64, 48)
    xy, z = cam.project(np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 2.0]]))
    np.testing.assert_allclose(xy[0], [31.5, 23.5], atol=1e-9)
    assert abs(z[0] - 5.0) < 1e-9
    assert xy[1, 0] > xy[0, 0]  # +x (a person's left when facing -y, towards this camera) is image right
    assert xy[2, 1] < xy[0, 1]  # up is up


def test_vertex_normals_point_outwards_for_counter_clockwise_faces():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float64)
    n = vertex_normals(v, np.array([[0, 1, 2]]))
    np.testing.assert_allclose(n, [[0, 0, 1]] * 3, atol=1e-6)
