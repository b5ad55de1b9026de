"""Training: DEKR losses on T-frame clips, the ConvGRU unrolled over each clip (state reset at its start).

The training stream is a pure function of (seed, sample index), so `--resume` continues exactly
(model, optimiser, schedule, step and data), on one process or under `torchrun` (DistributedDataParallel,
gloo on CPU / NCCL on GPU, a disjoint slice of the stream per rank, only rank 0 writes).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from posevid.config import DEFAULT_MODEL, ModelConfig, model_config
from posevid.errors import PosevidError
from posevid.frames import STRIDE
from posevid.model.checkpoint import load_state, read_weights, save_checkpoint
from posevid.model.dekr import PoseHeads, build_model


@dataclass
class TrainConfig:
    out: Path  # run folder: checkpoints (last.pt), metrics.jsonl, config.json
    data: tuple[str, ...]  # annotation files, or folders holding annotations.json (synthetic, PoseTrack-style)
    model: str = DEFAULT_MODEL
    image_root: str | None = None  # where COCO-style files' image paths start (default: the file's folder)
    mix: tuple[float, ...] = ()  # share of clips drawn from each data source; () = in proportion to their videos
    clip_len: int = 4  # T frames per clip; the GRU is unrolled (and back-propagated) over them
    batch: int = 8  # clips per step and process
    steps: int = 2000
    lr: float = 1e-3  # Adam; linear warm-up for 2% of the steps, then cosine decay to 0
    weight_decay: float = 0.0
    input_size: int = 256  # square training crop
    zoom: tuple[float, float] = (0.75, 1.35)  # scale range (log-uniform) after fitting the frame into the crop
    person_zoom: float = 0.0  # chance per clip of a crop centred on one labelled person instead (readers.Augment)
    person_size: tuple[float, float] = (0.3, 1.2)  # that person's keypoint box, fraction of the crop (log-uniform)
    init: str | None = None  # official DEKR or posevid checkpoint to start from, or "imagenet" (effnet's encoder)
    temporal: bool = True
    freeze_frame_net: bool = False  # train only the ConvGRU; the per-frame network (BN statistics too) stays fixed
    freeze_encoder: int = 0  # effnet: the stem and this many leading encoder blocks stay fixed, BN statistics too
    encoder_lr: float = 1.0  # effnet: the encoder's learning rate as a fraction of lr
    occlude: float = 0.0  # chance per clip of a sliding occluder (context the GRU can use)
    blur: float = 0.0  # chance per clip of one motion-blurred frame
    color: float = 0.0  # chance per clip of other saturation, contrast and brightness (a fifth grey)
    frame_step: int = 1  # clips skip up to frame_step - 1 frames between steps (lower frame rates)
    offset_loss_weight: float = 0.03  # DEKR's COCO setting
    device: str = "cpu"
    amp: bool = False
    workers: int = 0
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 10
    preload: bool = False  # decode all training videos before the workers start (they share them)
    time_limit: float | None = None  # minutes; then checkpoint and stop early, resumable (fits runs into a session)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.data = tuple(str(d) for d in self.data)
        if not self.data:
            raise PosevidError("no training data: pass --data DIR_OR_FILE")
        for name in ("zoom", "person_size"):
            lo_hi = tuple(float(z) for z in getattr(self, name))
            setattr(self, name, lo_hi)
            if len(lo_hi) != 2 or not 0 < lo_hi[0] <= lo_hi[1]:
                raise PosevidError(f"--{name.replace('_', '-')} must be MIN,MAX with 0 < MIN <= MAX, got {lo_hi}")
        self.mix = tuple(float(m) for m in self.mix)
        if self.mix and (len(self.mix) != len(self.data) or min(self.mix) < 0 or sum(self.mix) <= 0):
            raise PosevidError(f"--mix needs one non-negative share per --data ({len(self.data)}), not all zero; "
                               f"got {','.join(f'{m:g}' for m in self.mix)}")
        if self.input_size % 32:
            raise PosevidError(f"--input-size must be a multiple of 32, got {self.input_size}")
        if not self.offset_loss_weight > 0:
            raise PosevidError(f"--offset-weight must be positive, got {self.offset_loss_weight}")
        for name in ("clip_len", "batch", "steps", "checkpoint_every", "log_every", "frame_step"):
            if getattr(self, name) < 1:
                raise PosevidError(f"--{name.replace('_', '-')} must be at least 1")
        for name in ("occlude", "blur", "color", "person_zoom"):
            if not 0 <= getattr(self, name) <= 1:
                raise PosevidError(f"--{name.replace('_', '-')} is a probability in [0, 1], got {getattr(self, name)}")
        if self.freeze_frame_net and not self.temporal:
            raise PosevidError("--freeze-frame-net trains only the ConvGRU: it cannot go with --no-temporal")
        if not 0 <= self.freeze_encoder <= 16:
            raise PosevidError(f"--freeze-encoder counts encoder blocks (0-16), got {self.freeze_encoder}")
        if not self.encoder_lr >= 0:
            raise PosevidError(f"--encoder-lr is a fraction of --lr (>= 0), got {self.encoder_lr}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise PosevidError(f"--time-limit must be positive, got {self.time_limit}")


# ------------------------------------------------------------------------------------------- losses


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """DEKR's masked MSE: weight is 1 on people, 0.1 on background, 0 where ignored. Shapes (..., K+1, h, w)."""
    return ((pred - target) ** 2 * weight).mean()


