"""How small-v3 was trained: one call of about nine minutes on a lent GPU (see README.md beside this file).

Three `posevid.train.train` runs in one process, so the training videos are decoded once and the
data-loading workers of every run share them:
  1. calibrate: 30 s at the phase-A settings, to measure frames/s;
  2. phase A, per-frame DEKR: as many steps as fit MINUTES_A at that speed (the cosine schedule ends on time);
  3. phase B, the ConvGRU unrolled over 4-frame clips, started from phase A's weights.
Each phase's weights go to OUT as a checkpoint without optimiser (files there are limited to 16 MB).

    python weights/training/small-v3/gpu_run.py --out $OUT --init weights/training/small-v2/last.pt \
        --data DIR [--data DIR ...]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tarfile
from pathlib import Path

import cv2
import torch

from posevid.data import readers
from posevid.train import TrainConfig, train


def frames_per_s(run: Path) -> float:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(r["frames_per_s"] for r in rows[2:] or rows)  # the first lines include warm-up


def export(run: Path, dest: Path) -> None:
    """The run's last.pt without optimiser state: loadable by `posevid infer/eval --weights`."""
    payload = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    keep = {k: v for k, v in payload.items() if k not in ("optimizer", "scheduler", "torch_rng")}
    torch.save(keep, dest)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--init", required=True)
    ap.add_argument("--runs", type=Path, default=Path("/tmp/small-v3"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=64)  # frames per step in both phases
    ap.add_argument("--minutes-a", type=float, default=5.0)
    ap.add_argument("--minutes-b", type=float, default=2.0)
    ap.add_argument("--calibrate-minutes", type=float, default=0.5)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    args = ap.parse_args()

    torch.backends.cudnn.benchmark = True  # fixed input size
    cv2.setNumThreads(1)  # inherited by the forked data workers: one thread each, not one per core each
    readers.VIDEO_CACHE_BYTES = 24 << 30  # all training videos decoded once (about 6 GB)
    common = dict(data=tuple(args.data), model="small", input_size=160, zoom=(1.3, 2.8), offset_loss_weight=1.0,
                  device=args.device, workers=args.workers, preload=True, log_every=20)
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.runs, ignore_errors=True)

    cal = args.runs / "calibrate"
    train(TrainConfig(out=cal, clip_len=1, batch=args.batch, steps=10**6, lr=1e-4, init=args.init, temporal=False,
                      seed=0, checkpoint_every=10**6, time_limit=args.calibrate_minutes, **common))
    fps = frames_per_s(cal)
    steps_a = max(50, int(0.9 * fps * 60 * args.minutes_a / args.batch))
    print(f"calibration: {fps:.0f} frames/s -> phase A {steps_a} steps", flush=True)

    a = args.runs / "a"
    train(TrainConfig(out=a, clip_len=1, batch=args.batch, steps=steps_a, lr=2e-3, init=args.init, temporal=False,
                      seed=6, checkpoint_every=500, time_limit=1.1 * args.minutes_a, **common))
    export(a, args.out / "small-v3-frame.pt")

    # The GRU runs on every frame and back-propagates through 4, so count on somewhat fewer frames/s.
    clip = 4
    steps_b = max(20, int(0.75 * frames_per_s(a) * 60 * args.minutes_b / args.batch))
    print(f"phase B {steps_b} steps", flush=True)
    b = args.runs / "b"
    train(TrainConfig(out=b, clip_len=clip, batch=args.batch // clip, steps=steps_b, lr=5e-4, init=str(a / "last.pt"),
                      temporal=True, seed=7, checkpoint_every=250, time_limit=1.1 * args.minutes_b, **common))
    export(b, args.out / "small-v3.pt")

    with tarfile.open(args.out / "logs.tar.gz", "w:gz") as tar:
        for run in (cal, a, b):
            for name in ("metrics.jsonl", "config.json"):
                tar.add(run / name, arcname=f"{run.name}/{name}")


if __name__ == "__main__":
    main()
