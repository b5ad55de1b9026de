"""End to end: the real `posevid infer` on small generated clips, with the small model.

The network is the `lite` architecture with random weights and a raised heatmap bias, so that it finds
"people" everywhere: these tests check the pipeline (frames, timing, audio, files, errors), not accuracy.
"""
import json
import subprocess
import sys
from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch
from conftest import BAD_KINDS, vfr_pts_ms
from typer.testing import CliRunner

from posevid.cli import app
from posevid.config import DEFAULT_MODEL, model_config
from posevid.infer import InferOptions, infer_video
from posevid.model import DEKR, SHIPPED_WEIGHTS, load_model, save_checkpoint
from posevid.outputs import read_keypoints
from posevid.predict import PredictConfig, Predictor
from posevid.video import probe

runner = CliRunner()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = DEKR(model_config("lite"))
    with torch.no_grad():
        model.head_heatmap[1].bias.fill_(0.5)  # center and keypoint peaks everywhere: many detections
        torch.nn.init.normal_(model.temporal.out.weight, std=0.05)  # the GRU state matters
    path = tmp_path_factory.mktemp("w") / "test_lite.pt"
    save_checkpoint(path, model)
    return path


def infer(*args):
    result = runner.invoke(app, ["infer", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def lines(path):
    header, frames = read_keypoints(path)
    return header, list(frames)


def stop_after(n):
    """An infer_video progress callback that interrupts the run (as Ctrl-C does) after n frames."""
    def stop(done, total):
        if done >= n:
            raise KeyboardInterrupt
    return stop


def test_video_and_keypoints_with_audio(clip_factory, weights, tmp_path):
    clip = clip_factory("talk.mp4", frames=15, fps="30000/1001", audio=True)
    out = tmp_path / "out"
    code, stdout, stderr = infer(clip, "--weights", weights, "--out", out, "--threshold", "0")
    assert code == 0, stderr
    assert "ok" in stdout and "15 frames" in stdout
    video = probe(out / "talk.pose.mp4")
    assert video.frame_count == 15 and video.fps == Fraction(30000, 1001)
    assert (video.width, video.height) == (160, 120) and video.has_audio
    header, frames = lines(out / "talk.pose.jsonl")
    assert header["fps"] == "30000/1001" and header["frame_count"] == 15 and header["model"] == "lite"
    assert len(header["weights_sha256"]) == 64
    assert (header["threshold"], header["pose_score"], header["scales"]) == (0.0, "center-keypoints", [1.0])
    assert [f["frame"] for f in frames] == list(range(15))
    assert frames[1]["pts_ms"] == pytest.approx(1001 / 30, abs=0.01)
    assert all(f["persons"] for f in frames)  # the test network "sees" people
    person = frames[0]["persons"][0]
    assert len(person["keypoints"]) == 17 and all(len(k) == 3 for k in person["keypoints"])
    assert {"track_id", "score", "keypoints"} <= person.keys() and frames[0]["nms_score"] > 0
    ids = [p["track_id"] for p in frames[0]["persons"]]
    assert len(ids) == len(set(ids))
    assert not list(out.glob("*partial*"))


def test_no_audio_rotated_odd_and_vfr_sources(clip_factory, weights, tmp_path):
    clips = [clip_factory("silent.mp4"), clip_factory("phone.mp4", rotate=90),
             clip_factory("odd.mp4", width=161, height=121), clip_factory("vfr.mp4", frames=10, vfr=True, audio=True)]
    code, _, stderr = infer(*clips, "--weights", weights, "--out", tmp_path / "o")
    assert code == 0, stderr
    silent = probe(tmp_path / "o" / "silent.pose.mp4")
    assert not silent.has_audio and silent.frame_count == 12
    phone = probe(tmp_path / "o" / "phone.pose.mp4")
    assert (phone.width, phone.height, phone.rotation) == (120, 160, 0)  # written upright
    assert lines(tmp_path / "o" / "phone.pose.jsonl")[0]["rotation"] == 90
    odd = probe(tmp_path / "o" / "odd.pose.mp4")
    assert (odd.width, odd.height) == (162, 122) and odd.frame_count == 12  # padded to even for yuv420p
    header, frames = lines(tmp_path / "o" / "vfr.pose.jsonl")
    assert header["variable_frame_rate"] is True
    assert [f["pts_ms"] for f in frames] == [vfr_pts_ms(i) for i in range(10)]
    vfr_out = probe(tmp_path / "o" / "vfr.pose.mp4")
    assert vfr_out.frame_count == 10 and vfr_out.has_audio
    src = probe(clips[3])
    assert vfr_out.duration_s == pytest.approx(src.duration_s, abs=0.15)


def test_bad_inputs_fail_alone_with_one_line(bad_clip_factory, clip_factory, weights, tmp_path):
    bad = [bad_clip_factory(k) for k in BAD_KINDS]
    good = clip_factory("good.mp4", frames=5)
    out = tmp_path / "o"
    code, stdout, stderr = infer(*bad, good, "--weights", weights, "--out", out, "--no-video")
    assert code == 1
    failed = [line for line in stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed) == len(BAD_KINDS)
    for path, line in zip(bad, failed):
        assert path.name in line
    assert "Traceback" not in stderr
    assert "ok" in stdout and (out / "good.pose.jsonl").exists()
    assert sorted(p.name for p in out.iterdir()) == ["good.pose.jsonl"]  # nothing half-written


def test_real_command_reports_errors_without_traceback(clip_factory, tmp_path):
    clip = clip_factory(frames=3)
    bad_weights = tmp_path / "w.pth"
    bad_weights.write_text("{}")
    cases = [
        (["infer", str(clip), "--weights", str(bad_weights)], "not a PyTorch checkpoint"),
        (["infer", str(clip), "--weights", str(clip)], "not a PyTorch checkpoint"),
        (["infer", str(clip), "--weights", str(tmp_path / "none.pt")], "not found"),
        (["infer", str(clip), "--model", "lite", "--out", str(clip / "x")], "output"),
    ]
    for args, message in cases:
        r = subprocess.run([sys.executable, "-m", "posevid", *args], capture_output=True, text=True)
        assert r.returncode == 1, r.stderr
        assert message in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_missing_default_weights_is_explained(clip_factory, tmp_path, monkeypatch):
    monkeypatch.delenv("POSEVID_WEIGHTS", raising=False)
    clip = clip_factory(frames=2)
    code, _, stderr = infer(clip, "--model", "hrnet_w32", "--out", tmp_path / "o")
    assert code == 1 and "no weights are shipped for model 'hrnet_w32'" in stderr and "--weights" in stderr
    code, _, stderr = infer(clip, "--model", "nonsense", "--out", tmp_path / "o")
    assert code == 1 and "unknown model 'nonsense'; known models:" in stderr
    monkeypatch.setitem(SHIPPED_WEIGHTS, DEFAULT_MODEL, "no_such_file.pt")  # a broken installation
    code, _, stderr = infer(clip, "--out", tmp_path / "o")
    assert code == 1 and "missing from this installation" in stderr
    assert not list((tmp_path / "o").iterdir())


def test_weights_of_another_architecture(clip_factory, weights, tmp_path):
    code, _, stderr = infer(clip_factory(frames=2), "--weights", weights, "--model", "hrnet_w32")
    assert code == 1 and "weights are for model lite, not hrnet_w32" in stderr


def test_range_stride_coco_and_skip_existing(clip_factory, weights, tmp_path):
    clip = clip_factory("c.mp4", frames=12, audio=True)
    out = tmp_path / "o"
    args = [clip, "--weights", weights, "--out", out, "--start-frame", 3, "--max-frames", 6, "--stride", 2,
            "--format", "coco", "--threshold", "0"]
    code, _, stderr = infer(*args)
    assert code == 0, stderr
    header, frames = lines(out / "c.pose.jsonl")
    assert [f["frame"] for f in frames] == [3, 4, 5, 6, 7, 8]
    assert [f["inferred"] for f in frames] == [True, False] * 3
    assert frames[1]["persons"] == frames[0]["persons"]  # a stride gap repeats the last poses
    assert frames[0]["pts_ms"] == pytest.approx(120.0)
    video = probe(out / "c.pose.mp4")
    assert video.frame_count == 6 and video.has_audio
    assert video.duration_s == pytest.approx(6 / 25, abs=0.05)
    coco = json.loads((out / "c.coco.json").read_text())
    assert {r["image_id"] for r in coco} == set(range(3, 9))
    assert all(len(r["keypoints"]) == 51 and r["category_id"] == 1 for r in coco)
    code, stdout, _ = infer(*args, "--skip-existing")
    assert code == 0 and "skipped" in stdout


def test_folder_and_glob_inputs(clip_factory, weights, tmp_path):
    a, b = clip_factory("a.mp4", frames=2), clip_factory("b.mp4", frames=2)
    (a.parent / "notes.txt").write_text("not a video")
    code, stdout, stderr = infer(a.parent, "--weights", weights, "--out", tmp_path / "o1", "--no-video")
    assert code == 0, stderr
    assert stdout.count("ok ") == 2
    code, stdout, _ = infer(str(a.parent / "*.mp4"), "--weights", weights, "--out", tmp_path / "o2", "--no-video")
    assert code == 0 and stdout.count("ok ") == 2


def test_interrupted_run_leaves_partial_and_resume_matches_uninterrupted(clip_factory, weights, tmp_path):
    clip = clip_factory("r.mp4", frames=12)
    model = load_model(weights=weights)
    predictor = Predictor(model, PredictConfig(threshold=0))
    full = infer_video(clip, predictor, InferOptions(out_dir=tmp_path / "full", write_video=False))

    opts = InferOptions(out_dir=tmp_path / "cut", write_video=True)
    with pytest.raises(KeyboardInterrupt):
        infer_video(clip, predictor, opts, stop_after(5))
    left = sorted(p.name for p in (tmp_path / "cut").iterdir())
    assert left == ["r.pose.jsonl.partial"]  # nothing that looks finished
    opts.resume = True
    infer_video(clip, predictor, opts)
    _, resumed = lines(tmp_path / "cut" / "r.pose.jsonl")
    _, expected = lines(full.keypoints)
    assert [f["frame"] for f in resumed] == list(range(12))
    for a, b in zip(resumed, expected):  # the GRU state was rebuilt: same poses as without interruption
        assert a["persons"] == b["persons"]
    assert probe(tmp_path / "cut" / "r.pose.mp4").frame_count == 12


def test_scene_cut_starts_new_tracks_also_after_resume(weights, tmp_path):
    from posevid.decode import Poses
    from posevid.predict import FrameResult
    from posevid.video import VideoWriter

    class OnePerson(Predictor):
        """The real scene-cut detection, but always the same person at the same place: only the cut can
        give them a new id."""

        def predict(self, images):
            kp = np.zeros((1, 17, 3))
            kp[0, :, 0], kp[0, :, 1], kp[0, :, 2] = np.linspace(60, 80, 17), np.linspace(20, 100, 17), 0.9
            person = Poses(kp, np.array([0.9]), np.array([0.9]))
            return [FrameResult(person, 0.9, r.scene_cut) for r in super().predict(images)]

    rng = np.random.default_rng(3)
    scenes = [cv2.resize(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), (160, 128),
                         interpolation=cv2.INTER_NEAREST) for _ in range(2)]
    clip = tmp_path / "cut.mp4"
    with VideoWriter(clip, 160, 128, Fraction(25)) as w:
        for t in range(12):
            w.write(scenes[t >= 6])
    predictor = OnePerson(load_model(weights=weights), PredictConfig(threshold=0))
    full = infer_video(clip, predictor, InferOptions(out_dir=tmp_path / "full", write_video=False))
    _, frames = lines(full.keypoints)
    assert [f["scene_cut"] for f in frames] == [t == 6 for t in range(12)]
    assert [f["persons"][0]["track_id"] for f in frames] == [1] * 6 + [2] * 6  # nobody keeps an id across a cut

    opts = InferOptions(out_dir=tmp_path / "resumed", write_video=False)
    with pytest.raises(KeyboardInterrupt):
        infer_video(clip, predictor, opts, stop_after(9))
    opts.resume = True
    infer_video(clip, predictor, opts)
    _, resumed = lines(tmp_path / "resumed" / "cut.pose.jsonl")
    assert resumed == frames  # the replayed tracker also started anew at the cut


def test_resume_refuses_partial_of_another_run(clip_factory, weights, tmp_path):
    clip = clip_factory("r.mp4", frames=6)
    predictor = Predictor(load_model(weights=weights))

    with pytest.raises(KeyboardInterrupt):
        infer_video(clip, predictor, InferOptions(out_dir=tmp_path, write_video=False), stop_after(2))
    code, _, stderr = infer(clip, "--weights", weights, "--out", tmp_path, "--no-video", "--resume", "--stride", 2)
    assert code == 1 and "belongs to another run" in stderr


def test_temporal_and_per_frame_twin_differ_only_through_the_gru(clip_factory, weights, tmp_path):
    clip = clip_factory("t.mp4", frames=4)
    outs = {}
    for flag in ([], ["--no-temporal"]):
        out = tmp_path / ("pf" if flag else "tm")
        code, _, stderr = infer(clip, "--weights", weights, "--out", out, "--no-video", "--threshold", "0", *flag)
        assert code == 0, stderr
        outs[bool(flag)] = lines(out / "t.pose.jsonl")
    assert outs[False][0]["temporal"] is True and outs[True][0]["temporal"] is False
    assert outs[False][0]["snap_radius"] == 0.0  # DEKR decoding unless the weights or --snap say otherwise
    assert outs[False][0]["precision"] == "fp32"  # "auto" on a CPU without native bf16 (conftest)
    kp = lambda f: np.array([p["keypoints"] for p in f["persons"]])  # noqa: E731
    assert not np.allclose(kp(outs[False][1][2]), kp(outs[True][1][2]))


def test_eval_command_on_own_annotations(weights, tmp_path):
    from test_evaluate import _write_dataset

    ann = _write_dataset(tmp_path)
    code, stdout, stderr = run_eval("--annotations", ann, "--weights", weights, "--out", tmp_path / "rep")
    assert code == 0, stderr
    assert "temporal" in stdout and "per-frame" in stdout and "AP" in stdout
    report = json.loads((tmp_path / "rep" / "annotations.json").read_text())
    assert set(report["models"]) == {"temporal", "per-frame"}
    assert (tmp_path / "rep" / "annotations_nms_score.png").stat().st_size > 0
    code, stdout, stderr = run_eval("--annotations", ann, "--weights", weights, "--out", tmp_path / "rep2",
                                    "--no-temporal", "--snap", "0.3", "--input-size", "64", "--regression",
                                    "--precision", "bf16", "--scales", "1,0.5")
    assert code == 0, stderr
    alone = json.loads((tmp_path / "rep2" / "annotations.json").read_text())
    assert "center_regression" not in report and alone["center_regression"]["people"] == 6
    assert "mean-pose oracle" in stdout
    assert set(alone["models"]) == {"per-frame"} and "temporal" not in stdout
    assert (alone["input_size"], alone["snap_radius"], report["snap_radius"]) == (64, 0.3, 0.0)
    assert (alone["precision"], report["precision"]) == ("bf16", "fp32")
    assert (alone["scales"], report["scales"]) == ([1.0, 0.5], [1.0])
    assert alone["models"]["per-frame"]["oks_score"] != report["models"]["per-frame"]["oks_score"]
    identity = tmp_path / "identity.pt"  # a GRU that was never trained: scored once
    save_checkpoint(identity, DEKR(model_config("lite")))
    code, stdout, stderr = run_eval("--annotations", ann, "--weights", identity, "--out", tmp_path / "rep4",
                                    "--input-size", "64")
    assert code == 0 and "identity start" in stdout, stderr
    assert set(json.loads((tmp_path / "rep4" / "annotations.json").read_text())["models"]) == {"per-frame"}
    code, _, stderr = run_eval("--weights", weights)
    assert code == 1 and "exactly one of --split or --annotations" in stderr
    code, _, stderr = run_eval("--annotations", ann, "--weights", weights, "--input-size", "50")
    assert code == 1 and "--input-size must be a positive multiple of 32" in stderr
    for bad in ("0.5,1", "1,0", "1,a"):
        code, _, stderr = run_eval("--annotations", ann, "--weights", weights, "--scales", bad)
        assert code == 1 and "--scales takes positive, decreasing factors" in stderr and len(stderr.splitlines()) == 1
    code, _, stderr = run_eval("--annotations", ann, "--weights", weights, "--input-size", "64", "--scales", "1,0.1")
    assert code == 1 and "none under 32" in stderr and len(stderr.splitlines()) == 1
    data = json.loads(ann.read_text())
    for a in data["annotations"]:  # 4 labelled keypoints each: too few for a person size
        a["keypoints"] = a["keypoints"][:12] + [0] * (len(a["keypoints"]) - 12)
    ann.write_text(json.dumps(data))
    code, stdout, stderr = run_eval("--annotations", ann, "--weights", weights, "--out", tmp_path / "rep3",
                                    "--no-temporal", "--input-size", "64", "--regression")
    assert code == 0 and "nothing to measure" in stdout, stderr


def run_eval(*args):
    result = runner.invoke(app, ["eval", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_sigterm_keeps_only_the_resumable_partial(clip_factory, weights, tmp_path):
    import signal
    import time

    clip = clip_factory("long.mp4", frames=300, width=320, height=240)
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "posevid", "infer", str(clip), "--weights", str(weights),
                             "--out", str(out)], stderr=subprocess.PIPE, text=True)
    partial = out / "long.pose.jsonl.partial"
    deadline = time.time() + 60
    while time.time() < deadline and not (partial.exists() and partial.read_text().count("\n") > 3):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "--resume" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in out.iterdir()) == ["long.pose.jsonl.partial"]


