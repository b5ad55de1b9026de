"""The `posevid` command: parses arguments and calls the library; torch is imported lazily."""
from __future__ import annotations

import glob
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from posevid.config import DEFAULT_MODEL, MODELS, POSE_SCORES
from posevid.data.cli import app as data_app
from posevid.errors import PosevidError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Human pose estimation in video: DEKR with a ConvGRU carrying context across frames.")

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".mts"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}  # posevid.images.IMAGE_SUFFIXES


@app.callback()
def _root() -> None:
    """Human pose estimation in video: DEKR with a ConvGRU carrying context across frames."""


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


PRECISION_HELP = ("Arithmetic of the backbone: bf16 is faster on CPUs that compute it natively, with slightly "
                  "different outputs; auto: bf16 on such CPUs, else fp32.")


PoseScore = Enum("PoseScore", {s.replace("-", "_"): s for s in POSE_SCORES}, type=str)
POSE_SCORE_HELP = ("What a pose's score is: center-keypoints (DEKR's: center peak × mean keypoint score) or "
                   "center (the center peak alone) [default: the weights'].")
THRESHOLD_HELP = "Minimum pose score reported [default: the weights', 0.2 unless they store another]."
SCALES_HELP = ("Multi-scale test: input sizes as factors of the input size, largest first, e.g. 1,0.5: each "
               "person comes from the largest scale that sees it under 220 px (for people close to the camera; "
               "each scale costs its pixels) [default: 1].")


class Format(str, Enum):
    jsonl = "jsonl"
    coco = "coco"


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def expand_inputs(items: list[str]) -> list[tuple[str, Path | None, str | None]]:
    """Each argument → (shown name, video or image path or None, error or None). Folders give their
    videos and images (sorted); patterns are expanded here too, so quoted globs work as shell globs."""
    out: list[tuple[str, Path | None, str | None]] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            media = VIDEO_SUFFIXES | IMAGE_SUFFIXES
            videos = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in media)
            if not videos:
                out.append((item, None, f"{item}: folder holds no video or image files"))
            out += [(str(v), v, None) for v in videos]
        elif p.exists():
            out.append((item, p, None))
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item) if Path(m).is_file())
            if not matches:
                out.append((item, None, f"{item}: pattern matches no file"))
            out += [(str(m), m, None) for m in matches]
        else:
            out.append((item, None, f"{item}: no such file or folder"))
    return out


def resolve_weights(model: str, weights: Optional[Path]) -> Path:
    """--weights, else $POSEVID_WEIGHTS, else the weights shipped for the model."""
    if weights is not None:
        return weights
    env = os.environ.get("POSEVID_WEIGHTS")
    if env:
        return Path(env)
    from posevid.model.checkpoint import SHIPPED_WEIGHTS, shipped_weights

    if model in MODELS and model not in SHIPPED_WEIGHTS:
        raise PosevidError(f"no weights are shipped for model {model!r} (only for {', '.join(SHIPPED_WEIGHTS)}); "
                           "pass --weights PATH (a posevid or official DEKR checkpoint)")
    return shipped_weights(model)  # refuses unknown names


def check_input_size(size: int | None) -> None:
    if size is not None and (size < 32 or size % 32):
        raise PosevidError(f"--input-size must be a positive multiple of 32, got {size}")


def parse_scales(text: str | None) -> tuple[float, ...]:
    """--scales → factors, positive and decreasing."""
    if text is None:
        return (1.0,)
    error = "--scales takes positive, decreasing factors such as 1,0.5"
    scales = _numbers(text, error)
    if any(not s > 0 for s in scales) or any(a <= b for a, b in zip(scales, scales[1:])):
        raise PosevidError(f"{error}, got {text!r}")
    return scales


