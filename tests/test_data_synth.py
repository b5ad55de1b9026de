"""The synthetic clip generator: determinism, projection/visibility truth, split yaws, the annotation
file through pycocotools, the mp4 output and the `data` commands. Needs the `synth` extra (anny)."""
import json

import numpy as np
import pytest

pytest.importorskip("anny", reason="the synth extra is not installed (make install-train)")

from posevid.data import appearance as A  # noqa: E402
from posevid.data import body as B  # noqa: E402
from posevid.data import motion as M  # noqa: E402
from posevid.data import synth as S  # noqa: E402


def _pool():
    return A.BackgroundPool([])  # procedural clutter: tests do not depend on installed photos


@pytest.fixture(scope="module", params=[{}, {"prop_prob": 1.0}, {"garment_prob": 1.0, "long_hair_prob": 1.0}],
                ids=["plain", "props", "garments-hair"])
def clip(request):
    """One small training clip with the renderer's buffers, chosen to have several people; plain,
    with props standing around, and with everyone in a skirt, dress or coat and long hair where they can."""
    config = S.SynthConfig(num_clips=1, num_frames=6, width=128, height=96, seed=5, max_people=4, occluder_prob=1.0,
                           **request.param)
    buffers = []
    frames, anns, _ = S.compose_clip(config, 0, _pool(), buffers=buffers)
    return config, frames, anns, buffers


def test_visible_keypoints_lie_on_their_person_and_occluded_ones_behind_another_surface(clip):
    config, frames, anns, buffers = clip
    counts = {0: 0, 1: 0, 2: 0}
    for t, frame_anns in enumerate(anns):
        ids, depth = buffers[t]["ids"], buffers[t]["depth"]
        for a in frame_anns:
            kp = np.array(a["keypoints"]).reshape(17, 3)
            pid = a["track_id"]
            for j in range(17):
                v = int(kp[j, 2])
                counts[v] += 1
                if v == 0:
                    assert kp[j, 0] == 0 and kp[j, 1] == 0
                    continue
                c, r = int(round(kp[j, 0])), int(round(kp[j, 1]))
                assert 0 <= c < config.width and 0 <= r < config.height
                kd = buffers[t]["keypoint_depth"][pid, j]
                tol = buffers[t]["keypoint_tolerance"][pid, j]
                assert 0.03 <= tol < 0.3
                if v == 2:  # nothing in front, and on the person's rendered mask (within a pixel)
                    assert depth[r, c] >= kd - tol
                    assert (ids[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2] == pid).any()
                else:  # behind another surface: other people, objects, or its own body well in front
                    assert depth[r, c] < kd - tol
            mask = ids == pid
            assert a["area"] == mask.sum()
    assert counts[2] > 0 and counts[1] > 0


@pytest.mark.parametrize("extra", ["prop_prob", "garment_prob", "long_hair_prob"])
def test_props_and_garments_change_pixels_and_occlusion_but_never_where_keypoints_are(extra):
    base = dict(num_clips=1, num_frames=4, width=128, height=96, seed=5, max_people=4, occluder_prob=0.0)
    frames0, anns0, _ = S.compose_clip(S.SynthConfig(**base), 0, _pool())
    buffers = []
    frames1, anns1, _ = S.compose_clip(S.SynthConfig(**base, **{extra: 1.0}), 0, _pool(), buffers=buffers)
    if extra == "prop_prob":
        assert any((b["ids"] >= S._PROP_ID0).any() for b in buffers)  # props were drawn
    else:  # garments and hair belong to their person: masks (and areas) grow
        area0 = sum(a["area"] for frame in anns0 for a in frame)
        grow = 1.05 if extra == "garment_prob" else 1.0  # long hair adds little next to a skirt
        assert sum(a["area"] for frame in anns1 for a in frame) > grow * area0
    assert any(not np.array_equal(f0, f1) for f0, f1 in zip(frames0, frames1))
    for a0s, a1s in zip(anns0, anns1):
        assert [a["track_id"] for a in a0s] == [a["track_id"] for a in a1s]
        for a0, a1 in zip(a0s, a1s):
            k0, k1 = np.reshape(a0["keypoints"], (17, 3)), np.reshape(a1["keypoints"], (17, 3))
            on = k1[:, 2] > 0
            assert np.array_equal(k0[on, :2], k1[on, :2])
            assert (k1[:, 2] <= k0[:, 2]).all()  # a prop can only hide a keypoint, never reveal one


