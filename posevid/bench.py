"""`make bench`: end-to-end speed and memory of `posevid infer` on this machine.

Each case runs the real command in a fresh process on a generated clip and samples the resident memory
of the whole process tree (posevid + its ffmpeg decoder and encoder) every 20 ms. Frames/s is the
command's own figure for its frame loop (decode → network → decode poses → track → draw → encode);
start-up (imports, model load) is reported apart as wall time. For an effnet default it also times each
part of the network (`network_parts_ms`), to show where the frame's time goes.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from posevid.config import DEFAULT_MODEL, model_config

# Speed and memory targets for the shipped models, end to end on a 640×272 clip with the annotated video.
TARGET_FPS = 25.0
TARGET_RSS_MB = 450.0


def make_clip(path: Path, width: int, height: int, frames: int, fps: int = 25) -> Path:
    """A moving test pattern with audio (no people: speed with few detections)."""
    from posevid.video import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={width}x{height}:rate={fps}", "-f", "lavfi", "-i", "sine=frequency=440",
                    "-frames:v", str(frames), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-shortest", str(path)], check=True)
    return path


def _tree_rss_kib(root: int) -> int:
    """Resident memory of `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            status = Path(f"/proc/{d}/status").read_text()
        except OSError:
            continue
        ppid = int(re.search(r"PPid:\s+(\d+)", status).group(1))
        m = re.search(r"VmRSS:\s+(\d+)", status)
        children.setdefault(ppid, []).append(int(d))
        rss[int(d)] = int(m.group(1)) if m else 0
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def run_infer(args: list[str]) -> dict:
    cmd = [sys.executable, "-m", "posevid", "infer", *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_tree = peak_py = 0
    while proc.poll() is None:
        peak_tree = max(peak_tree, _tree_rss_kib(proc.pid))
        try:
            peak_py = max(peak_py, int(re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{proc.pid}/status").read_text())
                                       .group(1)))
        except (OSError, AttributeError):
            pass
        time.sleep(0.02)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench: posevid infer failed: {err.strip() or out.strip()}")
    m = re.search(r"(\d+) frames, ([\d.]+) frames/s", out)
    return {"frames": int(m.group(1)), "fps": float(m.group(2)), "wall_s": round(wall, 2),
            "peak_rss_mb_posevid": round(peak_py / 1024, 1), "peak_rss_mb_with_ffmpeg": round(peak_tree / 1024, 1)}


def random_weights(name: str, folder: Path) -> Path:
    """Untrained weights, for timing only (speed does not depend on the values, only on detections)."""
    import torch

    from posevid.config import model_config
    from posevid.model import build_model, save_checkpoint

    torch.manual_seed(0)
    path = folder / f"random_{name}.pt"
    save_checkpoint(path, build_model(model_config(name)))
    return path


def steady_state(name: str, size: int, flip: bool, frames: int = 3) -> float:
    """Seconds per frame of Predictor.predict after one warm-up frame (no video I/O)."""
    import numpy as np
    import torch

    from posevid.config import model_config
    from posevid.model import build_model
    from posevid.predict import PredictConfig, Predictor

    torch.manual_seed(0)
    predictor = Predictor(build_model(model_config(name)), PredictConfig(flip=flip, input_size=size))
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    predictor(image)
    t = time.perf_counter()
    for _ in range(frames):
        predictor(image)
    return (time.perf_counter() - t) / frames


def network_parts_ms(weights: Path, width: int = 640, height: int = 272, repeats: int = 5) -> dict[str, float]:
    """Milliseconds per frame of each part of an effnet network at its input size on a width×height frame,
    float32, median of `repeats` after a warm-up: where the network's time goes (the regression at 10 centres,
    as inference computes it after local NMS)."""
    import torch

    from posevid.frames import Resize
    from posevid.model import load_model

    m = load_model(weights=weights).eval()
    plan = Resize.plan(width, height, m.cfg.input_size)
    x = torch.rand(1, 3, plan.in_h, plan.in_w) * 255
    times: dict[str, list[float]] = {}

    def timed(name, fn, *args):
        t = time.perf_counter()
        out = fn(*args)
        times.setdefault(name, []).append(1000 * (time.perf_counter() - t))
        return out

    with torch.inference_mode():
        for _ in range(repeats + 1):
            z = (x - m.input_mean) / m.input_std
            taps = timed("encoder (EfficientNet-Lite0)", m.encoder.features, z)
            fused = timed("lateral, exchange, fusion", m.fuse_taps, taps)
            if m.temporal is not None:
                fused = timed("ConvGRU", lambda f: m.temporal(f, None)[0], fused)
            heat = timed("heatmap head", m.heatmaps, fused)
            index = torch.arange(10) * (heat.shape[-1] * heat.shape[-2] // 10)
            timed("regression at 10 centres", m.offsets_at, fused[0], index)
    return {name: float(sorted(t[1:])[len(t[1:]) // 2]) for name, t in times.items()}


def target_encoding_ms(frames: int = 200) -> float:
    """Milliseconds per training frame for `encode_dekr` (64×64 maps, 1-4 fully labelled people)."""
    import numpy as np

    from posevid.data.targets import encode_dekr

    rng = np.random.default_rng(0)
    scenes = []
    for i in range(frames):
        kp = np.zeros((1 + i % 4, 17, 3))
        size = rng.uniform(40, 120, (len(kp), 1, 1))
        kp[..., :2] = rng.uniform(60, 196, (len(kp), 1, 2)) + rng.uniform(-0.5, 0.5, kp[..., :2].shape) * size
        kp[..., 2] = 2
        scenes.append(kp)
    t = time.perf_counter()
    for kp in scenes:
        encode_dekr(kp, (64, 64))
    return 1000 * (time.perf_counter() - t) / frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer frames (a smoke run)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args()
    n = 60 if a.quick else 300
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        m = DEFAULT_MODEL
        from posevid.model import SHIPPED_WEIGHTS, read_weights, shipped_weights

        shipped = m in SHIPPED_WEIGHTS
        weights = shipped_weights(m) if shipped else random_weights(m, tmp)
        weights_note = "shipped weights" if shipped else "random weights (no shipped weights)"

        size = read_weights(weights)[1].input_size  # the network input the weights were made for
        short = make_clip(tmp / "short.mp4", 640, 272, n)
        long = make_clip(tmp / "long.mp4", 640, 272, 10 * n)
        common = ["--weights", str(weights), "--out", str(tmp / "out")]
        default_case = f"{m} 640x272 (input {size}), video out"
        results[default_case] = run_infer([str(short), *common])
        # `--precision auto` (the default) is bf16 on CPUs that compute it natively: float32 beside it
        results[f"{m} 640x272 (input {size}), fp32, video out"] = run_infer(
            [str(short), *common, "--precision", "fp32"])
        # the multi-scale test for people close to the camera: a second pass at half the input size
        results[f"{m} 640x272 (input {size}), --scales 1,0.5, video out"] = run_infer(
            [str(short), *common, "--scales", "1,0.5"])
        if size != 128:
            results[f"{m} 640x272, input 128, video out"] = run_infer([str(short), *common, "--input-size", "128"])
        results[f"{m} 640x272, keypoints only"] = run_infer([str(short), *common, "--no-video"])
        # Memory must not grow with length: compare with the short clip at the same input size.
        results[f"{m} 640x272, input 128, 10x longer ({10 * n} frames)"] = run_infer(
            [str(long), *common, "--input-size", "128"])
        target_cases = {m: default_case}
        # every other shipped model on the same clip and targets
        for other in SHIPPED_WEIGHTS:
            if other != m:
                w = shipped_weights(other)
                case = f"{other} 640x272 (input {read_weights(w)[1].input_size}), video out"
                results[case] = run_infer([str(short), "--weights", str(w), "--out", str(tmp / "out")])
                target_cases[other] = case
        lite = ["--weights", str(random_weights("lite", tmp)), "--out", str(tmp / "out")]
        results["lite 640x272 (input 128, random weights), video out"] = run_infer([str(short), *lite])
        results["lite 640x272 (random weights), keypoints only"] = run_infer([str(short), *lite, "--no-video"])
        w32 = random_weights("hrnet_w32", tmp)
        square = make_clip(tmp / "square.mp4", 512, 512, 4 if a.quick else 8)
        w32_args = [str(square), "--weights", str(w32), "--out", str(tmp / "out"), "--input-size", "512"]
        results["hrnet_w32 512x512, video out"] = run_infer(w32_args)
        results["hrnet_w32 512x512, flip test"] = run_infer([*w32_args, "--flip"])
        parts = network_parts_ms(weights) if model_config(m).encoder == "efficientnet" else {}
    steady = {flip: steady_state("hrnet_w32", 512, flip, 2 if a.quick else 4) for flip in (False, True)}
    results["hrnet_w32 512x512 steady state, s/frame"] = {"no_flip": steady[False], "flip": steady[True]}
    synth = subprocess.run([sys.executable, "-m", "posevid.data.bench"], capture_output=True, text=True)
    import torch

    from posevid.model.inference import resolve_precision

    print(f"posevid bench — torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs; {m}: {weights_note}; lite, hrnet_w32: random weights; "
          f"precision auto = {resolve_precision('auto', torch.device('cpu'))} here")
    print(f"{'case':52} {'frames':>6} {'frames/s':>9} {'s/frame':>8} {'wall s':>7} {'RSS MB':>7} {'+ffmpeg':>8}")
    for name, r in results.items():
        if "frames" not in r:
            continue
        print(f"{name:52} {r['frames']:>6} {r['fps']:>9.2f} {1 / r['fps']:>8.3f} {r['wall_s']:>7.1f} "
              f"{r['peak_rss_mb_posevid']:>7.0f} {r['peak_rss_mb_with_ffmpeg']:>8.0f}")
    print(f"hrnet_w32 512x512, network + decoding after warm-up: {steady[False]:.2f} s/frame, "
          f"{steady[True]:.2f} s/frame with flip test (official DEKR pipeline with flip: about 2.86 s/frame here)")
    if synth.returncode == 0:
        r = ast.literal_eval(synth.stdout.strip().splitlines()[-1])
        results["synthetic data generator"] = r
        print(f"synthetic data generator: {r['frames_per_s']} rendered frames/s on one core at {r['size']} "
              f"({r['people_per_clip']:.1f} people per clip; video encoding excluded)")
    else:
        print(f"synthetic data generator: not measured ({(synth.stderr.strip().splitlines() or ['?'])[-1]})")
    if parts:
        results[f"{m} network parts, ms/frame"] = parts
        print(f"{m} network at input {size} on 640x272, float32, ms/frame: "
              + ", ".join(f"{name} {ms:.0f}" for name, ms in parts.items()))
    encode_ms = target_encoding_ms()
    results["training target encoding, ms/frame"] = encode_ms
    print(f"training targets (encode_dekr, 64x64 maps, 1-4 people): {encode_ms:.2f} ms/frame")
    for name, case in target_cases.items():
        r = results[case]
        rss = max(r["peak_rss_mb_posevid"], r["peak_rss_mb_with_ffmpeg"])
        print(f"targets for {name} (640x272, annotated video): >= {TARGET_FPS:.0f} frames/s: {r['fps']:.1f} "
              f"({'met' if r['fps'] >= TARGET_FPS else 'NOT met'}); peak RSS <= {TARGET_RSS_MB:.0f} MB (with "
              f"ffmpeg): {rss:.0f} MB ({'met' if rss <= TARGET_RSS_MB else 'NOT met'})")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
