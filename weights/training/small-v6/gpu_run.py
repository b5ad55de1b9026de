"""How small-v6 was trained: one call of about nine minutes on a lent GPU (see README.md beside this file).

Three `posevid.train.train` runs in one process, so the training videos are decoded once and the
data-loading workers of every run share them:
  1. calibrate: a few seconds at the phase-A settings, to measure frames/s;
  2. phase A, per-frame DEKR from --init: as many steps as fit MINUTES_A (the cosine schedule ends on time);
  3. phase B, the ConvGRU over 8-frame clips with moving occluders and motion blur, from phase A's
     weights, in two variants: `b` trains the GRU alone (--freeze-frame-net), so its per-frame twin is
     exactly phase A; `b-joint` trains the whole network at a lower learning rate.
Each phase's logs and weights go to OUT as soon as it ends, the weights without optimiser (files
there are limited to 16 MB).

    python weights/training/small-v6/gpu_run.py --out $OUT --init weights/posevid_small.pt --data DIR [--data DIR ...]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
from pathlib import Path

import cv2
import torch

from posevid.data import readers
from posevid.train import TrainConfig, train


def frames_per_s(run: Path) -> float:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(r["frames_per_s"] for r in rows[2:] or rows)  # the first lines include warm-up


def export(run: Path, out: Path, weights: str | None) -> None:
    """The run's logs and, if named, its last.pt without optimiser state (loadable by `posevid --weights`)."""
    (out / "runs" / run.name).mkdir(parents=True, exist_ok=True)
    for name in ("metrics.jsonl", "config.json"):
        shutil.copy(run / name, out / "runs" / run.name / name)
    if weights:
        payload = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
        keep = {k: v for k, v in payload.items() if k not in ("optimizer", "scheduler", "torch_rng")}
        torch.save(keep, out / weights)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--init", required=True)
    ap.add_argument("--runs", type=Path, default=Path("/tmp/small-v6"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=64)  # frames per step in both phases
    ap.add_argument("--lr-a", type=float, default=1e-3)
    ap.add_argument("--lr-b", type=float, default=1e-3)
    ap.add_argument("--lr-joint", type=float, default=3e-4)
    ap.add_argument("--clip-b", type=int, default=8)
    ap.add_argument("--occlude", type=float, default=0.5)
    ap.add_argument("--blur", type=float, default=0.3)
    ap.add_argument("--minutes-a", type=float, default=4.6)
    ap.add_argument("--minutes-b", type=float, default=1.3)  # each variant
    ap.add_argument("--calibrate-minutes", type=float, default=0.3)
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
    train(TrainConfig(out=cal, clip_len=1, batch=args.batch, steps=10**6, lr=1e-5, init=args.init, temporal=False,
                      seed=0, checkpoint_every=10**6, time_limit=args.calibrate_minutes, **common))
    export(cal, args.out, None)
    fps = frames_per_s(cal)
    steps_a = max(50, int(0.9 * fps * 60 * args.minutes_a / args.batch))
    print(f"calibration: {fps:.0f} frames/s -> phase A {steps_a} steps", flush=True)

    a = args.runs / "a"
    train(TrainConfig(out=a, clip_len=1, batch=args.batch, steps=steps_a, lr=args.lr_a, init=args.init,
                      temporal=False, seed=9, checkpoint_every=500, time_limit=1.1 * args.minutes_a, **common))
    export(a, args.out, "small-v6-frame.pt")

    # Clips cost about what single frames do (the frozen variant skips most gradients, the joint one
    # back-propagates through 8 frames); the time limit ends a variant that runs slower.
    steps_b = max(20, int(0.8 * frames_per_s(a) * 60 * args.minutes_b / args.batch))
    print(f"phase B {steps_b} steps", flush=True)
    for name, freeze, lr, seed in (("b", True, args.lr_b, 10), ("b-joint", False, args.lr_joint, 11)):
        b = args.runs / name
        train(TrainConfig(out=b, clip_len=args.clip_b, batch=args.batch // args.clip_b, steps=steps_b, lr=lr,
                          init=str(a / "last.pt"), temporal=True, freeze_frame_net=freeze, occlude=args.occlude,
                          blur=args.blur, seed=seed, checkpoint_every=250, time_limit=1.1 * args.minutes_b, **common))
        export(b, args.out, f"small-v6{name[1:]}.pt")


if __name__ == "__main__":
    main()