def test_props_cast_shadows_on_the_ground(monkeypatch):
    from posevid.data import props as P

    config = S.SynthConfig(num_clips=1, num_frames=1, width=128, height=128, seed=77, prop_prob=1.0, occluder_prob=0.0)
    buffers = []
    with_shadow, _, _ = S.compose_clip(config, 3, _pool(), buffers=buffers)
    monkeypatch.setattr(P.Prop, "surface_points", lambda self: np.zeros((0, 3)))
    without, _, _ = S.compose_clip(config, 3, _pool())
    darker = without[0].astype(int).sum(2) - with_shadow[0].astype(int).sum(2)
    background = buffers[0]["ids"] < 0
    assert (darker[background] > 15).sum() > 20 and (darker[background] < -15).sum() == 0


def test_a_prop_reaching_behind_the_camera_casts_a_bounded_shadow(monkeypatch):
    from posevid.data import props as P
    from posevid.data.render import look_at, vertex_normals

    # A block from 1e-6 m to 2 m in front of the camera: its near corners project to millions of
    # pixels, which once made the shadow's blur kernel tens of GB.
    v, f = P.box(4.0, 2.0, 1.0)
    v[:, 1] += 1.0 + 1e-6
    look = A.Outfit(np.ones((len(v), 3), np.float32), np.zeros(len(v), np.float32), np.zeros(len(v), np.float32))
    block = P.Prop(v.astype(np.float32), f, vertex_normals(v, f), look)
    cam = look_at(np.array([0.0, 0.0, 1.0]), np.array([0.0, 5.0, 1.0]), 60.0, 64, 48)
    sizes = []
    shadow = A.ground_shadow
    monkeypatch.setattr(A, "ground_shadow", lambda xy, ok, w, h, size: sizes.append(size) or shadow(xy, ok, w, h, 1.0))
    img = np.full((48, 64, 3), 200.0, np.float32)
    light = A.Lighting(np.array([0.3, 0.3, -1.0]) / np.linalg.norm([0.3, 0.3, -1.0]), 0.8, 0.5, np.ones(3))
    S._cast_shadows(img, [(block.surface_points(), block.verts)], cam, light)
    assert sizes and max(sizes) <= 0.4 * 48  # a tenth of at most four frame heights


@pytest.mark.parametrize("name", ["prop_prob", "garment_prob", "long_hair_prob"])
def test_prop_and_garment_probabilities_are_validated(name):
    with pytest.raises(ValueError, match=name):
        S.SynthConfig(**{name: 1.5})


def test_frames_and_annotation_fields(clip):
    config, frames, anns, _ = clip
    assert len(frames) == config.num_frames and frames[0].shape == (96, 128, 3) and frames[0].dtype == np.uint8
    a = anns[0][0]
    assert set(a) >= {"track_id", "keypoints", "num_keypoints", "bbox", "area", "segmentation", "iscrowd", "yaw"}
    assert len(a["keypoints"]) == 51


def test_same_seed_same_annotations_and_other_seed_differs(tmp_path):
    cfg = S.SynthConfig(num_clips=2, num_frames=3, width=64, height=64, seed=11, write_video=False)
    a = S.generate(cfg, str(tmp_path / "a"))
    b = S.generate(cfg, str(tmp_path / "b"))
    assert (tmp_path / "a" / "annotations.json").read_bytes() == (tmp_path / "b" / "annotations.json").read_bytes()
    assert S.annotation_checksum(a) == S.annotation_checksum(b)
    c = S.generate(S.SynthConfig(num_clips=2, num_frames=3, width=64, height=64, seed=12, write_video=False),
                   str(tmp_path / "c"))
    assert S.annotation_checksum(c) != S.annotation_checksum(a)


