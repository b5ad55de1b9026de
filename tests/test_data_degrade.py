import numpy as np

from posevid.data.degrade import blur_one_frame, jitter_colours, moving_occluder


def _clip(t=8, size=96):
    """A textured clip (background noise, a smooth gradient) with one person of 17 keypoints in the middle."""
    rng = np.random.default_rng(1)
    frames = np.repeat(rng.integers(0, 255, (1, size, size, 3), dtype=np.uint8), t, 0)
    kp = np.zeros((1, 17, 3))
    kp[0, :, 0] = np.linspace(38, 58, 17)
    kp[0, :, 1] = np.linspace(20, 76, 17)
    kp[0, :, 2] = 2.0
    return frames, [kp.copy() for _ in range(t)]


def test_occluder_slides_across_the_person_and_marks_covered_keypoints():
    hidden_somewhere, seen_somewhere = 0, 0
    for seed in range(10):
        frames, kps = _clip()
        before = frames.copy()
        assert moving_occluder(np.random.default_rng(seed), frames, kps)
        changed = (frames != before).any(-1)  # (T, H, W)
        cols = [np.nonzero(c.any(0))[0] for c in changed]
        moving = [c.mean() for c in cols if len(c)]
        assert len(moving) >= 2 and abs(moving[-1] - moving[0]) > 5  # it moves
        for t in range(8):
            v = kps[t][0, :, 2]
            assert set(np.unique(v)) <= {1.0, 2.0}  # covered keypoints stay labelled (v = 1)
            px, py = kps[t][0, :, 0].round().astype(int), kps[t][0, :, 1].round().astype(int)
            # v = 1 exactly where the occluder changed the pixel under the keypoint (a pasted
            # pixel could equal the old one, so only "covered → changed or equal texture" is checked one way)
            assert (changed[t, py, px] <= (v == 1)).all()
            hidden_somewhere += (v == 1).sum()
            seen_somewhere += t > 0 and (v == 2).all()
    assert hidden_somewhere > 0 and seen_somewhere > 0


def test_occluder_is_deterministic_and_skips_empty_frames():
    a, ka = _clip()
    b, kb = _clip()
    moving_occluder(np.random.default_rng(3), a, ka)
    moving_occluder(np.random.default_rng(3), b, kb)
    assert np.array_equal(a, b) and all(np.array_equal(x, y) for x, y in zip(ka, kb))
    frames, _ = _clip()
    before = frames.copy()
    assert not moving_occluder(np.random.default_rng(0), frames, [np.zeros((0, 17, 3))] * 8)
    assert np.array_equal(frames, before)


def test_blur_changes_one_frame_after_the_first():
    frames, _ = _clip(t=5)
    frames = frames.copy()
    before = frames.copy()
    i = blur_one_frame(np.random.default_rng(0), frames)
    assert 1 <= i < 5
    changed = [not np.array_equal(frames[t], before[t]) for t in range(5)]
    assert changed == [t == i for t in range(5)]
    # blurred: less high-frequency energy
    assert np.abs(np.diff(frames[i].astype(float), axis=1)).mean() < 0.6 * np.abs(np.diff(before[i].astype(float), axis=1)).mean()


def test_jitter_colours_changes_the_whole_clip_alike():
    rng = np.random.default_rng(5)
    greys = 0
    for seed in range(20):
        frames = rng.integers(60, 190, (3, 24, 32, 3), dtype=np.uint8)  # mid-range: no clipping
        frames[1] = frames[0]
        before = frames.copy()
        luma = lambda f: (f.astype(float) @ [0.114, 0.587, 0.299]).mean()  # noqa: E731
        saturation, contrast, brightness = jitter_colours(np.random.default_rng(seed), frames)
        assert frames.dtype == np.uint8 and np.array_equal(frames[0], frames[1])  # one draw for the clip
        assert 0.6 <= contrast <= 1.4 and -32 <= brightness <= 32
        assert abs(luma(frames) - (luma(before) + brightness)) < 1.0  # contrast keeps the mean; brightness moves it
        spread = lambda f: (f.astype(float) @ [0.114, 0.587, 0.299]).std()  # noqa: E731
        assert abs(spread(frames) - contrast * spread(before)) < 1.0
        if saturation == 0:
            greys += 1
            assert np.abs(frames.astype(int) - frames[..., :1]).max() <= 1  # B = G = R
        else:
            assert 0.6 <= saturation <= 1.4
    assert 0 < greys < 20
