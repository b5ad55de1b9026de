"""The network: official structure and names, adaptive convolution, grouped branches, ConvGRU, checkpoints."""
import gzip
import json
from pathlib import Path

import pytest
import torch

from posevid.config import MODELS, model_config
from posevid.errors import PosevidError
from posevid.model import DEKR, build_model, load_model, save_checkpoint
from posevid.model.checkpoint import infer_official_config
from posevid.model.heads import AdaptBlock, deform_conv3x3, offsets_grouped
from posevid.model.hrnet import HighResolutionModule

# The official DEKR state_dict manifests (name, shape, dtype, parameter or buffer of every entry), gzipped
# copies of the developers' shared/reference files, so the tests need nothing outside the repository.
REFERENCE = Path(__file__).resolve().parent / "data"


def read_manifest(name: str) -> dict:
    return json.loads(gzip.decompress((REFERENCE / f"{name}.gz").read_bytes()))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_named_model_runs(name):
    torch.manual_seed(0)
    model = build_model(model_config(name)).eval()
    torch.nn.init.normal_(model.temporal.out.weight, std=0.1)  # a trained GRU (an identity one is skipped)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 96) * 255)
    k = model.cfg.num_keypoints
    assert out.heatmaps.shape == (1, k + 1, 16, 24)
    assert out.offsets.shape == (1, 2 * k, 16, 24)
    assert out.state.shape == (1, model.cfg.temporal_channels, 16, 24)
    assert torch.isfinite(out.offsets).all()


@pytest.mark.parametrize("name,manifest", [("hrnet_w32", "dekr_w32_coco_state_dict_manifest.json"),
                                           ("hrnet_w48", "dekr_w48_coco_state_dict_manifest.json")])
def test_state_dict_matches_official_manifest(name, manifest):
    ref = read_manifest(manifest)
    model = DEKR(model_config(name))
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith("temporal.")}
    assert list(sd) == [e["name"] for e in ref["entries"]]  # same names, same order
    params = dict(model.named_parameters())
    for e in ref["entries"]:
        t = sd[e["name"]]
        assert list(t.shape) == e["shape"], e["name"]
        assert str(t.dtype).removeprefix("torch.") == e["dtype"], e["name"]
        assert (e["name"] in params) == (e["kind"] == "parameter"), e["name"]
    n = sum(p.numel() for k, p in params.items() if not k.startswith("temporal."))
    assert n == ref["num_parameters"]


def test_fusion_shapes_and_mixing():
    torch.manual_seed(0)
    m = HighResolutionModule((8, 16, 32), (1, 1, 1), (8, 16, 32)).eval()
    xs = [torch.randn(1, 8, 32, 32), torch.randn(1, 16, 16, 16), torch.randn(1, 32, 8, 8)]
    ys = m(xs)
    assert [tuple(y.shape) for y in ys] == [(1, 8, 32, 32), (1, 16, 16, 16), (1, 32, 8, 8)]
    # every output depends on every input: the lowest branch's change reaches the highest output
    xs2 = [xs[0], xs[1], xs[2] + 1.0]
    assert not torch.allclose(m(xs2)[0], ys[0])


def naive_deform_conv(x, offset, weight):
    """torchvision.ops.deform_conv2d semantics, one sample at a time (stride 1, pad 1, 3×3)."""
    n, c, h, w = x.shape
    out = torch.zeros(n, weight.shape[0], h, w, dtype=torch.float64)

    def at(b, ch, yy, xx):
        return float(x[b, ch, yy, xx]) if 0 <= yy < h and 0 <= xx < w else 0.0

    for b in range(n):
        for i in range(h):
            for j in range(w):
                for k in range(9):
                    ky, kx = divmod(k, 3)
                    py = i + ky - 1 + float(offset[b, 2 * k, i, j])
                    px = j + kx - 1 + float(offset[b, 2 * k + 1, i, j])
                    if py <= -1 or py >= h or px <= -1 or px >= w:
                        continue
                    y0, x0 = int(torch.floor(torch.tensor(py))), int(torch.floor(torch.tensor(px)))
                    ly, lx = py - y0, px - x0
                    for ch in range(c):
                        v = ((1 - ly) * (1 - lx) * at(b, ch, y0, x0) + (1 - ly) * lx * at(b, ch, y0, x0 + 1)
                             + ly * (1 - lx) * at(b, ch, y0 + 1, x0) + ly * lx * at(b, ch, y0 + 1, x0 + 1))
                        out[b, :, i, j] += weight[:, ch, ky, kx].double() * v
    return out


