"""Speed of the synthetic-data generator: rendered frames per second on one core.

`python -m posevid.data.bench` (or `posevid.data.bench.run()` from `make bench`): renders clips at
256x256 in this process, annotations and compositing included, video encoding excluded.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before numpy loads
    os.environ.setdefault(_var, "1")

import time  # noqa: E402

from posevid.data import appearance as A  # noqa: E402
from posevid.data.synth import SynthConfig, background_paths, compose_clip  # noqa: E402


def run(clips: int = 4, frames: int = 32, size: int = 256) -> dict:
    config = SynthConfig(num_clips=clips, num_frames=frames, width=size, height=size, seed=123)
    backgrounds = A.BackgroundPool(background_paths("train"))
    compose_clip(config, 10_000, backgrounds)  # warm-up: model load, mocap parsing, first photo
    t = time.perf_counter()
    people = 0
    for i in range(clips):
        _, anns, _ = compose_clip(config, i, backgrounds)
        people += len(anns[0])
    dt = time.perf_counter() - t
    return {"size": f"{size}x{size}", "frames": clips * frames, "people_per_clip": people / clips,
            "seconds": round(dt, 2), "frames_per_s": round(clips * frames / dt, 1)}


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    print(run())
