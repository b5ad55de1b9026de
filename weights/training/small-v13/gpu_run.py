"""Session 12's GPU call (see README.md beside this file): can the ConvGRU, trained alone on top of the shipped
network, make it better? And a longer per-frame phase on all three training sets.

Runs in one process, so the training videos are decoded once; each run's logs and weights go to OUT as soon as
it ends:
  1. calibrate-gru: a few seconds of GRU training; it also pays for CUDA's warm-up;
  2. `gru-aug`: the ConvGRU alone (--freeze-frame-net) on 8-frame clips that take every 1st to 3rd frame
     (--frame-step 3: 30 down to 10 fps, the example clip's rate), with sliding occluders and blur;
  3. `gru-clean`: the same without occluders and blur (the CPU GRU phase of small-v10, which had them,
     made clean video worse);
  4. calibrate-frame, then `frame`: per-frame DEKR from --init, as many steps as fit MINUTES_FRAME.
The per-frame twin of both GRU runs is exactly --init.

    python weights/training/small-v13/gpu_run.py --out $OUT --init weights/posevid_small.pt --data DIR [--data DIR ...]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
from pathlib import Path

import cv2
import torch

from posevid.data import readers
from posevid.train import TrainConfig, train

# small-v6's recipe holds the helpers (weights without optimiser state, frames/s from a log); reused, not copied.
_spec = importlib.util.spec_from_file_location("small_v6_run", Path(__file__).resolve().parents[1] / "small-v6/gpu_run.py")
small_v6 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(small_v6)
export, frames_per_s = small_v6.export, small_v6.frames_per_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--init", required=True)
    ap.add_argument("--runs", type=Path, default=Path("/tmp/small-v13"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=64)  # frames per step in every run
    ap.add_argument("--lr-gru", type=float, default=1e-3)
    ap.add_argument("--lr-frame", type=float, default=3e-4)
    ap.add_argument("--minutes-gru", type=float, default=1.7)  # each GRU run
    ap.add_argument("--minutes-frame", type=float, default=2.4)  # 0: no per-frame run
    ap.add_argument("--clip-gru", type=int, default=8)
    ap.add_argument("--frame-step", type=int, default=3)
    ap.add_argument("--gru-runs", default="aug,clean")
    ap.add_argument("--calibrate-minutes", type=float, default=0.4)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    args = ap.parse_args()

    torch.backends.cudnn.benchmark = True  # fixed input size
    cv2.setNumThreads(1)  # inherited by the forked data workers
    readers.VIDEO_CACHE_BYTES = 24 << 30  # all training videos decoded once
    common = dict(data=tuple(args.data), model="small", input_size=160, zoom=(1.3, 2.8), offset_loss_weight=1.0,
                  device=args.device, workers=args.workers, preload=True, log_every=20, init=args.init)
    gru = dict(common, clip_len=args.clip_gru, batch=args.batch // args.clip_gru, frame_step=args.frame_step, temporal=True, freeze_frame_net=True)
    frame = dict(common, clip_len=1, batch=args.batch, temporal=False)
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.runs, ignore_errors=True)

    def run(name: str, recipe: dict, minutes: float, fps: float | None, weights: str | None = None, **kw) -> float:
        """Trains as many steps as fit `minutes` at `fps` frames/s (None: a calibration run); returns its frames/s."""
        steps = 10**6 if fps is None else max(20, int(0.9 * fps * 60 * minutes / args.batch))
        if fps is not None:
            print(f"{name}: {steps} steps", flush=True)
        out = args.runs / name
        train(TrainConfig(out=out, steps=steps, time_limit=minutes if fps is None else 1.1 * minutes,
                          checkpoint_every=10**6 if fps is None else 500, **recipe, **kw))
        export(out, args.out, weights)
        return frames_per_s(out)

    fps = run("calibrate-gru", gru, args.calibrate_minutes, None, lr=1e-5, seed=0)
    print(f"GRU runs: {fps:.0f} frames/s", flush=True)
    if "aug" in args.gru_runs.split(","):
        run("gru-aug", gru, args.minutes_gru, fps, "gru-aug.pt", lr=args.lr_gru, occlude=0.5, blur=0.3, seed=61)
    if "clean" in args.gru_runs.split(","):
        run("gru-clean", gru, args.minutes_gru, fps, "gru-clean.pt", lr=args.lr_gru, seed=61)
    if not args.minutes_frame:
        return
    fps = run("calibrate-frame", frame, 0.25, None, lr=1e-5, seed=0)
    print(f"per-frame run: {fps:.0f} frames/s", flush=True)
    run("frame", frame, args.minutes_frame, fps, "frame.pt", lr=args.lr_frame, seed=62)


if __name__ == "__main__":
    main()