@app.command()
def infer(
    inputs: Annotated[list[str], typer.Argument(help="Videos or images, folders of them, or glob patterns.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("posevid-out"),
    model: Annotated[Optional[str], typer.Option(help=f"{', '.join(MODELS)} [default: {DEFAULT_MODEL}, or what "
                                                      "the weights file says]")] = None,
    weights: Annotated[Optional[Path], typer.Option(help="posevid checkpoint or official DEKR .pth.")] = None,
    device: Annotated[Device, typer.Option(help="Where the network runs.")] = Device.auto,
    precision: Annotated[Precision, typer.Option(help=PRECISION_HELP)] = Precision.auto,
    no_video: Annotated[bool, typer.Option("--no-video", help="Write keypoints only (no annotated video or "
                                                              "image).")] = False,
    no_temporal: Annotated[bool, typer.Option("--no-temporal", help="Per-frame DEKR: skip the ConvGRU.")] = False,
    threshold: Annotated[Optional[float], typer.Option(help=THRESHOLD_HELP)] = None,
    pose_score: Annotated[Optional[PoseScore], typer.Option(help=POSE_SCORE_HELP)] = None,
    flip: Annotated[bool, typer.Option("--flip", help="Flip test: average with the mirrored frame (2× slower).")] = False,
    input_size: Annotated[Optional[int], typer.Option(help="Shorter input side in pixels, multiple of 32 "
                                                           "[default: the model's].")] = None,
    stride: Annotated[int, typer.Option(help="Run the network on every N-th frame; frames between repeat "
                                             "the last poses (marked inferred=false).")] = 1,
    batch: Annotated[Optional[int], typer.Option(help="Frames per network call (the GRU still steps frame "
                                                      "by frame) [default: the model's, 2 for small and lite, else 1].")]
    = None,
    start_frame: Annotated[int, typer.Option(help="First frame to process.")] = 0,
    max_frames: Annotated[Optional[int], typer.Option(help="Process at most N frames.")] = None,
    skip_existing: Annotated[bool, typer.Option("--skip-existing", help="Skip inputs whose outputs exist.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from an interrupted run's .partial "
                                                          "keypoints file.")] = False,
    format: Annotated[Format, typer.Option("--format", help="jsonl, or coco to also write COCO results.")]
    = Format.jsonl,
    snap: Annotated[Optional[float], typer.Option(help="Move keypoints to heatmap peaks within SNAP × pose "
                                                       "size; 0: DEKR's decoding [default: the weights'].")] = None,
    scales: Annotated[Optional[str], typer.Option(help=SCALES_HELP)] = None,
) -> None:
    """Estimate poses in videos and images: writes OUT/<name>.pose.jsonl and an annotated OUT/<name>.pose.mp4
    (for an image OUT/<name>.pose.jpg, .png, ...: the input's format)."""
    from rich.console import Console

    _interrupt_on_sigterm()
    console = Console(stderr=True)
    targets = expand_inputs(inputs)
    stems: dict[str, str] = {}
    for i, (name, path, err) in enumerate(targets):
        if path is not None and err is None:
            if path.stem in stems:  # two inputs would write the same outputs
                targets[i] = (name, None, f"{name}: has the same name as {stems[path.stem]}; outputs would collide")
            stems.setdefault(path.stem, name)
    from posevid.images import is_image
    from posevid.infer import InferOptions, infer_image, infer_video
    from posevid.outputs import check_writable_dir, sha256_file
    from posevid.predict import PredictConfig

    try:
        check_input_size(input_size)
        check_writable_dir(out)
        path = resolve_weights(model or DEFAULT_MODEL, weights)
        predictor = load_predictor(model, path, device, not no_temporal,
                                   PredictConfig(threshold=threshold, flip=flip, input_size=input_size,
                                                 snap_radius=snap, precision=precision.value,
                                                 pose_score=pose_score and pose_score.value,
                                                 scales=parse_scales(scales)))
        header = {"model": predictor.model.cfg.name, "weights": str(path), "weights_sha256": sha256_file(path),
                  "temporal": not no_temporal, "flip": flip, "input_size": predictor.input_size,
                  "scales": list(predictor.config.scales),
                  "snap_radius": predictor.snap_radius, "pose_score": predictor.pose_score,
                  "threshold": predictor.threshold, "precision": predictor.precision}
        opts = InferOptions(out_dir=out, write_video=not no_video, coco=format == Format.coco, stride=stride,
                            batch=batch or predictor.model.cfg.infer_batch, start_frame=start_frame,
                            max_frames=max_frames, skip_existing=skip_existing, resume=resume, header=header)
    except PosevidError as e:
        raise fail(str(e)) from None

    failures = 0
    for name, path, err in targets:
        if err is None:
            try:
                with _progress(console, name) as on_frame:
                    r = (infer_image if is_image(path) else infer_video)(path, predictor, opts, on_frame)
            except PosevidError as e:
                err = str(e)
            except KeyboardInterrupt:
                typer.echo(f"interrupted: {name} (rerun with --resume to continue)", err=True)
                raise typer.Exit(130) from None
        if err is not None:
            failures += 1
            typer.echo(f"FAILED {err}", err=True)
        elif r.skipped:
            typer.echo(f"skipped {name}: outputs exist")
        else:
            outputs = ", ".join(str(p) for p in (r.keypoints, r.video, r.image, r.coco) if p is not None)
            typer.echo(f"ok {name}: {r.frames} frames, {r.fps:.1f} frames/s, up to {r.max_people} people -> {outputs}")
    raise typer.Exit(1 if failures else 0)


def _numbers(text: str, error: str) -> tuple[float, ...]:
    """The comma-separated numbers of an option's value; PosevidError(`error`, got ...) otherwise."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise PosevidError(f"{error}, got {text!r}") from None


@app.command()
def train(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Run folder: last.pt, metrics.jsonl, config.json.")],
    data: Annotated[Optional[list[str]], typer.Option("--data", help="Annotation file or folder with "
                                                      "annotations.json (synthetic / PoseTrack-style / COCO); "
                                                      "repeatable. Required unless --resume.")] = None,
    mix: Annotated[Optional[str], typer.Option(help="Share of clips from each --data, e.g. 0.7,0.3 "
                                                    "[default: in proportion to their videos].")] = None,
    model: Annotated[str, typer.Option(help="Architecture to train.")] = DEFAULT_MODEL,
    clip_len: Annotated[int, typer.Option(help="Frames per clip; the GRU is unrolled over them.")] = 4,
    steps: Annotated[int, typer.Option(help="Optimiser steps in all.")] = 2000,
    batch: Annotated[int, typer.Option(help="Clips per step (per process).")] = 8,
    lr: Annotated[float, typer.Option(help="Adam learning rate (warm-up, then cosine).")] = 1e-3,
    input_size: Annotated[int, typer.Option(help="Square training crop, multiple of 32.")] = 256,
    zoom: Annotated[str, typer.Option(help="MIN,MAX scale augmentation (log-uniform) after fitting each "
                                           "frame into the crop; above 1 zooms in on people.")] = "0.75,1.35",
    person_zoom: Annotated[float, typer.Option(help="Chance per clip that the crop centres on one labelled person, "
                                                    "its keypoint box --person-size of the crop, instead of fitting "
                                                    "the whole frame (people in wide photos and groups).")] = 0.0,
    person_size: Annotated[str, typer.Option(help="MIN,MAX size (log-uniform) of --person-zoom's person: the "
                                                  "longer side of its keypoint box as a fraction of the crop.")]
    = "0.3,1.2",
    offset_weight: Annotated[float, typer.Option(help="Weight of the offset loss against the heatmap loss "
                                                       "(DEKR's COCO value 0.03 assumes a pretrained backbone).")] = 0.03,
    init: Annotated[Optional[str], typer.Option(help="Start from an official DEKR or posevid checkpoint, or "
                                                     "'imagenet': effnet's encoder from ImageNet (needs "
                                                     "posevid[imagenet]).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue OUT/last.pt exactly; the recipe (data, "
                                                          "model, steps, lr, ...) comes from the checkpoint.")] = False,
    no_temporal: Annotated[bool, typer.Option("--no-temporal", help="Train the per-frame network.")] = False,
    freeze_frame_net: Annotated[bool, typer.Option("--freeze-frame-net", help="Train only the ConvGRU on top of "
                                                   "fixed --init weights (their per-frame twin stays exact).")] = False,
    freeze_encoder: Annotated[int, typer.Option(help="effnet: keep the stem and this many leading encoder "
                                                     "blocks (of 16) fixed, BN statistics too.")] = 0,
    encoder_lr: Annotated[float, typer.Option(help="effnet: the encoder's learning rate as a fraction of "
                                                   "--lr.")] = 1.0,
    occlude: Annotated[float, typer.Option(help="Chance per clip of an occluder sliding across a person.")] = 0.0,
    blur: Annotated[float, typer.Option(help="Chance per clip of one motion-blurred frame.")] = 0.0,
    color: Annotated[float, typer.Option(help="Chance per clip of other saturation, contrast and brightness "
                                              "(a fifth of them grey).")] = 0.0,
    frame_step: Annotated[int, typer.Option(help="Clips take every s-th frame, s drawn from 1..FRAME_STEP, so "
                                                 "the GRU sees lower frame rates than the data's.")] = 1,
    image_root: Annotated[Optional[str], typer.Option(help="Folder COCO image paths start from.")] = None,
    device: Annotated[Device, typer.Option(help="Where to train.")] = Device.auto,
    amp: Annotated[bool, typer.Option("--amp", help="Mixed precision (bfloat16 on CPU, float16 on GPU).")] = False,
    workers: Annotated[int, typer.Option(help="Data-loading processes.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the data stream and initialisation.")] = 0,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 200,
    log_every: Annotated[int, typer.Option(help="Steps between metric lines.")] = 10,
    preload: Annotated[bool, typer.Option("--preload", help="Decode all training videos into memory first "
                                                            "(up to 4 GiB), shared by the --workers.")] = False,
    time_limit: Annotated[Optional[float], typer.Option(help="Stop after this many minutes with a checkpoint; "
                                                              "continue later with --resume.")] = None,
) -> None:
    """Train or fine-tune on clips (multi-GPU: torchrun --nproc-per-node N -m posevid train ...)."""
    try:
        from posevid.train import TrainConfig, saved_recipe
        from posevid.train import train as run_training

        dev = pick_device(device)
        zoom_range = _numbers(zoom, "--zoom must be MIN,MAX numbers")
        size_range = _numbers(person_size, "--person-size must be MIN,MAX numbers")
        shares = _numbers(mix, "--mix must be numbers separated by commas") if mix else ()
        recipe = dict(data=tuple(data or ()), mix=shares, model=model, image_root=image_root, clip_len=clip_len,
                      batch=batch, steps=steps, lr=lr, input_size=input_size, zoom=zoom_range,
                      person_zoom=person_zoom, person_size=size_range,
                      offset_loss_weight=offset_weight, temporal=not no_temporal, freeze_frame_net=freeze_frame_net,
                      freeze_encoder=freeze_encoder, encoder_lr=encoder_lr, occlude=occlude, blur=blur, color=color,
                      frame_step=frame_step, seed=seed)
        if resume:  # what the command line leaves out comes from the checkpoint
            saved = saved_recipe(out)
            option = {"offset_loss_weight": "offset_weight", "temporal": "no_temporal"}
            for name in recipe:
                source = ctx.get_parameter_source(option.get(name, name))  # typer may vendor its own click: by name
                if name in saved and getattr(source, "name", None) != "COMMANDLINE":
                    recipe[name] = tuple(saved[name]) if isinstance(saved[name], list) else saved[name]
        cfg = TrainConfig(out=out, **recipe, init=init, device=dev, amp=amp, workers=workers,
                          checkpoint_every=checkpoint_every, log_every=log_every, preload=preload,
                          time_limit=time_limit)
        with _train_progress(cfg.steps) as on_step:
            last = run_training(cfg, resume=resume, on_step=on_step)
    except PosevidError as e:
        raise fail(str(e)) from None
    except ValueError as e:  # e.g. an unknown model name
        raise fail(str(e)) from None
    typer.echo(f"checkpoint: {last}")


class EvalSplit(str, Enum):
    front = "front"
    side = "side"


@app.command("eval")
def eval_(
    split: Annotated[Optional[EvalSplit], typer.Option(help="Fixed synthetic split: front (|yaw| ≤ 30°) or side "
                                                            "(60–120°); installed with posevid.")] = None,
    annotations: Annotated[Optional[Path], typer.Option(help="Your own COCO / PoseTrack-style annotation "
                                                             "file instead of a split.")] = None,
    videos: Annotated[Optional[Path], typer.Option(help="Folder the annotation's file names start from "
                                                        "[default: the annotation file's folder].")] = None,
    weights: Annotated[Optional[Path], typer.Option(help="Weights to evaluate [default: shipped].")] = None,
    model: Annotated[Optional[str], typer.Option(help="Architecture, when the weights file does not say.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the JSON report and the local-NMS plot.")]
    = Path("posevid-eval"),
    threshold: Annotated[float, typer.Option(help="Minimum pose score kept (0: all, as COCO AP wants).")] = 0.0,
    no_temporal: Annotated[bool, typer.Option("--no-temporal", help="Score only the per-frame network "
                                                                   "(half the time).")] = False,
    input_size: Annotated[Optional[int], typer.Option(help="Shorter input side, multiple of 32 "
                                                           "[default: the weights'].")] = None,
    flip: Annotated[bool, typer.Option("--flip", help="Flip test.")] = False,
    snap: Annotated[Optional[float], typer.Option(help="Move keypoints to heatmap peaks within SNAP × pose "
                                                       "size; 0: DEKR's decoding [default: the weights'].")] = None,
    pose_score: Annotated[Optional[PoseScore], typer.Option(help=POSE_SCORE_HELP)] = None,
    regression: Annotated[bool, typer.Option("--regression", help="Also read the offsets at the true person "
                                         "centers against a mean-pose oracle, and the keypoint heatmaps around "
                                         "the true keypoints against chance (training checks).")] = False,
    device: Annotated[Device, typer.Option(help="Where the network runs.")] = Device.auto,
    precision: Annotated[Precision, typer.Option(help=PRECISION_HELP)] = Precision.auto,
    scales: Annotated[Optional[str], typer.Option(help=SCALES_HELP)] = None,
) -> None:
    """Score the temporal model and its per-frame twin: local-NMS score, OKS, COCO AP, jitter."""
    import json

    from posevid.evaluate.plot import plot_nms_scores
    from posevid.evaluate.regression import MIN_LABELLED
    from posevid.evaluate.run import center_regression, evaluate
    from posevid.model import load_model
    from posevid.outputs import check_writable_dir
    from posevid.predict import PredictConfig

    try:
        if (split is None) == (annotations is None):
            raise PosevidError("pass exactly one of --split or --annotations")
        check_input_size(input_size)
        check_writable_dir(out)
        if split is not None:
            from posevid.data.splits import split_dir

            folder = split_dir(split.value)
            annotations, videos, name = folder / "annotations.json", folder, split.value
        else:
            name = annotations.stem
        path = resolve_weights(model or DEFAULT_MODEL, weights)
        dev = pick_device(device)
        temporal = None if no_temporal else load_model(model, path, temporal=True)
        if temporal is not None and temporal.temporal.is_identity:  # scoring it again would repeat per-frame
            typer.echo(f"{path}: the ConvGRU is at its identity start (not trained), so the temporal model "
                       "equals the per-frame one: scored once, as per-frame")
            temporal = None
        per_frame = load_model(model, path, temporal=False)
        report = evaluate(temporal, per_frame, annotations, videos, threshold=threshold, device=dev,
                          predict=PredictConfig(flip=flip, input_size=input_size, snap_radius=snap,
                                                precision=precision.value, pose_score=pose_score and pose_score.value,
                                                scales=parse_scales(scales)))
        extra = {"weights": str(path)}
        if regression:
            extra["center_regression"] = center_regression(per_frame, annotations, videos, input_size, dev)
        report_path = out / f"{name}.json"
        tmp = report_path.with_name(report_path.name + ".partial")
        tmp.write_text(json.dumps({**report.to_dict(), **extra}, indent=1))
        tmp.replace(report_path)
        plot = plot_nms_scores(report, out / f"{name}_nms_score.png")
    except PosevidError as e:
        raise fail(str(e)) from None
    typer.echo(report.table())
    if regression:
        r = extra["center_regression"]
        if not r["people"]:
            typer.echo(f"offsets at the true centers: no person has {MIN_LABELLED}+ labelled keypoints, "
                       "nothing to measure")
        else:
            err, swapped = r["median_error"], r["left_right_swapped_closer"]
            typer.echo("offsets at the true centers (per-frame network): median error "
                       f"{err['network']:.3f} × person size; mean-pose oracle {err['mean_pose_oracle']:.3f}; "
                       f"closer with left and right exchanged for {swapped:.0%} of people")
            hm = r["heatmap_median_error"]
            typer.echo(f"keypoint heatmaps' maximum within {hm['window']} × size of the true keypoints: median "
                       f"error {hm['network']:.3f} × person size; chance {hm['chance']:.3f}")
            sr = r["size_ratio"]
            small, large = ("none" if v is None else f"{v:.2f}" for v in (sr["small"], sr["large"]))
            typer.echo(f"size of those poses against the truth (1: right, under 1: shrunk): median {sr['all']:.2f}; "
                       f"{small} under {sr['large_from_px']:.0f} px, {large} for the {sr['large_people']} people "
                       "above")
    typer.echo(f"report: {report_path}  plot: {plot}")


class _train_progress:
    """Progress bar with loss and frames/s on a terminal; plain lines otherwise."""

    def __init__(self, steps: int):
        from rich.console import Console

        self.console, self.steps = Console(stderr=True), steps

    def __enter__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        if self.console.is_terminal:
            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("loss {task.fields[loss]:.5f}  {task.fields[fps]:.1f} frames/s"),
                                TimeRemainingColumn(), console=self.console)
            self.bar.start()
            self.task = self.bar.add_task("train", total=self.steps, loss=float("nan"), fps=0.0)
        return self.update

    def update(self, step: int, record: dict) -> None:
        if self.console.is_terminal:
            self.bar.update(self.task, completed=step, loss=record["loss"], fps=record["frames_per_s"])
        else:
            typer.echo(f"step {step}/{self.steps} loss {record['loss']:.5f} "
                       f"({record['frames_per_s']:.1f} frames/s)", err=True)

    def __exit__(self, *exc):
        if self.console.is_terminal:
            self.bar.stop()
        return False


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A training checkpoint (e.g. RUN/last.pt) or any posevid weights.")],
    out: Annotated[Path, typer.Argument(help="Weights file to write (.pt).")],
    input_size: Annotated[Optional[int], typer.Option(help="Default test-time input size stored with the "
                                                             "weights [default: unchanged].")] = None,
    snap: Annotated[Optional[float], typer.Option(help="Default --snap stored with the weights "
                                                       "[default: unchanged].")] = None,
    pose_score: Annotated[Optional[PoseScore], typer.Option(help="Default --pose-score stored with the weights "
                                                                 "[default: unchanged].")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Default --threshold stored with the weights "
                                                            "[default: unchanged].")] = None,
) -> None:
    """Weights for shipping or sharing: the network and its config only (no optimiser state), optionally
    with other inference defaults; the source's step and training recipe are kept for the record."""
    from dataclasses import replace

    from posevid.model import build_model, read_weights, save_checkpoint
    from posevid.model.checkpoint import load_state
    from posevid.outputs import check_writable_dir

    try:
        check_input_size(input_size)
        state, cfg, payload = read_weights(checkpoint)
        if cfg is None:
            raise PosevidError(f"{checkpoint}: not a posevid checkpoint (official DEKR files need no export)")
        if input_size is not None:
            cfg = replace(cfg, input_size=input_size)
        if snap is not None:
            cfg = replace(cfg, snap_radius=snap)
        if pose_score is not None:
            cfg = replace(cfg, pose_score=pose_score.value)
        if threshold is not None:
            if not 0 <= threshold <= 1:
                raise PosevidError(f"--threshold must be within 0..1, got {threshold}")
            cfg = replace(cfg, threshold=threshold)
        temporal = any(k.startswith("temporal.") for k in state)
        model = build_model(cfg, temporal=temporal)
        load_state(model, state, str(checkpoint))
        if out.exists() and out.resolve() == checkpoint.resolve():
            raise PosevidError(f"{out}: choose another file than the checkpoint itself")
        check_writable_dir(out.parent)
        record = {k: payload[k] for k in ("step", "train_config") if k in payload}
        save_checkpoint(out, model, **record)
    except PosevidError as e:
        raise fail(str(e)) from None
    typer.echo(f"{out}: model {cfg.name}, input size {cfg.input_size}, pose score {cfg.pose_score}, threshold "
               f"{cfg.threshold:g}, {out.stat().st_size / 1e6:.1f} MB")


def _interrupt_on_sigterm() -> None:
    """`kill`/`timeout` stop a run like Ctrl-C does: partial outputs are cleaned or kept for --resume."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def pick_device(device: Device) -> str:
    import torch

    if device == Device.cuda and not torch.cuda.is_available():
        raise PosevidError("--device cuda: no CUDA device is available")
    return "cuda" if device == Device.cuda or (device == Device.auto and torch.cuda.is_available()) else "cpu"


def load_predictor(model: str | None, weights: Path, device: Device, temporal: bool, config):
    from posevid.model import load_model
    from posevid.predict import Predictor

    return Predictor(load_model(model, weights, temporal=temporal), config, pick_device(device))


class _progress:
    """A rich progress bar (frames, fps, ETA) on a terminal; silent otherwise (scripts, CI)."""

    def __init__(self, console, name: str):
        self.console, self.name = console, name

    def __enter__(self):
        if not self.console.is_terminal:
            return None
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[fps]:.1f} fps"), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=self.console, transient=True)
        self.bar.start()
        self.task = self.bar.add_task(Path(self.name).name, total=None, fps=0.0)
        return self.update

    def update(self, done: int, total: int) -> None:
        elapsed = self.bar.tasks[0].elapsed or 0.0
        self.bar.update(self.task, completed=done, total=total, fps=done / elapsed if elapsed > 0 else 0.0)

    def __exit__(self, *exc):
        if self.console.is_terminal:
            self.bar.stop()
        return False


app.add_typer(data_app, name="data")


def main() -> None:
    try:
        app()
    except PosevidError as e:  # library errors reaching the top: one line, no traceback
        typer.echo(f"error: {e}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
