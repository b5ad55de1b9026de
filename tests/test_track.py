import numpy as np
import pytest

from posevid.metrics import pose_area, pose_oks
from posevid.track import KEYPOINT_THRESHOLD, Tracker

# A standing person template, (x, y) offsets of the 17 COCO keypoints for a 1-unit-tall person.
_TEMPLATE = np.array([
    [0.0, 0.00], [-0.03, -0.02], [0.03, -0.02], [-0.06, 0.0], [0.06, 0.0],
    [-0.12, 0.15], [0.12, 0.15], [-0.16, 0.35], [0.16, 0.35], [-0.18, 0.52], [0.18, 0.52],
    [-0.09, 0.55], [0.09, 0.55], [-0.10, 0.78], [0.10, 0.78], [-0.10, 1.0], [0.10, 1.0],
])


def person(cx, top, height, score=0.9):
    kp = np.empty((17, 3))
    kp[:, :2] = _TEMPLATE * height + (cx, top)
    kp[:, 2] = score
    return kp


def frame(*people):
    if not people:
        return np.zeros((0, 17, 3)), np.zeros(0)
    kp = np.stack(people)
    return kp, np.full(len(people), 0.8)


def test_two_people_moving_slowly_keep_their_ids():
    tr = Tracker()
    first = None
    for t in range(60):
        ids = tr.update(*frame(person(100 + 2 * t, 50, 200), person(400 - 1.5 * t, 60, 180)))
        first = ids if first is None else first
        assert ids.tolist() == first.tolist()
    assert sorted(first.tolist()) == [1, 2]


def test_crossing_paths_slowly_keeps_identity():
    tr = Tracker()
    # a near person (tall) and a far person (short, higher in the image) walk past each other
    history = []
    for t in range(100):
        a = person(100 + 3 * t, 80, 220)
        b = person(400 - 3 * t, 40, 140)
        # detection order swaps half way, so order alone cannot explain a correct answer
        if t < 50:
            ids = tr.update(*frame(a, b))
            history.append((ids[0], ids[1]))
        else:
            ids = tr.update(*frame(b, a))
            history.append((ids[1], ids[0]))
    assert len(set(history)) == 1, "an identity switched while crossing"
    assert history[0][0] != history[0][1]


def test_small_fast_walker_keeps_its_id():
    # 60 px tall, 9 px per frame (a pedestrian in 10 fps footage): further than OKS tolerates at this
    # size between two frames (the first step, before the track has a velocity, is matched by position)
    a, b = person(100, 50, 60), person(109, 50, 60)
    assert pose_oks(b[None], a[None], pose_area(a[None], KEYPOINT_THRESHOLD))[0, 0] < Tracker().min_oks
    tr = Tracker()
    ids = {int(tr.update(*frame(person(100 + 9 * t, 50, 60)))[0]) for t in range(30)}
    assert ids == {1}
    # a jump of more than MAX_JUMP of its size, or a size far off, is somebody else
    tr = Tracker()
    tr.update(*frame(a))
    assert tr.update(*frame(person(140, 50, 60))).tolist() == [2]
    tr = Tracker()
    tr.update(*frame(a))
    assert tr.update(*frame(person(100, 30, 100))).tolist() == [2]


def test_velocity_carries_a_track_through_missed_frames():
    tr = Tracker()
    (first,) = tr.update(*frame(person(100, 50, 100)))
    tr.update(*frame(person(104, 50, 100)))
    tr.update(*frame(person(108, 50, 100)))
    for _ in range(3):  # unseen while walking on
        tr.update(*frame())
    assert np.allclose(tr.predicted_poses()[0, :, :2], person(124, 50, 100)[:, :2])
    assert tr.update(*frame(person(124, 50, 100))).tolist() == [first]


def test_disappearing_briefly_keeps_id_and_expires_after_max_age():
    tr = Tracker(max_age=5)
    a = person(200, 50, 200)
    (id_a,) = tr.update(*frame(a))
    for _ in range(5):  # unseen for exactly max_age frames: still alive
        assert tr.update(*frame()).shape == (0,)
    assert tr.update(*frame(a)).tolist() == [id_a]
    for _ in range(6):  # unseen for more than max_age frames: expired, a new id (never reused)
        tr.update(*frame())
    assert tr.live_ids.size == 0
    (id_new,) = tr.update(*frame(a))
    assert id_new != id_a and id_new == id_a + 1


def test_new_person_gets_new_id_and_ids_are_unique():
    tr = Tracker()
    ids1 = tr.update(*frame(person(100, 50, 200)))
    ids2 = tr.update(*frame(person(101, 50, 200), person(400, 50, 200)))
    assert ids2[0] == ids1[0]
    assert ids2[1] not in ids1
    # two detections that both resemble the same track: only one may take its id
    ids3 = tr.update(*frame(person(102, 50, 200), person(103, 51, 200), person(401, 50, 200)))
    assert len(set(ids3.tolist())) == 3
    assert ids3[0] == ids1[0] and ids3[2] == ids2[1]


def test_low_score_keypoints_do_not_count():
    tr = Tracker()
    a = person(100, 50, 200)
    (id_a,) = tr.update(*frame(a))
    # same pose, but only garbage keypoints are "confident"
    b = person(100, 50, 200, score=0.05)
    (id_b,) = tr.update(*frame(b))
    assert id_b != id_a


def test_empty_frames_and_replayed_frames():
    tr = Tracker(max_age=1)
    assert tr.update(np.zeros((0, 17, 3)), np.zeros(0)).dtype.kind == "i"
    a, b, c = person(100, 50, 200), person(400, 50, 200), person(250, 300, 100)
    # frames already written (--resume): ids are known; track 9 then goes unseen for two frames
    tr.observe(np.stack([a, b, c]), np.array([7, 3, 9]))
    tr.observe(np.stack([a, b]), np.array([7, 3]))
    tr.observe(np.stack([a, b]), np.array([7, 3]))
    ids = tr.update(*frame(b, a, c))
    assert ids.tolist() == [3, 7, 10]  # 9 expired; new ids continue after the largest seen
    tr.reset()
    assert tr.update(*frame(a)).tolist() == [11]
    with pytest.raises(ValueError):
        tr.update(np.zeros((2, 17, 3)), np.zeros(3))


def test_scene_cut_forgets_the_tracks():
    a = person(100, 50, 200)
    tr = Tracker()
    assert tr.update(*frame(a)).tolist() == [1]
    assert tr.update(*frame(a), scene_cut=True).tolist() == [2]  # the same place after a cut: somebody new
    tr.observe(a[None], np.array([7]), scene_cut=True)  # --resume replays a cut the same way
    assert tr.live_ids.tolist() == [7]
