"""Session 9's GPU call (see README.md beside this file): small-v6 continued on fresh data, half of its clips
with props (upright non-person things: poles, signs, cones, bins) in the scene.

Unlike small-v8, the data is one new set made with one seed (`train-v4`, 1,600 clips), so no clip the model
saw before comes back, and clips with and without props are mixed from the first step. Three
`posevid.train.train` runs in one process (the videos are decoded once):
  1. calibrate: a few seconds at phase A's settings; it also pays for CUDA's warm-up, so no time guard
     cuts a real run short;
  2. phase A, per-frame DEKR from --init, as many steps as fit MINUTES_A;
  3. phase B (`b-joint`), the whole network with its ConvGRU on degraded 8-frame clips, as small-v6's last phase.

    python weights/training/small-v9/gpu_run.py --out $OUT --init weights/posevid_small.pt --data DIR
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
    ap.add_argument("--runs", type=Path, default=Path("/tmp/small-v9"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=64)  # frames per step in both phases
    ap.add_argument("--lr-a", type=float, default=5e-4)
    ap.add_argument("--lr-joint", type=float, default=3e-4)
    ap.add_argument("--minutes-a", type=float, default=5.6)
    ap.add_argument("--minutes-b", type=float, default=1.4)
    ap.add_argument("--calibrate-minutes", type=float, default=0.3)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    args = ap.parse_args()

    torch.backends.cudnn.benchmark = True  # fixed input size
    cv2.setNumThreads(1)  # inherited by the forked data workers
    readers.VIDEO_CACHE_BYTES = 24 << 30  # all training videos decoded once
    common = dict(data=tuple(args.data), model="small", input_size=160, zoom=(1.3, 2.8), offset_loss_weight=1.0,
                  device=args.device, workers=args.workers, preload=True, log_every=20)
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
    train(TrainConfig(out=cal, clip_len=1, batch=args.batch, steps=10**6, lr=1e-5, init=args.init, temporal=False,
                      seed=0, checkpoint_every=10**6, time_limit=args.calibrate_minutes, **common))
    done(cal, None)
    fps = frames_per_s(cal)
    steps_a = max(50, int(0.9 * fps * 60 * args.minutes_a / args.batch))
    print(f"calibration: {fps:.0f} frames/s -> phase A {steps_a} steps", flush=True)

    a = args.runs / "a"
    train(TrainConfig(out=a, clip_len=1, batch=args.batch, steps=steps_a, lr=args.lr_a, init=args.init,
                      temporal=False, seed=31, checkpoint_every=500, time_limit=1.1 * args.minutes_a, **common))
    done(a, "small-v9-frame.pt")

    steps_b = max(20, int(0.8 * frames_per_s(a) * 60 * args.minutes_b / args.batch))
    print(f"phase B {steps_b} steps", flush=True)
    b = args.runs / "b-joint"
    train(TrainConfig(out=b, clip_len=8, batch=args.batch // 8, steps=steps_b, lr=args.lr_joint,
                      init=str(a / "last.pt"), temporal=True, occlude=0.5, blur=0.3, seed=32, checkpoint_every=250,
                      time_limit=1.1 * args.minutes_b, **common))
    done(b, "small-v9.pt")


if __name__ == "__main__":
    main()
