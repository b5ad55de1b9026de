"""The stateful predictor: clips equal frame-by-frame calls, scene cuts and new sizes reset the GRU."""
import cv2
import numpy as np
import pytest
import torch

from posevid.config import model_config
from posevid.model import DEKR
from posevid.model.inference import native_bf16, resolve_precision
from posevid.predict import PredictConfig, Predictor


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = DEKR(model_config("lite"))
    with torch.no_grad():
        m.head_heatmap[1].bias.fill_(0.5)
        torch.nn.init.normal_(m.temporal.out.weight, std=0.1)
    return m.eval()


def frames(seed, n, size=(96, 128)):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)  # a blocky scene: scenes differ visibly
    base = cv2.resize(coarse, size[::-1], interpolation=cv2.INTER_NEAREST)
    base = np.clip(base + rng.integers(0, 40, base.shape), 0, 255).astype(np.uint8)
    # a slowly moving scene: small changes between frames, no cut
    return [np.roll(base, 2 * i, axis=1) for i in range(n)]


def kp(result):
    return result.poses.keypoints


def test_clip_equals_frame_by_frame(model):
    clip = frames(0, 5)
    a = Predictor(model, PredictConfig(threshold=0)).predict(clip)
    p = Predictor(model, PredictConfig(threshold=0))
    b = [p(f) for f in clip]
    assert len(a) == 5
    for x, y in zip(a, b):
        assert len(x.poses) > 0
        assert np.allclose(kp(x), kp(y), atol=1e-3) and x.nms_score == pytest.approx(y.nms_score, abs=1e-5)


def test_state_carries_and_scene_cut_resets(model):
    first, second = frames(1, 4), frames(2, 3)
    p = Predictor(model, PredictConfig(threshold=0))
    results = p.predict(first + second)
    assert [r.scene_cut for r in results] == [False] * 4 + [True, False, False]
    fresh = Predictor(model, PredictConfig(threshold=0)).predict(second)
    for x, y in zip(results[4:], fresh):  # after the cut: as if the video started there
        assert np.allclose(kp(x), kp(y), atol=1e-3)
    # without a cut the state matters: the same frame after context differs from a fresh start
    p2 = Predictor(model, PredictConfig(threshold=0, scene_cut=1.1))
    carried = p2.predict(first + second)
    assert not any(r.scene_cut for r in carried)
    assert not np.allclose(kp(carried[4])[:3], kp(fresh[0])[:3], atol=1e-3)


def test_new_frame_size_starts_fresh_and_maps_to_source_pixels(model):
    p = Predictor(model, PredictConfig(threshold=0))
    p.predict(frames(3, 2))
    big = frames(4, 1, size=(240, 320))[0]
    r = p(big)
    fresh = Predictor(model, PredictConfig(threshold=0))(big)
    assert np.allclose(kp(r), kp(fresh), atol=1e-3)
    xy = kp(r)[..., :2]
    assert xy[..., 0].max() < 320 * 1.5 and xy[..., 1].max() < 240 * 1.5  # source pixels, not input pixels
    assert xy[..., 0].max() > 128  # beyond the 128-pixel network input: mapped back


def test_threshold_filters_by_pose_score(model):
    img = frames(5, 1)[0]
    everything = Predictor(model, PredictConfig(threshold=0))(img).poses
    cut = float(np.median(everything.scores))
    some = Predictor(model, PredictConfig(threshold=cut))(img).poses
    assert 0 < len(some) < len(everything) and (some.scores >= cut).all()


def test_flip_test_runs_the_mirror_as_a_second_stream(model):
    clip = frames(6, 3)
    flip = Predictor(model, PredictConfig(threshold=0, flip=True))
    a = flip.predict(clip[:2]) + flip.predict(clip[2:])  # state carried across calls for both streams
    b = Predictor(model, PredictConfig(threshold=0, flip=True)).predict(clip)
    for x, y in zip(a, b):
        assert np.allclose(kp(x), kp(y), atol=1e-3)
    plain = Predictor(model, PredictConfig(threshold=0)).predict(clip)
    assert not np.allclose(kp(a[2])[:3], kp(plain[2])[:3], atol=1e-3)  # the mirror pass changes the result