def offset_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, beta: float = 1 / 9) -> torch.Tensor:
    """Smooth-L1 of the offsets weighted by 1/diagonal of each person's box, normalised by the number
    of weighted entries (DEKR). Shapes (..., 2K, h, w)."""
    loss = F.smooth_l1_loss(pred, target, reduction="none", beta=beta) * weight
    return loss.sum() / (weight > 0).sum().clamp(min=1)


# --------------------------------------------------------------------------------------------- data


class ClipStream(Dataset):
    """Item i: one augmented training clip with its DEKR targets, a pure function of (seed, i)."""

    def __init__(self, sources: list, seed: int, mix: tuple[float, ...] = ()):
        self.sources = sources  # ClipSamplers, drawn in proportion to `mix`, or else to their number of videos
        sizes = np.array([len(s) for s in sources], dtype=np.float64)
        if sizes.sum() == 0:
            raise PosevidError("the training data holds no annotated video or image")
        share = np.where(sizes > 0, np.array(mix, np.float64), 0.0) if mix else sizes
        if share.sum() == 0:
            raise PosevidError("--mix gives every source that holds videos a zero share")
        self.p = share / share.sum()
        self.seed = seed

    def __len__(self) -> int:
        return 2 ** 62

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        from posevid.data.targets import downsample_mask, encode_dekr

        rng = np.random.default_rng([self.seed, i])
        sampler = self.sources[int(rng.choice(len(self.sources), p=self.p))]
        clip = sampler.sample(rng)
        t, h, w = clip.frames.shape[:3]
        out_size = (h // STRIDE, w // STRIDE)
        targets = [encode_dekr(kp, out_size, stride=STRIDE, ignore=downsample_mask(ign, STRIDE, out_size), full=full)
                   for kp, full, ign in zip(clip.keypoints, clip.full_keypoints, clip.ignore)]
        rgb = torch.from_numpy(np.ascontiguousarray(clip.frames[..., ::-1])).permute(0, 3, 1, 2).float()  # 0-255
        stack = lambda name: torch.from_numpy(np.stack([getattr(x, name) for x in targets]))  # noqa: E731
        return {"images": rgb, "heatmaps": stack("heatmaps"), "heatmap_weight": stack("heatmap_weight"),
                "offsets": stack("offsets"), "offset_weight": stack("offset_weight")}


class StepSampler(Sampler):
    """Indices of the stream for steps [start, steps): each rank takes its own `batch` per step."""

    def __init__(self, start: int, steps: int, batch: int, rank: int = 0, world: int = 1):
        self.start, self.steps, self.batch, self.rank, self.world = start, steps, batch, rank, world

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start, self.steps):
            base = (step * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)

    def __len__(self) -> int:
        return (self.steps - self.start) * self.batch


def load_sources(cfg: TrainConfig) -> list:
    from posevid.data.readers import Augment, ClipSampler, read_annotations

    augment = Augment(out_width=cfg.input_size, out_height=cfg.input_size, scale=cfg.zoom, occlude=cfg.occlude,
                      blur=cfg.blur, color=cfg.color, frame_step=cfg.frame_step, person_zoom=cfg.person_zoom,
                      person_size=cfg.person_size)
    sources = []
    for d in cfg.data:
        path = Path(d)
        ann = path / "annotations.json" if path.is_dir() else path
        if not ann.is_file():
            raise PosevidError(f"{d}: no annotation file (expected a .json file or a folder with annotations.json)")
        root = cfg.image_root if (cfg.image_root and not path.is_dir()) else str(ann.parent)
        sources.append(ClipSampler(read_annotations(str(ann)), root, cfg.clip_len, augment))
    return sources


