"""DEKR training targets on hand-made people with known answers."""
import numpy as np
import pytest

from posevid.data.targets import decode_offsets, downsample_mask, encode_dekr, person_centers


def _person(points, vis=None):
    kp = np.zeros((17, 3))
    for j, (x, y) in points.items():
        kp[j] = (x, y, 2 if vis is None else vis.get(j, 2))
    return kp


def test_heatmap_peaks_sit_at_keypoint_over_stride():
    p = _person({0: (40.0, 20.0), 5: (32.0, 48.0), 6: (48.0, 48.0)})
    t = encode_dekr(p[None], (32, 32))
    assert t.heatmaps.shape == (18, 32, 32)
    assert t.heatmaps[0, 5, 10] == pytest.approx(1.0)  # (40, 20) / 4 = col 10, row 5
    assert t.heatmaps[5, 12, 8] == pytest.approx(1.0)
    # sigma 2: one map pixel away the value is exp(-1 / 8)
    assert t.heatmaps[0, 5, 11] == pytest.approx(np.exp(-1 / 8), rel=1e-5)
    assert t.heatmaps[1].max() == 0.0  # unlabelled keypoint: empty channel


def test_center_heatmap_is_the_mean_of_labelled_keypoints_with_sigma_4():
    p = _person({0: (40.0, 20.0), 5: (32.0, 48.0), 6: (48.0, 48.0), 9: (0.0, 0.0)}, vis={9: 0})
    t = encode_dekr(p[None], (32, 32), min_area=0)
    cx, cy = 40.0 / 4, (20 + 48 + 48) / 3 / 4
    np.testing.assert_allclose(t.centers[0], [cx, cy], rtol=1e-6)
    np.testing.assert_allclose(person_centers(p[None])[0], [40.0, 116 / 3], rtol=1e-9)
    i, j = int(round(cy)), int(round(cx))
    expected = np.exp(-((i - cy) ** 2 + (j - cx) ** 2) / (2 * 16))
    assert t.heatmaps[17, i, j] == pytest.approx(expected, rel=1e-5)
    assert t.heatmaps[17, i, j + 1] == pytest.approx(np.exp(-((i - cy) ** 2 + (j + 1 - cx) ** 2) / 32), rel=1e-5)


def test_offsets_decode_to_the_keypoints_in_the_square_around_the_center():
    p = _person({0: (40.0, 20.0), 5: (30.0, 50.0), 6: (50.0, 50.0), 15: (34.0, 90.0), 16: (46.0, 90.0)})
    t = encode_dekr(p[None], (32, 32), min_area=0)
    cx, cy = t.centers[0]
    ci, cj = int(round(cy)), int(round(cx))
    diag = np.hypot(50 - 30, 90 - 20)  # DEKR: the diagonal in input pixels, not map pixels
    for di in (-4, 0, 4):
        for dj in (-4, 0, 4):
            kp = decode_offsets(t.offsets, ci + di, cj + dj)
            np.testing.assert_allclose(kp[[0, 5, 6, 15, 16]], p[[0, 5, 6, 15, 16], :2], atol=1e-4)
            assert t.offset_weight[0, ci + di, cj + dj] == pytest.approx(1 / diag)
    # channel 2j is x, 2j+1 is y, value = location - keypoint
    assert t.offsets[0, ci, cj] == pytest.approx(cj - 10.0)
    assert t.offsets[1, ci, cj] == pytest.approx(ci - 5.0)
    assert t.offset_weight[:, ci + 5, cj].max() == 0  # outside the radius-4 square
    assert t.offset_weight[2:4, ci, cj].max() == 0  # keypoint 1 is unlabelled


def test_background_weight_and_ignore_mask():
    p = _person({0: (40.0, 20.0), 5: (32.0, 48.0)})
    ignore = np.zeros((32, 32), bool)
    ignore[25:, 25:] = True
    t = encode_dekr(p[None], (32, 32), ignore=ignore)
    assert t.heatmap_weight[0, 5, 10] == 1.0  # on the Gaussian
    assert t.heatmap_weight[0, 20, 2] == pytest.approx(0.1)  # background
    assert t.heatmap_weight[:, 28, 28].max() == 0.0  # ignored


def test_smaller_person_owns_overlapping_offset_pixels():
    big = _person({5: (20.0, 20.0), 6: (100.0, 20.0), 15: (20.0, 120.0), 16: (100.0, 120.0)})
    small = _person({5: (56.0, 66.0), 6: (64.0, 66.0), 15: (56.0, 74.0), 16: (64.0, 74.0)})
    t = encode_dekr(np.stack([big, small]), (40, 40), min_area=0)  # both centres at (60, 70) -> map (15, 17.5)
    kp = decode_offsets(t.offsets, 18, 15)
    np.testing.assert_allclose(kp[[5, 6, 15, 16]], small[[5, 6, 15, 16], :2], atol=1e-4)
    t2 = encode_dekr(np.stack([small, big]), (40, 40), min_area=0)  # order does not matter
    np.testing.assert_allclose(t2.offsets, t.offsets)