def test_help_shows_the_defaults_written_in_brackets():
    """Help texts state defaults as "[default: …]"; rich markup would swallow them as tags."""
    result = runner.invoke(app, ["eval", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "[default: shipped]" in result.output and "[default: the weights']" in result.output


def test_cli_defaults_are_the_library_defaults():
    # The CLI keeps its own literal (torch is imported lazily), so the two must not drift apart.
    import inspect

    from posevid import cli

    for command in (cli.infer, cli.eval_):  # None: the weights' own setting
        assert inspect.signature(command).parameters["pose_score"].default is PredictConfig().pose_score is None
    assert inspect.signature(cli.infer).parameters["threshold"].default is PredictConfig().threshold is None
    for command in (cli.infer, cli.eval_):
        assert inspect.signature(command).parameters["precision"].default.value == PredictConfig().precision
    from posevid.model.inference import PRECISIONS

    assert tuple(p.value for p in cli.Precision) == PRECISIONS  # the CLI's twin (no torch import on --help)


def test_public_api_names_resolve():
    import posevid

    for name in posevid.__all__:
        assert callable(getattr(posevid, name)), name
    with pytest.raises(AttributeError):
        posevid.no_such_name


def test_eval_split_reads_the_installed_split_data(weights, tmp_path, monkeypatch):
    """`--split front` reads posevid/data/splits (checked by its manifest), here a one-clip copy so the
    test stays fast; a changed file stops it with a one-line error naming the file."""
    import shutil

    from posevid.data import splits

    root = tmp_path / "splits"
    (root / "front" / "videos").mkdir(parents=True)
    data = json.loads((splits.split_dir("front") / "annotations.json").read_text())
    data["videos"] = data["videos"][:1]
    data["images"] = [im for im in data["images"] if im["video_id"] == 1][:8]
    kept = {im["id"] for im in data["images"]}
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in kept]
    (root / "front" / "annotations.json").write_text(json.dumps(data))
    shutil.copy(splits.SPLITS_ROOT / "front" / data["videos"][0]["file_name"], root / "front" / "videos")
    splits.write_manifest(root)
    monkeypatch.setattr(splits, "SPLITS_ROOT", root)
    args = ["--split", "front", "--weights", weights, "--no-temporal", "--input-size", "128"]
    code, stdout, stderr = run_eval(*args, "--out", tmp_path / "rep")
    assert code == 0, stderr
    assert "AP" in stdout and json.loads((tmp_path / "rep" / "front.json").read_text())["models"]["per-frame"]
    video = root / "front" / "videos" / "000000.mp4"
    video.write_bytes(video.read_bytes()[:-10])
    code, _, stderr = run_eval(*args, "--out", tmp_path / "rep2")
    assert code == 1 and f"{video} does not match its checksum" in stderr and len(stderr.strip().splitlines()) == 1


def test_export_strips_the_optimiser_and_sets_inference_defaults(tmp_path):
    torch.manual_seed(0)
    model = DEKR(model_config("lite"))
    opt = torch.optim.Adam(model.parameters())
    save_checkpoint(tmp_path / "last.pt", model, optimizer=opt.state_dict(), step=7, train_config={"lr": 1e-3})
    result = runner.invoke(app, ["export", str(tmp_path / "last.pt"), str(tmp_path / "w.pt"), "--input-size", "192"])
    assert result.exit_code == 0, result.stderr
    payload = torch.load(tmp_path / "w.pt", weights_only=False)
    assert "optimizer" not in payload and payload["step"] == 7 and payload["config"]["input_size"] == 192
    exported = load_model(weights=tmp_path / "w.pt")
    assert all(torch.equal(a, b) for a, b in zip(exported.state_dict().values(), model.state_dict().values()))
    (tmp_path / "junk.pt").write_text("junk")
    result = runner.invoke(app, ["export", str(tmp_path / "junk.pt"), str(tmp_path / "x.pt")])
    assert result.exit_code == 1 and "not a PyTorch checkpoint" in result.stderr and not (tmp_path / "x.pt").exists()
    result = runner.invoke(app, ["export", str(tmp_path / "last.pt"), str(tmp_path / "y.pt"), "--input-size", "50"])
    assert result.exit_code == 1 and "--input-size" in result.stderr
    result = runner.invoke(app, ["export", str(tmp_path / "last.pt"), str(tmp_path / "y.pt"), "--threshold", "1.5"])
    assert result.exit_code == 1 and "--threshold" in result.stderr and not (tmp_path / "y.pt").exists()
    # the decoding defaults travel with the weights; old files without them read DEKR's score at 0.2
    result = runner.invoke(app, ["export", str(tmp_path / "last.pt"), str(tmp_path / "c.pt"),
                                 "--pose-score", "center", "--threshold", "0.45"])
    assert result.exit_code == 0, result.stderr
    cfg = load_model(weights=tmp_path / "c.pt").cfg
    assert (cfg.pose_score, cfg.threshold) == ("center", 0.45)
    payload["config"].pop("pose_score"), payload["config"].pop("threshold")
    torch.save(payload, tmp_path / "old.pt")
    cfg = load_model(weights=tmp_path / "old.pt").cfg
    assert (cfg.pose_score, cfg.threshold) == ("center-keypoints", 0.2)