# ---------------------------------------------------------------------------------------- training


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "Distributed":
        """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; without them this is a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def main(self) -> bool:
        return self.rank == 0


def lr_factor(step: int, steps: int) -> float:
    warm = max(1, steps // 50)
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of the parameters (not BN buffers): equal across DDP ranks after a synchronous step."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train(cfg: TrainConfig, resume: bool = False, on_step: Callable[[int, dict], None] | None = None) -> Path:
    """Runs (or resumes) a training run; returns the path of the last checkpoint."""
    dist = Distributed.from_env()
    device = torch.device(cfg.device if cfg.device != "cuda" else f"cuda:{dist.local_rank}")
    if dist.world > 1:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    torch.manual_seed(cfg.seed)
    last = cfg.out / "last.pt"

    saved = _resume_checkpoint(last) if resume else None
    imagenet = cfg.init == "imagenet"
    init = _init_weights(cfg.init, cfg.model) if cfg.init and not imagenet and not saved else None
    # A resumed run, or one that starts from a trained GRU, keeps the architecture it was saved with (e.g. the
    # GRU's floor), whatever MODELS says now.
    model = build_model(saved[1] if saved else init[1] if init else model_config(cfg.model), temporal=cfg.temporal)
    encoder = getattr(model, "encoder", None)
    if (imagenet or cfg.freeze_encoder or cfg.encoder_lr != 1.0) and encoder is None:
        raise PosevidError(f"--init imagenet, --freeze-encoder and --encoder-lr need a model with a pretrained "
                           f"encoder (effnet), not {model.cfg.name}")
    frozen = frozen_encoder_modules(encoder, cfg.freeze_encoder) if encoder is not None else []
    for module in frozen:
        module.requires_grad_(False)
    if cfg.freeze_frame_net:
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("temporal."))
    encoder_params = {id(p) for p in encoder.parameters()} if encoder is not None else set()
    groups = [{"params": [p for p in model.parameters() if p.requires_grad and id(p) not in encoder_params]},
              {"params": [p for p in model.parameters() if p.requires_grad and id(p) in encoder_params],
               "lr": cfg.lr * cfg.encoder_lr}]
    optimizer = torch.optim.Adam([g for g in groups if g["params"]], lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg.steps))
    start = 0
    if saved:
        state, _, payload = saved
        _check_same_recipe(payload.get("train_config") or {}, cfg, last)
        load_state(model, state, str(last))
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        torch.set_rng_state(payload["torch_rng"])
        start = int(payload["step"])
    elif init:
        load_state(model, init[0], cfg.init)  # an official DEKR file: the GRU keeps its identity start
    elif imagenet:
        model.load_imagenet()
    model.to(device).train()
    for module in frozen:  # fixed ImageNet layers keep their BN statistics too
        module.eval()
    if cfg.freeze_frame_net:  # BN statistics of the fixed network stay as they were, too
        for name, module in model.named_children():
            module.train(name == "temporal")
    net = model
    if dist.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    if dist.main:
        cfg.out.mkdir(parents=True, exist_ok=True)
        (cfg.out / "config.json").write_text(json.dumps(asdict(cfg), indent=1, default=str))
    sources = load_sources(cfg)
    if cfg.preload:
        from posevid.data.readers import preload_videos

        for source in sources:
            preload_videos(source.root, source.videos, threads=os.cpu_count() or 1)
    loader = DataLoader(ClipStream(sources, cfg.seed, cfg.mix), batch_size=cfg.batch,
                        sampler=StepSampler(start, cfg.steps, cfg.batch, dist.rank, dist.world),
                        num_workers=cfg.workers, persistent_workers=cfg.workers > 0,
                        pin_memory=device.type == "cuda")
    amp_dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp and device.type == "cuda")
    log = open(cfg.out / "metrics.jsonl", "a") if dist.main else None
    t_last, frames_since = time.perf_counter(), 0
    deadline = None if cfg.time_limit is None else t_last + 60 * cfg.time_limit
    step = start
    try:
        for step, batch in enumerate(loader, start=start):
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with torch.autocast(device.type, dtype=amp_dtype, enabled=cfg.amp):
                out = net(batch["images"])  # (B, T, 3, H, W): a clip, GRU state None at its start
            lh = heatmap_loss(out.heatmaps.float(), batch["heatmaps"], batch["heatmap_weight"])
            lo = offset_loss(out.offsets.float(), batch["offsets"], batch["offset_weight"])
            loss = lh + cfg.offset_loss_weight * lo
            if not torch.isfinite(loss):
                raise PosevidError(f"training diverged at step {step + 1} (loss {loss.item()}); lower --lr")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            frames_since += batch["images"].shape[0] * batch["images"].shape[1] * dist.world
            done = step + 1
            out_of_time = deadline is not None and _any_rank(time.perf_counter() > deadline, device, dist)
            if dist.main and (done % cfg.checkpoint_every == 0 or done == cfg.steps or out_of_time):
                _save(last, model, optimizer, scheduler, done, cfg)
            if dist.main and (done % cfg.log_every == 0 or done == cfg.steps or out_of_time):
                now = time.perf_counter()
                record = {"step": done, "loss": loss.item(), "loss_heatmap": lh.item(), "loss_offset": lo.item(),
                          "lr": scheduler.get_last_lr()[0], "frames_per_s": frames_since / (now - t_last),
                          "time": time.time()}
                t_last, frames_since = now, 0
                log.write(json.dumps(record) + "\n")
                log.flush()
                if on_step is not None:
                    on_step(done, record)
            if out_of_time:
                break
    finally:
        if log is not None:
            log.close()
    if dist.world > 1:
        print(f"rank {dist.rank}: weights sha256 {weights_fingerprint(model)}", flush=True)
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return last


def _any_rank(flag: bool, device: torch.device, dist: Distributed) -> bool:
    """True on every rank if it is true on one, so all ranks stop at the same step."""
    if dist.world == 1:
        return flag
    t = torch.tensor([float(flag)], device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item())


# What a resumed run must share with the run it continues (paths, workers and logging may change).
RECIPE_FIELDS = ("model", "mix", "clip_len", "batch", "steps", "lr", "weight_decay", "input_size", "zoom",
                 "person_zoom", "person_size", "temporal", "freeze_frame_net", "freeze_encoder", "encoder_lr",
                 "occlude", "blur", "color", "frame_step", "offset_loss_weight", "seed")


def frozen_encoder_modules(encoder: torch.nn.Module, blocks: int) -> list[torch.nn.Module]:
    """The stem and the first `blocks` MBConv blocks of an EfficientNet encoder (none for 0)."""
    if blocks == 0:
        return []
    return [encoder._conv_stem, encoder._bn0, *encoder._blocks[:blocks]]


def _resume_checkpoint(last: Path) -> tuple[dict[str, torch.Tensor], ModelConfig, dict]:
    """(model state, model config, payload) of a training checkpoint that --resume can continue."""
    if not last.is_file():
        raise PosevidError(f"--resume: no checkpoint at {last}")
    state, model_cfg, payload = read_weights(last)
    if "optimizer" not in payload or model_cfg is None:
        raise PosevidError(f"{last}: not a training checkpoint (no optimiser state)")
    return state, model_cfg, payload


def _init_weights(path: str, model_name: str) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """(state, config to build) for --init: the file's own config when it carries GRU weights, which only
    mean what they meant with that config; otherwise today's config of `model_name`."""
    state, init_cfg, _ = read_weights(path)
    if init_cfg is not None and init_cfg.name != model_name:
        raise PosevidError(f"{path}: weights are for model {init_cfg.name}, not {model_name}")
    has_gru = init_cfg is not None and any(k.startswith("temporal.") for k in state)
    return state, init_cfg if has_gru else model_config(model_name)


def saved_recipe(out: Path) -> dict:
    """The recipe (RECIPE_FIELDS, data, image_root) of the run in OUT, as its last.pt recorded it."""
    saved = _resume_checkpoint(Path(out) / "last.pt")[2].get("train_config") or {}
    return {k: saved[k] for k in (*RECIPE_FIELDS, "data", "image_root") if k in saved}


def _check_same_recipe(saved: dict, cfg: TrainConfig, where: Path) -> None:
    for name in RECIPE_FIELDS:
        if name in saved and saved[name] != json.loads(json.dumps(getattr(cfg, name))):  # tuples were saved as lists
            raise PosevidError(f"--resume: {where} was trained with {name}={saved[name]!r}, "
                               f"not {getattr(cfg, name)!r}; pass the same settings to continue it")


def _save(path: Path, model: PoseHeads, optimizer, scheduler, step: int, cfg: TrainConfig) -> None:
    save_checkpoint(path, model, optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), step=step,
                    torch_rng=torch.get_rng_state(), train_config=json.loads(json.dumps(asdict(cfg), default=str)))