def test_people_without_labels_give_no_targets_and_shapes_are_checked():
    t = encode_dekr(np.zeros((1, 17, 3)), (8, 8))
    assert t.heatmaps.max() == 0 and t.offset_weight.max() == 0
    assert np.isnan(t.centers).all()
    t0 = encode_dekr(np.zeros((0, 17, 3)), (8, 8))
    assert t0.heatmaps.shape == (18, 8, 8)
    with pytest.raises(ValueError):
        encode_dekr(np.zeros((17, 3)), (8, 8))


def test_downsample_mask_marks_cells_with_any_ignored_pixel():
    m = np.zeros((32, 32), bool)
    m[9, 13] = True  # map cell of (row 9, col 13): row round(9/4)=2, col round(13/4)=3
    d = downsample_mask(m, 4, (8, 8))
    assert d.sum() == 1 and d[2, 3]


def test_decoder_pose_map_reads_the_encoded_offsets_back():
    torch = pytest.importorskip("torch")
    from posevid.decode import pose_map

    p = _person({0: (40.0, 20.0), 5: (30.0, 50.0), 6: (50.0, 50.0), 11: (33.0, 70.0), 12: (47.0, 70.0)})
    t = encode_dekr(p[None], (32, 32), min_area=0)
    poses = pose_map(torch.from_numpy(t.offsets))  # (h, w, K, 2) in map pixels
    ci, cj = (int(round(v)) for v in t.centers[0][::-1])
    labelled = p[:, 2] > 0
    np.testing.assert_allclose(poses[ci, cj].numpy()[labelled] * 4, p[labelled, :2], atol=1e-4)


def test_cut_person_keeps_the_centre_and_size_of_the_whole_body():
    """DEKR: the centre is the mean of all labelled keypoints before cropping; the crop only decides which
    keypoints get heatmaps and offsets."""
    full = _person({0: (60.0, 10.0), 5: (40.0, 40.0), 6: (80.0, 40.0), 15: (45.0, 180.0), 16: (75.0, 180.0)})
    cropped = full.copy()
    cropped[[15, 16]] = 0  # the ankles fall outside the 128-px crop
    t = encode_dekr(cropped[None], (32, 32), full=full[None])
    cy = (10 + 40 + 40 + 180 + 180) / 5
    np.testing.assert_allclose(t.centers[0], [60 / 4, cy / 4], rtol=1e-6)
    i, j = int(round(cy / 4)), 15
    assert t.heatmaps[17, i, j] > 0.9  # the centre is where the whole body's is, not the visible part's
    assert t.offset_weight[0, i, j] == pytest.approx(1 / np.hypot(40, 170))  # the whole body's diagonal
    assert t.offset_weight[30:, i, j].max() == 0 and t.heatmaps[15].max() == 0  # nothing for the cut ankles
    np.testing.assert_allclose(decode_offsets(t.offsets, i, j)[[0, 5, 6]], full[[0, 5, 6], :2], atol=1e-4)
    off_crop = full.copy()
    off_crop[:, 1] += 200  # whole person moved below the crop: centre outside, no centre and no offsets
    off_crop[:, 2] = 2
    t = encode_dekr(np.zeros((1, 17, 3)), (32, 32), full=np.where(full[..., 2:] > 0, off_crop, 0)[None])
    assert t.heatmaps.max() == 0 and t.offset_weight.max() == 0


def test_small_people_get_keypoint_heatmaps_but_no_centre_which_is_ignored():
    small = _person({0: (60.0, 40.0), 5: (52.0, 50.0), 6: (68.0, 50.0), 15: (54.0, 68.0), 16: (66.0, 68.0)})
    t = encode_dekr(small[None], (32, 32))  # box 16×28 input px < 32²
    assert t.heatmaps[0].max() == pytest.approx(1.0)  # keypoints still taught
    assert t.heatmaps[17].max() == 0 and t.offset_weight.max() == 0
    cx, cy = t.centers[0]
    assert t.heatmap_weight[17, int(round(cy)), int(round(cx))] == 0  # not a negative either
    assert t.heatmap_weight[17, 2, 2] == pytest.approx(0.1)  # background elsewhere
    assert t.heatmap_weight[:17, int(round(cy)), int(round(cx))].min() > 0  # keypoint channels are not ignored
    t = encode_dekr(small[None] * [2, 2, 1], (64, 64))  # twice as large: 32×56 px ≥ 32²
    assert t.heatmaps[17].max() > 0.9 and t.offset_weight.max() > 0