def test_deform_conv_matches_direct_loop():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 6)
    offset = torch.randn(2, 18, 5, 6) * 1.5  # pushes some samples outside the image
    weight = torch.randn(4, 3, 3, 3)
    got = deform_conv3x3(x, offset, weight)
    assert torch.allclose(got.double(), naive_deform_conv(x, offset, weight), atol=1e-4)


def test_zero_offsets_equal_plain_convolution():
    torch.manual_seed(0)
    x, weight = torch.randn(1, 5, 7, 9), torch.randn(6, 5, 3, 3)
    got = deform_conv3x3(x, torch.zeros(1, 18, 7, 9), weight)
    assert torch.allclose(got, torch.nn.functional.conv2d(x, weight, padding=1), atol=1e-5)


def test_adaptive_offsets_follow_affine_grid():
    torch.manual_seed(0)
    block = AdaptBlock(4, 4)
    x = torch.randn(1, 4, 3, 3)
    off = block.offsets(x)
    a = block.transform_matrix_conv(x)[0, :, 1, 1].view(2, 2)
    t = block.translation_conv(x)[0, :, 1, 1]
    g = block.regular_matrix
    expected = (a @ g - g + t[:, None]).T.reshape(18)  # (dy, dx) per kernel point
    assert torch.allclose(off[0, :, 1, 1], expected, atol=1e-6)


@pytest.mark.parametrize("train", [False, True])
def test_grouped_branches_equal_separate_branches(train):
    torch.manual_seed(0)
    model = DEKR(model_config("lite"))
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    model.train(train)
    k, c = model.cfg.num_keypoints, model.cfg.offset_channels
    x = torch.randn(2, k * c, 8, 10)
    feats, finals = model.offset_feature_layers, model.offset_final_layer
    import copy
    ref_feats = copy.deepcopy(feats)
    separate = torch.cat([finals[j](ref_feats[j](x[:, j * c:(j + 1) * c])) for j in range(k)], 1)
    grouped = offsets_grouped(x, feats, finals)
    assert torch.allclose(grouped, separate, atol=1e-5)
    if train:  # running statistics were updated per module exactly as the separate branches did
        for a, b in zip(feats.modules(), ref_feats.modules()):
            if isinstance(a, torch.nn.BatchNorm2d):
                assert torch.allclose(a.running_mean, b.running_mean, atol=1e-6)
                assert torch.allclose(a.running_var, b.running_var, atol=1e-6)
                assert a.num_batches_tracked == b.num_batches_tracked


def test_gru_identity_start_and_state_carry():
    torch.manual_seed(0)
    temporal = DEKR(model_config("lite"), temporal=True).eval()
    frame_only = DEKR(model_config("lite"), temporal=False).eval()
    frame_only.load_state_dict({k: v for k, v in temporal.state_dict().items() if not k.startswith("temporal.")})
    x1, x2 = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a = temporal(x1, None)
        b = frame_only(x1)
        assert b.state is None
        assert torch.equal(a.heatmaps, b.heatmaps) and torch.equal(a.offsets, b.offsets)
        # at inference the identity GRU is skipped altogether: the state passes through untouched
        temporal.temporal.gates.forward = None  # would raise if called
        assert temporal(x1, None).state is None
        s0 = torch.randn(1, model_config("lite").temporal_channels, 16, 16)
        assert temporal(x1, s0).state is s0
        del temporal.temporal.gates.forward
        # once the GRU's output projection is non-zero, the carried state changes the next frame's output
        torch.nn.init.normal_(temporal.temporal.out.weight, std=0.1)
        s = temporal(x1, None).state
        with_state, without = temporal(x2, s), temporal(x2, None)
        assert not torch.allclose(with_state.heatmaps, without.heatmaps)
        assert not torch.equal(with_state.state, s)