@pytest.mark.parametrize("split", ["front", "side"])
def test_split_yaw_ranges(split):
    lo, hi = S.SPLIT_YAW[split]
    cfg = S.SynthConfig(split=split, num_clips=1, num_frames=8, width=64, height=64, seed=3, max_people=3)
    for index in range(2):
        _, anns, _ = S.compose_clip(cfg, index, _pool())
        yaws = np.abs([a["yaw"] for f in anns for a in f])
        assert len(yaws) and ((yaws >= lo - 0.05) & (yaws <= hi + 0.05)).all()


def test_facing_and_left_right_of_the_rest_body():
    body = B.build_body(B.random_phenotype(np.random.default_rng(0)))
    G = np.tile(np.eye(3), (body.num_joints, 1, 1))
    verts, kps = B.skin(body, G, body.joint_rest[0])
    np.testing.assert_allclose(verts, body.rest_vertices, atol=1e-5)  # identity pose = rest pose
    assert np.rad2deg(S.facing_angles(kps[None]))[0] == pytest.approx(-90.0, abs=5.0)  # faces -y
    assert kps[5, 0] > 0 and kps[11, 0] > 0 and kps[6, 0] < 0  # left side is +x
    assert kps[0, 2] > kps[5, 2] > kps[11, 2] > kps[13, 2] > kps[15, 2]  # nose above shoulders ... ankles


def test_mirrored_motion_swaps_sides():
    files = M.list_bvh_files()
    if not files:
        pytest.skip("no BVH files (assimp-testmodels) installed")
    clip = M.resample(M.read_bvh(files[0]), 1.0, 2, 30.0)
    body = B.build_body(B.random_phenotype(np.random.default_rng(1)))
    _, k1 = B.skin(body, *[x[1] for x in M.retarget(body, clip)])
    _, k2 = B.skin(body, *[x[1] for x in M.retarget(body, M.mirror(clip))])
    flip = list(__import__("posevid.skeleton", fromlist=["COCO"]).COCO.flip_index)
    mirrored = k2[flip] * [-1, 1, 1]
    np.testing.assert_allclose(mirrored - mirrored.mean(0), k1 - k1.mean(0), atol=0.03)


def test_annotation_file_round_trips_through_pycocotools(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    cfg = S.SynthConfig(num_clips=2, num_frames=4, width=128, height=96, seed=2)
    S.generate(cfg, str(tmp_path))
    path = str(tmp_path / "annotations.json")
    gt = COCO(path)
    assert len(gt.getImgIds()) == 8 and gt.loadCats(1)[0]["keypoints"][0] == "nose"
    data = json.load(open(path))
    assert {"videos", "images", "annotations"} <= set(data)
    assert all({"video_id", "frame_id"} <= set(i) for i in data["images"])
    assert all("track_id" in a for a in data["annotations"])
    dets = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
            for a in data["annotations"] if a["num_keypoints"] > 0]
    ev = COCOeval(gt, gt.loadRes(dets), "keypoints")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)  # ground truth as predictions: perfect AP
    # the written videos decode to the annotated frames
    from posevid.data.readers import load_frame, read_annotations

    videos = read_annotations(path)
    assert len(videos) == 2 and len(videos[0].frames) == 4
    assert load_frame(str(tmp_path), videos[1].frames[3]).shape == (96, 128, 3)


def test_synth_and_show_commands(tmp_path):
    from typer.testing import CliRunner

    from posevid.data.cli import app

    out = tmp_path / "ds"
    args = ["synth", str(out), "--clips", "1", "--frames", "3", "--size", "64x48", "--workers", "1",
            "--props", "1", "--garments", "1", "--long-hair", "1", "--no-photos", "--procedural", "1"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert (out / "videos" / "000000.mp4").exists()
    info = json.loads((out / "annotations.json").read_text())["info"]
    assert info["config"]["prop_prob"] == 1.0 and info["config"]["procedural_fraction"] == 1.0
    assert info["config"]["garment_prob"] == 1.0 and info["config"]["long_hair_prob"] == 1.0
    assert info["num_backgrounds"] == 0  # --no-photos
    r = CliRunner().invoke(app, ["show", str(out), "--out", str(tmp_path / "sheet.png"), "--frames", "2"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "sheet.png").stat().st_size > 1000
    r = CliRunner().invoke(app, ["synth", str(out), "--clips", "1"])
    assert r.exit_code == 1 and "already holds a dataset" in r.output
    r = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), "--no-photos", "--backgrounds", str(tmp_path)])
    assert r.exit_code == 1 and "exclude each other" in r.output
    r = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), "--props", "2"])
    assert r.exit_code == 1 and "--props must be within 0..1" in r.output
    r = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), "--garments", "-0.1"])
    assert r.exit_code == 1 and "--garments must be within 0..1" in r.output
    r = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), "--long-hair", "3"])
    assert r.exit_code == 1 and "--long-hair must be within 0..1" in r.output
    r = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), "--size", "65x48"])
    assert r.exit_code == 1 and "even" in r.output