def _reference_encode(kp, full, out_size, stride=4, sigma=2.0, center_sigma=4.0, radius=4, bg=0.1, min_area=1024.0):
    """The targets' definition written as plain loops over people, keypoints and pixels (slow)."""
    from posevid.data.targets import gaussian

    h, w = out_size
    K = kp.shape[1]
    heat = np.zeros((K + 1, h, w), np.float32)
    offsets = np.zeros((2 * K, h, w), np.float32)
    off_w = np.zeros((2 * K, h, w), np.float32)
    hw_zero = np.zeros((h, w), bool)
    small_g = np.zeros((h, w), np.float32)
    owner = np.full((h, w), np.inf)
    centres = person_centers(full) / stride
    for n in range(kp.shape[0]):
        for k in range(K):
            if kp[n, k, 2] > 0:
                g, (rs, cs) = gaussian(out_size, tuple(kp[n, k, :2] / stride), sigma)
                np.maximum(heat[k, rs, cs], g, out=heat[k, rs, cs])
        lab = full[n, full[n, :, 2] > 0, :2]
        if not len(lab):
            continue
        bw, bh = lab.max(0) - lab.min(0)
        cx, cy = centres[n]
        ci, cj = int(round(cy)), int(round(cx))
        if not (0 <= ci < h and 0 <= cj < w):
            continue
        g, (rs, cs) = gaussian(out_size, (cx, cy), center_sigma)
        if bw * bh < min_area:
            np.maximum(small_g[rs, cs], g, out=small_g[rs, cs])
            continue
        np.maximum(heat[K, rs, cs], g, out=heat[K, rs, cs])
        for i in range(max(ci - radius, 0), min(ci + radius + 1, h)):
            for j in range(max(cj - radius, 0), min(cj + radius + 1, w)):
                if owner[i, j] < bw ** 2 + bh ** 2:
                    continue
                owner[i, j] = bw ** 2 + bh ** 2
                offsets[:, i, j] = off_w[:, i, j] = 0
                for k in np.nonzero(kp[n, :, 2] > 0)[0]:
                    offsets[2 * k:2 * k + 2, i, j] = (j - kp[n, k, 0] / stride, i - kp[n, k, 1] / stride)
                    off_w[2 * k:2 * k + 2, i, j] = 1 / max(np.hypot(bw, bh), 1)
    hw = np.where(heat > 0, 1.0, bg).astype(np.float32)
    hw[K][(small_g >= np.exp(-2.0)) & (small_g > heat[K])] = 0
    return heat, hw, offsets, off_w


def random_scene(rng, n, size):
    """n people of random size and place, some cut by the crop, some keypoints unlabelled."""
    full = np.zeros((n, 17, 3))
    for p in range(n):
        scale = rng.uniform(10, 150)
        full[p, :, :2] = rng.uniform(-20, size + 20, 2) + rng.normal(0, 1, (17, 2)) * scale
        full[p, :, 2] = rng.uniform(size=17) < 0.8
    inside = (full[..., :2] >= -0.5).all(-1) & (full[..., :2] <= size - 0.5).all(-1) & (full[..., 2] > 0)
    return np.where(inside[..., None], full, 0.0), full


def test_vectorised_encoder_equals_the_loop_definition():
    rng = np.random.default_rng(0)
    for n in (0, 1, 3, 8):
        for _ in range(5):
            kp, full = random_scene(rng, n, 128)
            t = encode_dekr(kp, (32, 32), full=full)
            ref = _reference_encode(kp, full, (32, 32))
            for got, want in zip((t.heatmaps, t.heatmap_weight, t.offsets, t.offset_weight), ref):
                np.testing.assert_allclose(got, want, atol=1e-6)


def test_targets_round_trip_through_the_decoder():
    """Heatmaps + offsets as the network should predict them decode back to the labelled people."""
    torch = pytest.importorskip("torch")
    from posevid.decode import decode, pose_map

    people = np.stack([_person({j: (x + 6 * j % 30, 30 + 9 * j) for j in range(17)}) for x in (30.0, 140.0)])
    t = encode_dekr(people, (64, 64))
    found = decode(torch.from_numpy(t.heatmaps), pose_map(torch.from_numpy(t.offsets)))
    assert len(found) == 2
    got = found.keypoints[np.argsort(found.keypoints[:, 0, 0]), :, :2] * 4
    np.testing.assert_allclose(got, people[..., :2], atol=1e-3)