def test_scales_run_one_pass_each_with_its_own_state_and_merge_them(model):
    from posevid.decode import merge_scales
    from posevid.errors import PosevidError

    clip = frames(7, 3)  # 96 × 128: input 128 → zoom 4/3, input 64 → 2/3
    full = Predictor(model, PredictConfig(threshold=0, input_size=128)).predict(clip)
    half = Predictor(model, PredictConfig(threshold=0, input_size=64)).predict(clip)
    sizes = [np.hypot(*np.ptp(kp(r)[:, :, :2], 1).T) * 4 / 3 for r in full]  # keypoint-box diagonals, input px
    ranked = np.sort(np.concatenate(sizes))
    split = float(ranked[len(ranked) // 2 - 1: len(ranked) // 2 + 1].mean())  # both passes keep some people
    both = Predictor(model, PredictConfig(threshold=0, input_size=128, scales=(1.0, 0.5), scale_max_size=split))
    got = both.predict(clip[:1]) + both.predict(clip[1:])  # each scale's GRU state carries across calls
    for t in range(3):
        want = merge_scales([full[t].poses, half[t].poses], [4 / 3, 2 / 3], split)
        assert np.allclose(kp(got[t]), want.keypoints, atol=1e-3)
        assert np.allclose(got[t].poses.scores, want.scores)
    from_half = [np.isin(got[t].poses.scores, half[t].poses.scores).any() for t in range(3)]
    from_full = [np.isin(got[t].poses.scores, full[t].poses.scores).any() for t in range(3)]
    assert any(from_half) and any(from_full)
    with pytest.raises(PosevidError, match="must decrease"):
        Predictor(model, PredictConfig(input_size=128, scales=(1.0, 0.999)))  # both round to 128


def test_threshold_and_pose_score_default_to_the_weights_settings(model):
    from dataclasses import replace

    assert (Predictor(model).threshold, Predictor(model).pose_score) == (0.2, "center-keypoints")
    own = DEKR(replace(model.cfg, threshold=0.6, pose_score="center"))
    own.load_state_dict(model.state_dict())
    own.eval()
    assert (Predictor(own).threshold, Predictor(own).pose_score) == (0.6, "center")
    given = Predictor(own, PredictConfig(threshold=0.1, pose_score="center-keypoints"))
    assert (given.threshold, given.pose_score) == (0.1, "center-keypoints")
    img = frames(8, 1)[0]
    dekr = Predictor(model, PredictConfig(threshold=0))(img).poses
    center = Predictor(own, PredictConfig(threshold=0))(img).poses
    assert len(dekr) and np.allclose(center.scores, center.center_scores)
    assert np.allclose(dekr.scores, dekr.center_scores * dekr.keypoints[..., 2].mean(1))
    kept = Predictor(own)(img).poses  # the weights' threshold applies to their own score
    assert (kept.scores >= 0.6).all() and len(kept) == (center.scores >= 0.6).sum()
    with pytest.raises(ValueError, match="pose_score"):
        Predictor(model, PredictConfig(pose_score="mean"))


def test_snap_radius_defaults_to_the_weights_setting(model):
    from dataclasses import replace

    snapping = DEKR(replace(model.cfg, snap_radius=0.5))
    snapping.load_state_dict(model.state_dict())
    assert Predictor(model).snap_radius == 0.0  # DEKR's decoding unless the weights say otherwise
    assert Predictor(snapping).snap_radius == 0.5
    assert Predictor(snapping, PredictConfig(snap_radius=0.0)).snap_radius == 0.0
    img = frames(7, 1)[0]
    plain = kp(Predictor(model, PredictConfig(threshold=0))(img))
    snapped = kp(Predictor(snapping.eval(), PredictConfig(threshold=0))(img))
    assert plain.shape == snapped.shape and not np.allclose(plain, snapped)


def test_regressing_only_at_kept_centres_gives_the_dense_decoding(model):
    """The predictor computes offsets at local-NMS centres only; decoding the dense maps gives the same poses."""
    import copy

    from posevid.decode import decode, pose_map
    from posevid.frames import STRIDE, Resize, to_tensor

    model = copy.deepcopy(model)
    torch.manual_seed(3)
    with torch.no_grad():
        for final in model.offset_final_layer:
            final.weight.normal_(0, 0.5)  # poses of varied shapes, not all on the centre
    image = frames(4, 1)[0]
    got = Predictor(model, PredictConfig(threshold=0)).predict([image])[0].poses
    plan = Resize.plan(image.shape[1], image.shape[0], model.cfg.input_size)
    with torch.no_grad():
        out = model(to_tensor(image, plan))
    want = decode(out.heatmaps[0], pose_map(out.offsets[0]))
    want.keypoints[..., :2] = plan.to_source(want.keypoints[..., :2] * STRIDE)
    assert len(got) == len(want) > 3
    np.testing.assert_allclose(got.keypoints, want.keypoints, atol=1e-3)
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)


def test_auto_precision_is_bf16_only_on_cpus_that_compute_it_natively(tmp_path, monkeypatch, model):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n")
    assert not native_bf16(info)  # AVX-512 without BF16: bfloat16 is emulated there
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert native_bf16(info)
    assert not native_bf16(tmp_path / "missing")  # no /proc/cpuinfo: not Linux, stay exact
    from posevid.model import inference

    cpu = torch.device("cpu")
    for native, auto in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(inference, "native_bf16", lambda: native)
        assert resolve_precision("auto", cpu) == auto
        assert Predictor(model).precision == auto
        assert resolve_precision("auto", torch.device("cuda")) == "fp32"
        assert (resolve_precision("fp32", cpu), resolve_precision("bf16", cpu)) == ("fp32", "bf16")
    with pytest.raises(ValueError, match="'fp16'"):
        resolve_precision("fp16", cpu)


def test_bf16_runs_the_backbone_in_bfloat16_and_the_rest_in_float32(model):
    x = torch.rand(1, 2, 3, 96, 128) * 255
    with torch.no_grad():
        exact = model.run_clip(x)
        fast = model.run_clip(x, bf16=True)
    assert fast.features.dtype == fast.heatmaps.dtype == fast.state.dtype == torch.float32
    assert not torch.equal(fast.features, exact.features)  # it did run in bfloat16
    assert (fast.features - exact.features).norm() / exact.features.norm() < 0.03
    assert (fast.heatmaps - exact.heatmaps).abs().max() < 0.01
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # the caller's autocast (train --amp)
        amp = model.run_clip(x)
    assert amp.features.dtype == amp.heatmaps.dtype == torch.bfloat16  # reaches the backbone and the heads


def test_bf16_finds_the_same_people_as_fp32_with_the_shipped_weights():
    """The default model on frames of the example clip: every person fp32 reports, bf16 reports too (at most
    one either way near the threshold), with keypoints within a pixel (measured: 0.03–0.25 px)."""
    from pathlib import Path

    from posevid.model import load_model
    from posevid.video import probe, read_frames

    model = load_model("small")
    exact, fast = (Predictor(model, PredictConfig(precision=p)) for p in ("fp32", "bf16"))
    video = probe(Path(__file__).resolve().parents[1] / "examples" / "pedestrians.mp4")
    near = unmatched = total = 0
    for frame in read_frames(video, max_frames=40):
        if frame.index % 10:
            continue
        a, b = exact(frame.image).poses.keypoints[..., :2], fast(frame.image).poses.keypoints[..., :2]
        total += len(a)
        unmatched += abs(len(a) - len(b))
        if len(a) and len(b):
            dist = np.linalg.norm(a[:, None] - b[None], axis=-1).mean(-1)  # (A, B) mean keypoint distance
            near += int((dist.min(1) < 1.0).sum())
    assert total >= 10 and unmatched <= 1 and near >= total - 1
