"""Decoding on hand-made heatmaps and offsets with known answers, and the frame ↔ input mapping."""
import numpy as np
import pytest
import torch

from posevid.decode import (Poses, center_peaks, decode, keypoint_peaks, merge_flipped, merge_scales, pose_map,
                            pose_nms, sample_bilinear, snap_to_peaks)
from posevid.frames import PAD_RGB, Resize, to_tensor
from posevid.skeleton import COCO

K = 17


def gaussian(h, w, x, y, sigma=1.5, peak=1.0):
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return peak * torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))


def person_maps(h, w, people):
    """people: list of (center (x, y), keypoints (K, 2), peak) → heatmaps (K+1, h, w), offsets (2K, h, w)
    with the offsets of each person written in a radius-2 square around its center, like DEKR's targets."""
    heat = torch.zeros(K + 1, h, w)
    off = torch.zeros(2 * K, h, w)
    for (cx, cy), kpts, peak in people:
        heat[K] = torch.maximum(heat[K], gaussian(h, w, cx, cy, 2.0, peak))
        for j, (x, y) in enumerate(kpts):
            heat[j] = torch.maximum(heat[j], gaussian(h, w, x, y, 1.5, 0.9))
        for yy in range(cy - 2, cy + 3):
            for xx in range(cx - 2, cx + 3):
                off[0::2, yy, xx] = xx - torch.tensor(kpts[:, 0])  # offset = location − keypoint
                off[1::2, yy, xx] = yy - torch.tensor(kpts[:, 1])
    return heat, off


def random_pose(rng, cx, cy, spread=6.0):
    return np.stack([cx + rng.uniform(-spread, spread, K), cy + rng.uniform(-2 * spread, 2 * spread, K)], 1)


def test_pose_map_is_location_minus_offset():
    off = torch.zeros(2 * K, 4, 5)
    off[0, 2, 3], off[1, 2, 3] = 1.5, -2.0  # keypoint 0 at pixel (x=3, y=2)
    pm = pose_map(off)
    assert pm.shape == (4, 5, K, 2)
    assert pm[2, 3, 0].tolist() == [1.5, 4.0]
    assert pm[1, 4, 5].tolist() == [4.0, 1.0]