def test_gru_update_floor_makes_old_state_fade(tmp_path):
    from posevid.model.temporal import ConvGRU

    torch.manual_seed(0)
    x = torch.randn(1, 8, 5, 5)
    h0 = torch.randn(1, 4, 5, 5)
    for floor in (0.0, 0.5):
        gru = ConvGRU(8, 4, min_update=floor).eval()
        torch.nn.init.normal_(gru.out.weight, std=0.1)  # trained (an identity GRU is skipped in eval mode)
        with torch.no_grad():
            gru.gates.bias.fill_(-30.0)  # gates closed: z = floor, r = 0, so h1 = (1 - floor) h0 + floor q
            q = torch.tanh(gru.candidate(torch.cat([gru.project(x), torch.zeros_like(h0)], 1)))
            _, h1 = gru(x, h0)
        torch.testing.assert_close(h1, (1 - floor) * h0 + floor * q, atol=1e-6, rtol=0)
    with pytest.raises(ValueError):
        ConvGRU(8, 4, min_update=1.0)
    # the floor is part of the model config, so a checkpoint brings back the GRU it was trained with
    model = DEKR(model_config("small"), temporal=True)
    assert model.temporal.min_update == model_config("small").temporal_min_update > 0
    save_checkpoint(tmp_path / "w.pt", model)
    assert load_model(weights=tmp_path / "w.pt").temporal.min_update == model.temporal.min_update


