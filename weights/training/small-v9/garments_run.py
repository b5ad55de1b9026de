"""Session 9's second GPU call (see README.md beside this file): is clothing geometry worth having?

Two per-frame runs from the same weights (--init, small-v9's phase A), with the same seed, steps and
learning rate, on two sets made with the same seed that differ only in garments: `garments` has a
skirt, dress or long coat on 60 % of the people (`posevid data synth --garments 0.6`), `plain` has
none (`--garments 0`). Garments come from their own random stream, so every clip, person, pose,
camera, prop and photo is the same in both sets. A calibration run first pays for CUDA's warm-up.

    python weights/training/small-v9/garments_run.py --out $OUT --init W --garments DIR --plain DIR
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import tarfile
from pathlib import Path

import cv2
import torch

from posevid.data import readers
from posevid.train import TrainConfig, train

_spec = importlib.util.spec_from_file_location("small_v6_run", Path(__file__).resolve().parents[1] / "small-v6/gpu_run.py")
small_v6 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(small_v6)
export, frames_per_s = small_v6.export, small_v6.frames_per_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--init", required=True)
    ap.add_argument("--garments", required=True)
    ap.add_argument("--plain", required=True)
    ap.add_argument("--runs", type=Path, default=Path("/tmp/small-v9-garments"))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--minutes", type=float, default=2.2)  # each run
    ap.add_argument("--calibrate-minutes", type=float, default=0.2)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    args = ap.parse_args()

    torch.backends.cudnn.benchmark = True
    cv2.setNumThreads(1)
    readers.VIDEO_CACHE_BYTES = 24 << 30
    common = dict(model="small", input_size=160, zoom=(1.3, 2.8), offset_loss_weight=1.0, device="cuda",
                  workers=args.workers, preload=True, log_every=20, clip_len=1, batch=args.batch, temporal=False,
                  init=args.init)
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.runs, ignore_errors=True)
    stage = args.runs / "stage"

    def done(run: Path, weights: str | None) -> None:
        export(run, stage, weights)
        if weights:
            shutil.move(str(stage / weights), args.out / weights)
        with tarfile.open(args.out / "logs.tar", "w") as tar:
            tar.add(stage / "runs", arcname="runs")

    cal = args.runs / "calibrate"
    train(TrainConfig(out=cal, data=(args.garments,), steps=10**6, lr=1e-5, seed=0, checkpoint_every=10**6,
                      time_limit=args.calibrate_minutes, **common))
    done(cal, None)
    steps = max(50, int(0.9 * frames_per_s(cal) * 60 * args.minutes / args.batch))
    print(f"calibration: {frames_per_s(cal):.0f} frames/s -> {steps} steps per run", flush=True)
    for name, data in (("garments", args.garments), ("plain", args.plain)):
        run = args.runs / name
        train(TrainConfig(out=run, data=(data,), steps=steps, lr=args.lr, seed=41, checkpoint_every=10**6,
                          time_limit=1.2 * args.minutes, **common))
        done(run, f"{name}.pt")


if __name__ == "__main__":
    main()