def test_center_peaks_local_nms_threshold_and_order():
    c = gaussian(30, 40, 10, 8, peak=0.9) + gaussian(30, 40, 30, 20, peak=0.5) + gaussian(30, 40, 31, 20, peak=0.005)
    idx, scores = center_peaks(c, max_people=30, threshold=0.1)
    assert [(int(i) % 40, int(i) // 40) for i in idx] == [(10, 8), (30, 20)]
    assert scores[0] > scores[1]
    assert len(center_peaks(c, max_people=1, threshold=0.1)[0]) == 1


def test_sample_bilinear_exact_between_pixels():
    maps = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)
    pts = torch.tensor([[[1.5, 1.0], [0.0, 2.0]], [[10.0, 10.0], [3.0, 0.5]]])  # (P=2, K=2, 2)
    got = sample_bilinear(maps, pts)
    assert torch.allclose(got, torch.tensor([[5.5, 20.0], [0.0, 17.0]]))


def test_decode_recovers_two_people_exactly():
    rng = np.random.default_rng(0)
    a, b = random_pose(rng, 12, 15), random_pose(rng, 40, 18)
    heat, off = person_maps(36, 56, [((12, 15), a, 0.9), ((40, 18), b, 0.6)])
    poses = decode(heat, pose_map(off))
    assert len(poses) == 2
    order = np.argsort(-poses.scores)
    assert np.allclose(poses.keypoints[order[0], :, :2], a, atol=1e-4)
    assert np.allclose(poses.keypoints[order[1], :, :2], b, atol=1e-4)
    assert np.allclose(poses.center_scores[order], [0.9, 0.6], atol=1e-6)
    # keypoint scores are the keypoint heatmaps at the regressed positions; pose score = center × mean
    assert np.all((poses.keypoints[..., 2] > 0.8) & (poses.keypoints[..., 2] <= 0.9))  # bilinear of the 0.9 peak
    assert np.allclose(poses.scores, poses.center_scores * poses.keypoints[..., 2].mean(1))
    # pose_score="center": the center peak alone, the people and keypoints unchanged
    centered = decode(heat, pose_map(off), pose_score="center")
    assert np.allclose(centered.scores, centered.center_scores) and np.allclose(centered.scores[order], [0.9, 0.6])
    assert np.allclose(np.sort(centered.keypoints, 0), np.sort(poses.keypoints, 0))
    with pytest.raises(ValueError, match="pose_score"):
        decode(heat, pose_map(off), pose_score="keypoints")


def test_keypoint_peaks_with_quarter_pixel_step():
    heat = torch.zeros(2, 10, 12)
    heat[0] = gaussian(10, 12, 4.3, 6.0, peak=0.8) + gaussian(10, 12, 10.0, 6.0, peak=0.3)
    pos, values = keypoint_peaks(heat, top=3)
    assert pos.shape == (2, 3, 2) and values.shape == (2, 3)
    assert pos[0, 0].tolist() == [4.25, 6.0]  # right neighbour higher → +0.25 in x; symmetric in y → 0
    assert pos[0, 1].tolist() == [9.75, 6.0]  # the first peak's tail lifts its left neighbour
    assert values[0, :2].tolist() == pytest.approx([0.8, 0.3], abs=0.02)  # value at the integer pixel
    assert values[1].max() == 0  # an empty map has no peak above 0


def test_snap_moves_keypoints_to_close_strong_peaks_only():
    kpts = torch.tensor([[[10.0, 10.0], [10.0, 30.0]]])  # one pose, K=2, box 0 × 20 → radius 0.25 × 20 = 5
    peaks = torch.tensor([[[12.0, 11.0], [10.0, 10.0]],   # keypoint 0: a close peak and an exact weak one
                          [[10.0, 40.0], [0.0, 0.0]]])    # keypoint 1: only a far peak
    values = torch.tensor([[0.5, 0.05], [0.9, 0.0]])
    out = snap_to_peaks(kpts, peaks, values, radius_ratio=0.25)
    assert out[0, 0].tolist() == [12.0, 11.0]  # the weak exact peak is below min_value
    assert out[0, 1].tolist() == [10.0, 30.0]  # 10 px away > radius: stays
    assert torch.equal(snap_to_peaks(kpts, peaks, values, radius_ratio=0.0), kpts)


def test_decode_with_snap_corrects_a_rough_regression():
    rng = np.random.default_rng(1)
    truth = random_pose(rng, 20, 18)
    heat, _ = person_maps(36, 40, [((20, 18), truth, 0.9)])
    _, off = person_maps(36, 40, [((20, 18), truth + rng.uniform(-1.5, 1.5, truth.shape), 0.9)])
    rough = decode(heat, pose_map(off)).keypoints[0, :, :2]
    snapped = decode(heat, pose_map(off), snap_radius=0.3).keypoints[0, :, :2]
    assert np.abs(rough - truth).max() > 0.5
    assert np.abs(snapped - truth).max() <= 0.25 + 0.5  # integer peak + quarter step of a sub-pixel truth


def test_decode_of_empty_maps_is_empty():
    poses = decode(torch.zeros(K + 1, 8, 8), pose_map(torch.zeros(2 * K, 8, 8)))
    assert len(poses) == 0 and poses.keypoints.shape == (0, K, 3)


def test_pose_nms_removes_duplicates_keeps_distinct():
    rng = np.random.default_rng(1)
    a = torch.tensor(random_pose(rng, 20, 20, 10), dtype=torch.float32)
    b = a + 0.3  # the same person found from a neighbouring center
    c = torch.tensor(random_pose(rng, 80, 20, 10), dtype=torch.float32)
    keep = pose_nms(torch.stack([a, b, c]), torch.tensor([0.5, 0.8, 0.4]))
    assert keep.tolist() == [1, 2]


def test_merge_scales_takes_each_person_from_the_largest_zoom_that_sees_it_small_enough():
    rng = np.random.default_rng(3)

    def person(x, y, height):  # a pose whose keypoint box is about height × height / 2 source pixels
        kp = np.stack([x + rng.uniform(-height / 4, height / 4, K), y + rng.uniform(-height / 2, height / 2, K),
                       np.ones(K)], 1)
        kp[0, 1], kp[1, 1] = y - height / 2, y + height / 2
        return kp

    def poses(*people, score=0.5):
        return Poses(np.stack(people), np.full(len(people), score), np.full(len(people), score))

    small, large = person(50, 50, 60), person(200, 100, 150)  # diagonals about 67 and 168 source px
    # the full pass sees both (zoom 2: 134 and 335 input px); the half pass too (zoom 1: 67 and 168)
    full = poses(small, large, score=0.9)
    half = poses(small + [1, 1, 0], large + [2, 0, 0], score=0.4)
    merged = merge_scales([full, half], [2.0, 1.0], max_size=200.0)
    assert len(merged) == 2
    assert np.allclose(merged.keypoints[merged.scores == 0.9], small)  # small: from the full pass
    assert np.allclose(merged.keypoints[merged.scores == 0.4], large + [2, 0, 0])  # large: from the half pass
    # the smallest zoom keeps people of any size; a person the full pass sees small enough is not taken twice
    assert len(merge_scales([full, half], [0.5, 0.25], max_size=200.0)) == 2
    assert np.allclose(merge_scales([full, half], [0.5, 0.25], max_size=200.0).scores, 0.9)
    # a person the two passes draw at sizes either side of the boundary is kept by both: pose NMS merges them
    centre = large[:, :2].mean(0)
    grown, shrunk = large.copy(), large.copy()
    grown[:, :2], shrunk[:, :2] = centre + 1.02 * (large[:, :2] - centre), centre + 0.98 * (large[:, :2] - centre)
    diag = np.hypot(*np.ptp(large[:, :2], 0))
    merged = merge_scales([poses(shrunk, score=0.9), poses(grown, score=0.8)], [1.0, 0.5], diag)
    assert len(merged) == 1 and merged.scores[0] == 0.9
    with pytest.raises(ValueError, match="decrease"):
        merge_scales([full, half], [1.0, 1.0], 200.0)


def test_flip_merge_of_a_mirrored_pass_gives_the_same_people():
    rng = np.random.default_rng(2)
    content_w, h, w = 4 * 47 + 1, 24, 48  # content width so that mirrored map columns align exactly
    mirror = (content_w - 1) / 4
    a = random_pose(rng, 15, 12, 4)
    heat, off = person_maps(h, w, [((15, 12), a, 0.9)])
    # what the network would see on the mirrored image: mirrored positions, left/right keypoints swapped
    am = a[list(COCO.flip_index)].copy()
    am[:, 0] = mirror - am[:, 0]
    heat_f, off_f = person_maps(h, w, [((int(mirror) - 15, 12), am, 0.9)])
    merged_heat, merged_poses = merge_flipped(heat, pose_map(off), heat_f, pose_map(off_f), COCO.flip_index, content_w)
    poses = decode(merged_heat, merged_poses)
    assert len(poses) == 1
    assert np.allclose(poses.keypoints[0, :, :2], a, atol=1e-4)
    assert torch.allclose(merged_heat, heat, atol=1e-5)


@pytest.mark.parametrize("w,h,size", [(640, 272, 160), (161, 121, 128), (1080, 1920, 512)])
def test_resize_plan_and_inverse(w, h, size):
    plan = Resize.plan(w, h, size)
    assert plan.in_w % 32 == 0 and plan.in_h % 32 == 0
    assert min(plan.out_w, plan.out_h) == size
    assert plan.out_w <= plan.in_w < plan.out_w + 32 and plan.out_h <= plan.in_h < plan.out_h + 32
    pts = np.array([[0.0, 0.0], [w - 1.0, h - 1.0], [w / 3, h / 5]])
    assert np.allclose(plan.to_source(plan.to_input(pts)), pts)
    # the centres of the first and last pixels map onto each other
    assert np.allclose(plan.to_source(np.array([[-0.5, -0.5]])), [[-0.5, -0.5]])
    assert np.allclose(plan.to_source(np.array([[plan.out_w - 0.5, plan.out_h - 0.5]])), [[w - 0.5, h - 0.5]])


def test_to_tensor_gives_rgb_pads_with_the_mean_and_flips():
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, :30] = (255, 0, 0)  # left half blue in BGR
    plan = Resize.plan(60, 40, 32)
    x = to_tensor(img, plan)
    assert x.shape == (1, 3, plan.in_h, plan.in_w)
    assert x[0, :, 5, 2].tolist() == [0.0, 0.0, 255.0]  # RGB order: blue is channel 2; 0-255, not normalised
    pad = x[0, :, :, plan.out_w:]
    assert torch.allclose(pad, torch.tensor(PAD_RGB).view(3, 1, 1).expand_as(pad))
    xf = to_tensor(img, plan, flip=True)
    assert xf[0, :, 5, plan.out_w - 3].tolist() == [0.0, 0.0, 255.0]