def test_official_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    src = DEKR(model_config("lite"), temporal=False).eval()
    # official files are bare state_dicts; training dumps add 'module.' (DataParallel)
    torch.save({f"module.{k}": v for k, v in src.state_dict().items()}, tmp_path / "official.pth")
    loaded = load_model("lite", tmp_path / "official.pth", temporal=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = src(x), loaded(x, None)
    assert torch.equal(a.heatmaps, b.heatmaps) and torch.equal(a.offsets, b.offsets)


def test_official_w32_recognised_from_shapes():
    ref = read_manifest("dekr_w32_coco_state_dict_manifest.json")
    state = {e["name"]: torch.zeros(e["shape"]) for e in ref["entries"] if e["name"].startswith("transition_")}
    assert infer_official_config(state).name == "hrnet_w32"


def test_posevid_checkpoint_carries_config(tmp_path):
    torch.manual_seed(0)
    model = DEKR(model_config("lite")).eval()
    save_checkpoint(tmp_path / "m.pt", model, step=3)
    loaded = load_model(weights=tmp_path / "m.pt")
    assert loaded.cfg == model.cfg
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    assert not list(tmp_path.glob("*.partial"))


def test_config_refuses_unknown_decoding_defaults():
    from dataclasses import replace

    with pytest.raises(ValueError, match="pose_score"):
        replace(model_config("lite"), pose_score="keypoints")
    with pytest.raises(ValueError, match="threshold"):
        replace(model_config("lite"), threshold=-0.1)


def test_bad_weights_are_one_line_errors(tmp_path):
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(PosevidError, match="not a PyTorch checkpoint"):
        load_model("lite", tmp_path / "text.pth")
    with pytest.raises(PosevidError, match="not found"):
        load_model("lite", tmp_path / "missing.pth")
    state = DEKR(model_config("lite"), temporal=False).state_dict()
    torch.save(state, tmp_path / "lite.pth")
    with pytest.raises(PosevidError, match="weights are for model lite, not hrnet_w32"):
        load_model("hrnet_w32", tmp_path / "lite.pth")
    state["head_heatmap.1.weight"] = torch.zeros(5, 16, 1, 1)
    del state["conv1.weight"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(PosevidError, match="do not fit model lite: 1 missing .*1 of another shape") as e:
        load_model("lite", tmp_path / "broken.pth")
    assert "\n" not in str(e.value)


def test_clip_forward_equals_frame_by_frame():
    torch.manual_seed(0)
    model = DEKR(model_config("lite")).eval()
    torch.nn.init.normal_(model.temporal.out.weight, std=0.1)
    clip = torch.randn(2, 3, 3, 64, 96)  # (N, T, 3, H, W)
    with torch.no_grad():
        out = model.forward_clip(clip)
        state = None
        for t in range(3):
            step = model(clip[:, t], state)
            state = step.state
            assert torch.allclose(out.heatmaps[:, t], step.heatmaps, atol=1e-5)
            assert torch.allclose(out.offsets[:, t], step.offsets, atol=1e-4)
        assert torch.allclose(out.state, state, atol=1e-6)


@pytest.mark.parametrize("name,blocks", [("lite", 1), ("lite", 2), ("effnet", 1)])
def test_regression_at_chosen_pixels_equals_the_dense_maps(name, blocks):
    """offsets_at (inference: only where local NMS kept a centre) gives the dense head's values there,
    also for far-reaching learnt sampling grids and at the map's borders."""
    from dataclasses import replace

    torch.manual_seed(1)
    model = build_model(replace(model_config(name), offset_blocks=blocks)).eval()
    for branch in model.offset_feature_layers:
        for block in branch:
            block.transform_matrix_conv.weight.data.normal_(0, 0.5)  # grids scaled, turned and sheared
            block.translation_conv.weight.data.normal_(0, 2.0)  # and moved several pixels
            block.bn.running_mean.uniform_(-0.5, 0.5)
            block.bn.running_var.uniform_(0.5, 2.0)
    for final in model.offset_final_layer:
        final.weight.data.mul_(20)  # offsets of several pixels, as trained ones are
    model.transition_offset[1].running_mean.uniform_(-0.5, 0.5)  # computed sparsely too with one block
    model.transition_offset[1].running_var.uniform_(0.5, 2.0)
    features = torch.randn(model.cfg.fused_channels, 16, 24)  # the fused features run_clip gives
    with torch.no_grad():
        dense = offsets_grouped(model.transition_offset(features[None]), model.offset_feature_layers,
                                model.offset_final_layer)[0].flatten(1)
        index = torch.tensor([0, 23, 24, 200, 383, 370, 17])  # corners, edges, inside of the 16×24 map
        sparse = model.offsets_at(features, index)
    assert dense.std(1).mean() > 0.5  # offsets vary from pixel to pixel: the comparison is not trivial
    assert torch.allclose(sparse, dense[:, index].T, atol=1e-4)


@pytest.mark.parametrize("name", ["small", "effnet"])
def test_inference_copy_computes_what_the_model_computes(name):
    """Predictor's copy (BatchNorm folded into the convolutions, channels-last weights) gives the same
    heatmaps, fused features and regression as the model, whose own BatchNorms stay untouched."""
    from posevid.model.inference import inference_copy

    torch.manual_seed(2)
    model = build_model(model_config(name)).eval()
    torch.nn.init.normal_(model.temporal.out.weight, std=0.1)  # a trained GRU: its projection's BN is used
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:  # non-trivial statistics and affine parameters, so that folding matters
        m.running_mean.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 2.0)
        m.weight.data.uniform_(0.5, 1.5)
        m.bias.data.uniform_(-0.2, 0.2)
    fast = inference_copy(model)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == len(bns)
    left = [m for m in fast.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(left) < len(bns) // 3  # most are folded (the offset head's remain, read by offsets_at)
    x = torch.rand(1, 2, 3, 64, 96) * 255
    with torch.no_grad():
        ref, out = model.run_clip(x), fast.run_clip(x)
        index = torch.tensor([0, 100, 383])
        ref_off, off = model.offsets_at(ref.features[0, 1], index), fast.offsets_at(out.features[0, 1], index)
    for a, b in ((ref.heatmaps, out.heatmaps), (ref.features, out.features), (ref.state, out.state), (ref_off, off)):
        assert a.abs().max() > 0.01
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_networks_take_0_255_rgb_and_normalise_inside():
    hr, eff = build_model(model_config("lite")), build_model(model_config("effnet"))
    assert hr.input_mean.flatten().tolist() == pytest.approx([123.675, 116.28, 103.53])
    assert eff.input_mean.flatten().tolist() == [127.0] * 3 and eff.input_std.flatten().tolist() == [128.0] * 3
    assert not any(k.startswith("input_") for k in hr.state_dict())  # official state dicts stay loadable
