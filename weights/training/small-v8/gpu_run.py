"""Session 8's GPU call (see README.md beside this file): the realism-factor comparison, then small-v6
fine-tuned on data with props.

1. Comparison: five per-frame `small` models trained from scratch for the same number of steps,
   each on 400 clips of one data variant (`--root`/VARIANT, all made with the same seed). `full` has
   every realism factor; each other variant lacks one: props, photos, occluders, motion capture.
2. Fine-tune from --init (small-v6): phase `a`, per-frame, on every variant with photos; then `b-joint`,
   the whole network with its GRU on degraded 8-frame clips, as small-v6's last phase.

At most 8 files come back from the machine: each run's weights (without optimiser state) go to OUT
as soon as it ends, and its logs into OUT/logs.tar, rewritten after each run.

    python weights/training/small-v8/gpu_run.py --out $OUT --root DIR --init weights/posevid_small.pt
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import tarfile
from pathlib import Path

import cv2
import torch

from posevid.data import readers
from posevid.train import TrainConfig, train

# small-v6's recipe holds the helpers (log copying, weights without optimiser state); reused, not copied.
_spec = importlib.util.spec_from_file_location("small_v6_run", Path(__file__).resolve().parents[1] / "small-v6/gpu_run.py")
small_v6 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(small_v6)
export, frames_per_s = small_v6.export, small_v6.frames_per_s

VARIANTS = ("full", "noprops", "nophotos", "noocc", "proc")


def first_clips(folder: Path, n: int) -> Path:
    """An annotation file beside folder/annotations.json holding its first n videos only."""
    data = json.loads((folder / "annotations.json").read_text())
    keep = {v["id"] for v in data["videos"][:n]}
    images = [im for im in data["images"] if im["video_id"] in keep]
    ids = {im["id"] for im in images}
    data.update(videos=data["videos"][:n], images=images,
                annotations=[a for a in data["annotations"] if a["image_id"] in ids])
    out = folder / f"first{n}.json"
    out.write_text(json.dumps(data))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--root", type=Path, required=True)  # holds the variant folders
    ap.add_argument("--init", required=True)
    ap.add_argument("--runs", type=Path, default=Path("/tmp/small-v8"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=64)  # frames per step everywhere
    ap.add_argument("--compare-clips", type=int, default=400)
    ap.add_argument("--compare-steps", type=int, default=900)
    ap.add_argument("--compare-minutes", type=float, default=0.9)  # guard; the steps normally end first
    ap.add_argument("--lr-compare", type=float, default=2e-3)
    ap.add_argument("--lr-a", type=float, default=5e-4)
    ap.add_argument("--lr-joint", type=float, default=3e-4)
    ap.add_argument("--minutes-a", type=float, default=2.3)
    ap.add_argument("--minutes-b", type=float, default=1.2)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    args = ap.parse_args()

    torch.backends.cudnn.benchmark = True  # fixed input size
    cv2.setNumThreads(1)  # inherited by the forked data workers
    readers.VIDEO_CACHE_BYTES = 40 << 30  # every variant decoded once (about 11 GB)
    common = dict(model="small", input_size=160, zoom=(1.3, 2.8), offset_loss_weight=1.0, device=args.device,
                  workers=args.workers, preload=True, log_every=20)
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.runs, ignore_errors=True)
    stage = args.runs / "stage"

    def done(run: Path, weights: str) -> None:
        export(run, stage, weights)
        shutil.move(str(stage / weights), args.out / weights)
        with tarfile.open(args.out / "logs.tar", "w") as tar:
            tar.add(stage / "runs", arcname="runs")

    fps = []
    for v in VARIANTS:
        folder = args.root / v
        data = first_clips(folder, args.compare_clips) if v == "full" else folder
        run = args.runs / f"scratch-{v}"
        train(TrainConfig(out=run, data=(str(data),), clip_len=1, batch=args.batch, steps=args.compare_steps,
                          lr=args.lr_compare, temporal=False, seed=21, checkpoint_every=10**6,
                          time_limit=args.compare_minutes, **common))
        done(run, f"scratch-{v}.pt")
        fps.append(frames_per_s(run))

    tune_data = tuple(str(args.root / v) for v in VARIANTS if v != "nophotos")
    steps_a = max(50, int(0.9 * min(fps) * 60 * args.minutes_a / args.batch))
    print(f"comparison at {min(fps):.0f}-{max(fps):.0f} frames/s -> phase a {steps_a} steps", flush=True)
    a = args.runs / "a"
    train(TrainConfig(out=a, data=tune_data, clip_len=1, batch=args.batch, steps=steps_a, lr=args.lr_a,
                      init=args.init, temporal=False, seed=22, checkpoint_every=500,
                      time_limit=1.1 * args.minutes_a, **common))
    done(a, "small-v8-frame.pt")

    steps_b = max(20, int(0.8 * frames_per_s(a) * 60 * args.minutes_b / args.batch))
    b = args.runs / "b-joint"
    train(TrainConfig(out=b, data=tune_data, clip_len=8, batch=args.batch // 8, steps=steps_b, lr=args.lr_joint,
                      init=str(a / "last.pt"), temporal=True, occlude=0.5, blur=0.3, seed=23, checkpoint_every=250,
                      time_limit=1.1 * args.minutes_b, **common))
    done(b, "small-v8.pt")


if __name__ == "__main__":
    main()