def test_deepmimic_walk_is_upright_left_on_the_left_and_moves():
    files = [f for f in M.list_deepmimic_files() if f.endswith("humanoid3d_walk.txt")]
    if not files:
        pytest.skip("pybullet_data not installed")
    clip = M.read_deepmimic(files[0])
    assert clip.fps == 30.0 and clip.num_frames >= 8 * 30  # looped to 8 s
    body = B.build_body(B.random_phenotype(np.random.default_rng(2)))
    G, root = M.retarget(body, M.resample(clip, 0.0, 60, 30.0))
    kps = np.stack([B.skin(body, G[t], root[t])[1] for t in range(0, 60, 10)])
    assert (kps[:, 0, 2] > kps[:, 11, 2] + 0.3).all() and (kps[:, 11, 2] > kps[:, 15, 2] + 0.5).all()
    heading = np.rad2deg(S.facing_angles(kps))
    lr = kps[:, 5] - kps[:, 6]  # left shoulder minus right shoulder
    facing = np.stack([np.cos(np.deg2rad(heading)), np.sin(np.deg2rad(heading)), 0 * heading], 1)
    assert (np.cross(facing, lr)[:, 2] > 0).all()  # left is to the left of the facing direction
    walked = np.linalg.norm(root[-1, :2] - root[0, :2])
    assert walked > 0.5  # about 1.3 m/s for 2 s; at least half a metre


def test_annotations_do_not_depend_on_installed_photos_or_objects(tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    photo = (rng.uniform(0, 255, (300, 400, 3))).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "photo.jpg"), photo)
    obj = np.concatenate([rng.uniform(0, 255, (80, 60, 3)), np.full((80, 60, 1), 255.0)], 2).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "object.png"), obj)
    for split in ("front", "train"):
        cfg = S.SynthConfig(split=split, num_clips=1, num_frames=3, width=64, height=64, seed=8, occluder_prob=1.0)
        _, a1, _ = S.compose_clip(cfg, 0, A.BackgroundPool([]))
        _, a2, _ = S.compose_clip(cfg, 0, A.BackgroundPool([str(tmp_path / "photo.jpg")]))
        assert a1 == a2
    assert A.load_object(str(tmp_path / "object.png")) is not None
    flat = obj.copy()
    flat[..., :3] = 90  # a drawing, not a photo
    cv2.imwrite(str(tmp_path / "flat.png"), flat)
    assert A.load_object(str(tmp_path / "flat.png")) is None


def test_photos_added_after_the_pinned_splits_go_to_training_only():
    def listed(path):
        with open(path) as f:
            return [ln.split("|", 1)[-1].strip() for ln in f if ln.strip() and not ln.startswith("#")]

    pinned, later = listed(A.ALLOW_LIST), listed(A.TRAIN_ONLY_LIST)
    assert not set(pinned) & set(later) and len(set(later)) == len(later)
    front, train = set(S.background_paths("front")), set(S.background_paths("train"))
    assert not front & set(later) and not front & train
    assert set(A.curated_backgrounds(A.TRAIN_ONLY_LIST)) <= train  # those installed here


def test_eval_splits_photos_are_the_pinned_ones_and_others_are_refused(tmp_path, monkeypatch):
    from posevid.data import splits
    from posevid.errors import PosevidError

    photos = S.background_paths("front")
    if not photos:
        pytest.skip("the Debian background photos are not installed (make install-train)")
    if not (M.list_bvh_files() and M.list_deepmimic_files()):
        pytest.skip("the motion capture is not installed (make install-train)")
    assert (len(photos), splits.photos_checksum(photos)) == splits.EXPECTED_PHOTOS
    monkeypatch.setattr(S, "background_paths", lambda split: photos[:-1])  # one photo missing
    with pytest.raises(PosevidError, match="pinned background photos"):
        splits.build_split("front", tmp_path / "front")
    assert not list(tmp_path.iterdir())  # refused before anything was written


