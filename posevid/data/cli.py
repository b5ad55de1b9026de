"""`posevid data ...`: synthetic clips and a contact sheet. Parses arguments and calls the library
(mounted by posevid.cli as the `data` sub-command; heavy imports happen inside the commands)."""
from __future__ import annotations

import os
from enum import Enum
from typing import Annotated, Optional

import typer

from posevid.errors import PosevidError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Training and evaluation data: synthetic clips with exact keypoints, teacher-labelled "
                       "real footage.")


class Split(str, Enum):
    train = "train"
    front = "front"
    side = "side"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _parse_size(size: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise PosevidError(f"--size must look like 256x256, got {size!r}") from None
    return w, h


@app.command()
def synth(
    out: Annotated[str, typer.Argument(help="Output folder (videos/ and annotations.json are written there).")],
    split: Annotated[Split, typer.Option(
        help="train: any yaw; front: |yaw| <= 30 deg; side: 60-120 deg.")] = Split.train,
    clips: Annotated[int, typer.Option(help="Number of clips.")] = 8,
    frames: Annotated[int, typer.Option(help="Frames per clip.")] = 32,
    size: Annotated[str, typer.Option(help="Frame size WxH (even numbers).")] = "256x256",
    seed: Annotated[int, typer.Option(help="Base seed; the same seed gives byte-identical annotations.")] = 0,
    max_people: Annotated[int, typer.Option(help="Up to this many people per clip.")] = 4,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = max(1, (os.cpu_count() or 1)),
    backgrounds: Annotated[Optional[list[str]], typer.Option(
        help="Folder of your own background photos without people (repeatable); default: the curated "
             "Debian photos.")] = None,
    props: Annotated[float, typer.Option(
        help="Chance a clip has upright non-person things standing around (poles, signs, cones, bins).")] = 0.0,
    garments: Annotated[float, typer.Option(
        help="Chance a person wears a skirt, dress or long coat hanging over the legs.")] = 0.0,
    long_hair: Annotated[float, typer.Option(
        help="Chance a person with hair has long hair hanging down the back.")] = 0.0,
    occluders: Annotated[float, typer.Option(help="Chance a clip has things drifting in front of people.")] = 0.5,
    procedural: Annotated[float, typer.Option(
        help="Share of people moved by procedural motion instead of motion capture.")] = 0.3,
    photos: Annotated[bool, typer.Option(
        help="--no-photos: procedural clutter instead of photo backgrounds and cut-outs.")] = True,
) -> None:
    """Render synthetic clips of people with exact 2D keypoints (mp4 + COCO/PoseTrack-style JSON)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from posevid.data.synth import SynthConfig, annotation_checksum, generate

    try:
        w, h = _parse_size(size)
        if backgrounds and not photos:
            raise PosevidError("--backgrounds and --no-photos exclude each other")
        for d in backgrounds or []:
            if not os.path.isdir(d):
                raise PosevidError(f"--backgrounds {d}: not a folder")
        if os.path.exists(os.path.join(out, "annotations.json")):
            raise PosevidError(f"{out} already holds a dataset; choose another folder")
        try:
            config = SynthConfig(split=split.value, num_clips=clips, num_frames=frames, width=w, height=h,
                                 seed=seed, max_people=max_people, prop_prob=props, garment_prob=garments,
                                 long_hair_prob=long_hair, occluder_prob=occluders, procedural_fraction=procedural)
        except ValueError as e:
            message = str(e)
            for field, flag in (("prop_prob", "--props"), ("garment_prob", "--garments"),
                                ("long_hair_prob", "--long-hair"), ("occluder_prob", "--occluders"),
                                ("procedural_fraction", "--procedural")):
                message = message.replace(field, flag)  # the user typed flags, not config fields
            raise PosevidError(message) from None
        with Progress(TextColumn("clips"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
            task = bar.add_task("synth", total=clips)
            data = generate(config, out, workers=workers, background_dirs=backgrounds, photos=photos,
                            progress=lambda done, total: bar.update(task, completed=done))
    except PosevidError as e:
        raise _fail(str(e)) from None
    typer.echo(f"{len(data['videos'])} clips, {len(data['images'])} frames, {len(data['annotations'])} "
               f"people-frames -> {out} (annotations sha256 {annotation_checksum(data)[:16]})")


@app.command()
def label(
    sources: Annotated[list[str], typer.Argument(help="Real videos or photos with people (never the dev set's or "
                                                      "reserved footage).")],
    out: Annotated[str, typer.Option(help="New folder: videos/, images/ and annotations.json for `posevid train "
                                          "--data`.")],
    frame_step: Annotated[int, typer.Option(help="Label every s-th frame.")] = 1,
    max_side: Annotated[int, typer.Option(help="Longer side of the re-encoded videos and photos.")] = 768,
    tile: Annotated[int, typer.Option(help="Also run the teacher on half-overlapping square tiles of this many "
                                           "pixels (of the photo fitted to --max-side), for groups of more "
                                           "than 6 people; 0: off.")] = 0,
    teacher: Annotated[Optional[str], typer.Option(help="Teacher ONNX file [default: `make teacher`'s].")] = None,
) -> None:
    """Label real videos and photos with the MoveNet teacher: a training set with real images (needs `make teacher`)."""
    from posevid.data.label import LabelConfig, label_footage
    from posevid.data.teacher import Teacher

    try:
        if frame_step < 1 or max_side < 32 or (tile and tile < 32):
            raise PosevidError("--frame-step must be at least 1, --max-side at least 32, --tile 0 or at least 32")
        missing = [v for v in sources if not os.path.isfile(v)]
        if missing:
            raise PosevidError(f"not found: {missing[0]}")
        try:
            model = Teacher(teacher)
        except RuntimeError as e:
            raise PosevidError(str(e)) from None
        data = label_footage(sources, out, model, LabelConfig(frame_step=frame_step, max_side=max_side, tile=tile),
                             on_source=lambda src, n: typer.echo(f"{src}: {n} frames"))
    except PosevidError as e:
        raise _fail(str(e)) from None
    typer.echo(f"{len(data['videos'])} videos, {len(data['images'])} frames in all, {len(data['annotations'])} "
               f"people-frames -> {out}")


@app.command("teacher-score")
def teacher_score(
    annotations: Annotated[str, typer.Argument(help="Annotation file (e.g. posevid/data/devset/annotations.json).")],
    size: Annotated[int, typer.Option(help="The teacher's input size (longer side).")] = 256,
    teacher: Annotated[Optional[str], typer.Option(help="Teacher ONNX file [default: `make teacher`'s].")] = None,
) -> None:
    """COCO keypoint AP of the MoveNet teacher alone on an annotation file: the reference for posevid's
    models (biased upward where the teacher drafted the labels; needs `make teacher`)."""
    from posevid.data.label import teacher_results
    from posevid.data.teacher import Teacher
    from posevid.evaluate.accuracy import AP_KEYS, coco_keypoint_ap

    try:
        try:
            model = Teacher(teacher)
        except RuntimeError as e:
            raise PosevidError(str(e)) from None
        ap = coco_keypoint_ap(*teacher_results(annotations, model, size))
    except PosevidError as e:
        raise _fail(str(e)) from None
    typer.echo(f"teacher at {size}: " + "  ".join(f"{k} {'n/a' if ap[k] is None else f'{ap[k]:.3f}'}" for k in AP_KEYS))


@app.command()
def show(
    data_dir: Annotated[str, typer.Argument(help="A dataset folder with annotations.json (e.g. from `synth`).")],
    out: Annotated[str, typer.Option(help="Image to write.")] = "sheet.png",
    clips: Annotated[int, typer.Option(help="Clips (rows) to draw.")] = 6,
    frames: Annotated[int, typer.Option(help="Frames per clip (columns).")] = 4,
) -> None:
    """Draw ground truth over frames (left limbs blue, right orange; rings = occluded keypoints)."""
    from posevid.data.show import contact_sheet

    try:
        path = contact_sheet(data_dir, out, clips=clips, frames=frames)
    except PosevidError as e:
        raise _fail(str(e)) from None
    typer.echo(f"wrote {path}")


if __name__ == "__main__":
    app()
