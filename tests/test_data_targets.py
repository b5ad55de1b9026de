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
    t = encode_dekr(p[None], (32, 32))
    cx, cy = 40.0 / 4, (20 + 48 + 48) / 3 / 4
    np.testing.assert_allclose(t.centers[0], [cx, cy], rtol=1e-6)
    np.testing.assert_allclose(person_centers(p[None])[0], [40.0, 116 / 3], rtol=1e-9)
    i, j = int(round(cy)), int(round(cx))
    expected = np.exp(-((i - cy) ** 2 + (j - cx) ** 2) / (2 * 16))
    assert t.heatmaps[17, i, j] == pytest.approx(expected, rel=1e-5)
    assert t.heatmaps[17, i, j + 1] == pytest.approx(np.exp(-((i - cy) ** 2 + (j + 1 - cx) ** 2) / 32), rel=1e-5)


def test_offsets_decode_to_the_keypoints_in_the_square_around_the_center():
    p = _person({0: (40.0, 20.0), 5: (30.0, 50.0), 6: (50.0, 50.0), 15: (34.0, 90.0), 16: (46.0, 90.0)})
    t = encode_dekr(p[None], (32, 32))
    cx, cy = t.centers[0]
    ci, cj = int(round(cy)), int(round(cx))
    diag = np.hypot((50 - 30) / 4, (90 - 20) / 4)
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
    t = encode_dekr(np.stack([big, small]), (40, 40))  # both centres at (60, 70) -> map (15, 17.5)
    kp = decode_offsets(t.offsets, 18, 15)
    np.testing.assert_allclose(kp[[5, 6, 15, 16]], small[[5, 6, 15, 16], :2], atol=1e-4)
    t2 = encode_dekr(np.stack([small, big]), (40, 40))  # order does not matter
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
    t = encode_dekr(p[None], (32, 32))
    poses = pose_map(torch.from_numpy(t.offsets))  # (h, w, K, 2) in map pixels
    ci, cj = (int(round(v)) for v in t.centers[0][::-1])
    labelled = p[:, 2] > 0
    np.testing.assert_allclose(poses[ci, cj].numpy()[labelled] * 4, p[labelled, :2], atol=1e-4)