# How close a rebuild must come to the committed splits. Not bit for bit: the issue that made the splits
# committed data was a rebuild on another machine (same numpy, anny, torch) whose annotation checksum
# differed, i.e. floating-point results of the body model and the renderer differ in the last bits from
# one machine's numeric libraries to another's. Keypoints are stored rounded to 0.01 px, so such noise
# shows as a few hundredths of a pixel; 1 px (a quarter of the smallest COCO keypoint sigma × a 90-px
# person's scale, far below what changes an OKS match) still catches any change to what the generator
# draws (a motion, a body, a camera or a seed stream moved shifts keypoints by many pixels). Visibility
# is a depth test with a tolerance, so a keypoint right at it may flip with the same noise: up to 1 % of
# the labelled keypoints may differ in visibility (2 vs 1), none may appear or vanish (v = 0 vs > 0) but
# at the frame border. Boxes and mask areas come from the rasterised mask: within 2 px and 3 %.
KEYPOINT_TOL_PX, VIS_FLIP_FRACTION, BOX_TOL_PX, AREA_TOL = 1.0, 0.01, 2.0, 0.03
CLIPS_CHECKED = 2  # the first clips of each split (one clip: ~10 s on a CPU core)


@pytest.mark.parametrize("name", ["front", "side"])
def test_generator_reproduces_the_committed_split_annotations(name):
    import dataclasses

    from posevid.data import splits

    if not (M.list_bvh_files() and M.list_deepmimic_files()):
        pytest.skip("the motion capture (Debian assimp-testmodels, pybullet's DeepMimic clips) is not "
                    "installed (make install-train): the splits' motions come from it")
    committed = json.loads((splits.split_dir(name) / "annotations.json").read_text())
    config = splits.eval_split_config(name)
    assert committed["info"]["config"] == {k: list(v) if isinstance(v, tuple) else v
                                           for k, v in dataclasses.asdict(config).items()}
    image_of = {im["id"]: im for im in committed["images"]}
    flips = labelled = 0
    for clip in range(CLIPS_CHECKED):
        # Annotations do not depend on the photos (test above), so no Debian photo is needed here.
        _, per_frame, _ = S.compose_clip(config, clip, A.BackgroundPool([]))
        want = {}
        for a in committed["annotations"]:
            im = image_of[a["image_id"]]
            if im["video_id"] == clip + 1:
                want.setdefault(im["frame_id"], {})[a["track_id"]] = a
        for t, anns in enumerate(per_frame):
            got = {a["track_id"]: a for a in anns if a["area"] > 0 or a["num_keypoints"] > 0}  # as assemble()
            assert set(got) == set(want.get(t, {})), f"{name} clip {clip} frame {t}: other track ids"
            for tid, g in got.items():
                w = want[t][tid]
                kg, kw = np.reshape(g["keypoints"], (17, 3)), np.reshape(w["keypoints"], (17, 3))
                both = (kg[:, 2] > 0) & (kw[:, 2] > 0)
                border = ((kw[:, :2] < 1) | (kw[:, :2] > [config.width - 2, config.height - 2])).any(1)
                assert ((kg[:, 2] > 0) == (kw[:, 2] > 0))[~border].all(), f"{name} clip {clip} frame {t}"
                assert np.abs(kg[both, :2] - kw[both, :2]).max(initial=0) <= KEYPOINT_TOL_PX, \
                    f"{name} clip {clip} frame {t} track {tid}: keypoints moved"
                flips += int((kg[both, 2] != kw[both, 2]).sum())
                labelled += int(both.sum())
                np.testing.assert_allclose(g["bbox"], w["bbox"], atol=BOX_TOL_PX)
                assert abs(g["area"] - w["area"]) <= AREA_TOL * max(w["area"], 1.0)
                assert abs(g["yaw"] - w["yaw"]) <= 1.0
    assert labelled > 100 and flips <= VIS_FLIP_FRACTION * labelled
