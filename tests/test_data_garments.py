"""Garments (skirts, dresses, coats): a closed tube facing outwards with an inside, rings that clear
both legs in a stride, and no garment on a person upside down."""
import numpy as np
import pytest

from posevid.data import garments as G


def _kps(stride: float) -> np.ndarray:
    """COCO keypoints of an upright person facing -y, the left leg forward by `stride` metres."""
    k = np.zeros((17, 3))
    k[5], k[6] = [0.18, 0, 1.45], [-0.18, 0, 1.45]  # shoulders
    k[11], k[12] = [0.1, 0, 0.95], [-0.1, 0, 0.95]  # hips
    k[13], k[14] = [0.1, -stride / 2, 0.5], [-0.1, stride / 2, 0.5]  # knees
    k[15], k[16] = [0.1, -stride, 0.08], [-0.1, stride, 0.08]  # ankles
    return k


def _hips() -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    return np.stack([0.17 * np.cos(a), 0.12 * np.sin(a), np.full(16, 0.95)], 1)


def test_closed_grid_faces_outer_half_faces_out_and_inner_half_in():
    rings = G.garment_rings(_kps(0.0), _hips(), 0.8, 0.05, 0.1, 0.2, (8, 0.0, 0.0))
    f = G.grid_faces(G._RINGS, G._AROUND, closed=True)
    n = np.cross(rings[f[:, 1]] - rings[f[:, 0]], rings[f[:, 2]] - rings[f[:, 0]])
    radial = rings[f].mean(1) - np.array([0.0, 0.0, 0.0])
    radial[:, 2] = 0  # away from the vertical axis of the tube
    d = (n * radial).sum(1)
    half = len(f) // 2
    assert (d[:half] > 0).all() and (d[half:] < 0).all()


@pytest.mark.parametrize("stride", [0.0, 0.6])
def test_rings_clear_both_legs_and_hang_from_the_waist_to_the_hem(stride):
    k = _kps(stride)
    clear = 0.08
    rings = G.garment_rings(k, _hips(), 0.8, 0.05, clear, 0.0, (8, 0.0, 0.0)).reshape(G._RINGS, G._AROUND, 3)
    assert abs(rings[0, :, 2].mean() - 1.0) < 1e-6  # the waist: 5 cm above the hip joints
    assert rings[-1, :, 2].max() < 0.5  # a hem below the knees (0.8 of the leg)
    checked = 0
    for ring in rings[1:]:
        z = ring[:, 2].mean()
        if z > 0.95 - 0.2:
            continue  # near the waist the hips, not the legs, set the width
        centre = ring.mean(0)
        a, b = np.abs(ring[:, 0] - centre[0]).max(), np.abs(ring[:, 1] - centre[1]).max()
        for hip, knee, ankle in ((11, 13, 15), (12, 14, 16)):
            zs = [k[ankle, 2], k[knee, 2], k[hip, 2]]
            leg = [np.interp(z, zs, [k[ankle, c], k[knee, c], k[hip, c]]) for c in (0, 1)]  # the leg at that height
            x, y = abs(leg[0] - centre[0]) + clear, abs(leg[1] - centre[1]) + clear
            assert (x / a) ** 2 + (y / b) ** 2 <= 1.0 + 1e-6
            checked += 1
    assert checked >= 6


@pytest.fixture(scope="module")
def standing():
    """An anny body in its rest pose as a one-frame clip: body, vertices, keypoints, outfit."""
    pytest.importorskip("anny", reason="the synth extra is not installed (make install-train)")
    from posevid.data import appearance as A
    from posevid.data import body as B

    body = B.build_body({k: 0.5 for k in B.PHENOTYPES})
    kps = (body.keypoint_regressor @ body.rest_vertices)[None]
    return body, body.rest_vertices[None], kps, A.random_outfit(np.random.default_rng(0), body)


def test_an_upright_body_gets_a_garment_below_the_shoulders_and_one_upside_down_none(standing):
    body, verts, kps, outfit = standing
    for seed in range(6):  # every kind
        g, under = G.random_garment(np.random.default_rng(seed), body, outfit, verts, kps)
        z = g.verts[0, :, 2]
        assert g.verts.shape == (1, G._RINGS * G._AROUND, 3) and g.normals.shape == g.verts.shape
        assert z.min() > kps[0, 15:17, 2].min() - 0.05 and z.min() < kps[0, 11:13, 2].min() - 0.2  # a hem on the legs
        assert z.max() < kps[0, 5:7, 2].min()  # below the shoulders
        assert under.albedo.shape == outfit.albedo.shape
    upside_down = [1.0, 1.0, -1.0]
    assert G.random_garment(np.random.default_rng(0), body, outfit, verts * upside_down, kps * upside_down) is None


def _head() -> tuple[np.ndarray, np.ndarray]:
    """Keypoints of an upright person facing -y, and points of a head, neck and back behind the ears."""
    k = _kps(0.0)
    k[0] = [0.0, -0.09, 1.62]  # nose
    k[3], k[4] = [0.07, 0.0, 1.6], [-0.07, 0.0, 1.6]  # ears
    z = np.linspace(1.1, 1.75, 40)
    x = np.linspace(-0.1, 0.1, 9)
    X, Z = np.meshgrid(x, z)
    Y = np.where(Z > 1.5, 0.09, 0.12)  # back of the skull, then the upper back further behind
    return k, np.stack([X.ravel(), Y.ravel(), Z.ravel()], 1)


def test_long_hair_hangs_behind_the_head_and_the_back_and_faces_away_from_them():
    k, body = _head()
    v = G.hair_rows(k, body, length=0.4, width=0.08)
    grid = v.reshape(G._HAIR_ROWS, G._HAIR_COLS, 3)
    assert (v[:, 1] >= -1e-9).all()  # behind the line between the ears: the face stays free
    mid = grid[:, G._HAIR_COLS // 2]
    assert (mid[:, 1] > np.where(mid[:, 2] > 1.5, 0.09, 0.12)).all()  # off the body behind it
    assert np.allclose(np.diff(mid[:, 2]), -0.4 / (G._HAIR_ROWS - 1))  # falls straight down
    f = G.grid_faces(G._HAIR_ROWS, G._HAIR_COLS, closed=False)
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    half = len(f) // 2
    centre = np.abs(v[f[:, 0], 0]) < 0.03  # faces over the middle of the back
    assert (n[:half][centre[:half], 1] > 0).all() and (n[half:][centre[half:], 1] < 0).all()


def test_long_hair_only_for_people_with_hair_who_stand(standing):
    from dataclasses import replace

    from posevid.data import body as B

    body, verts, kps, outfit = standing
    crown = int(np.argmax(body.rest_vertices[:, 2]))
    hair = outfit.albedo.copy()
    hair[crown] = [0.1, 0.05, 0.02]
    with_hair = replace(outfit, albedo=hair)
    h = G.random_hair(np.random.default_rng(0), body, with_hair, verts, kps)
    assert h.verts.shape == (1, G._HAIR_ROWS * G._HAIR_COLS, 3)
    assert np.allclose(h.look.albedo.mean(0), hair[crown], atol=0.03)  # the cap's colour
    bald = hair.copy()
    bald[crown] = np.median(outfit.albedo[body.vertex_part == B.PARTS.index("hand")], axis=0)
    assert G.random_hair(np.random.default_rng(0), body, replace(outfit, albedo=bald), verts, kps) is None
    flip = [1.0, 1.0, -1.0]
    assert G.random_hair(np.random.default_rng(0), body, with_hair, verts * flip, kps * flip) is None
