"""posevid: DEKR bottom-up pose estimation with a ConvGRU carrying context across video frames.

Python API (the `posevid` command is a thin layer over it):

    model = posevid.load_model("small")         # shipped weights; weights=PATH: a posevid or official DEKR
                                                # file; pretrained=False: random init
    heatmaps, offsets, state = model(x, state)  # x: (N, 3, H, W) RGB 0-255; state None at a video's start
    predictor = posevid.Predictor(model)        # frames → poses, owns the state
    r = predictor(frame_bgr)                    # one frame after another → posevid.FrameResult
    ids = tracker.update(r.poses.keypoints, r.poses.scores, r.scene_cut)  # tracker = posevid.Tracker()
    result = posevid.infer_video("clip.mp4", predictor, posevid.InferOptions(out_dir=Path("out")))
"""

__version__ = "0.1.0"

_LAZY = {
    "load_model": "posevid.model",
    "save_checkpoint": "posevid.model",
    "shipped_weights": "posevid.model",
    "DEKR": "posevid.model",
    "EfficientDEKR": "posevid.model",
    "build_model": "posevid.model",
    "Predictor": "posevid.predict",
    "PredictConfig": "posevid.predict",
    "FrameResult": "posevid.predict",
    "Poses": "posevid.decode",
    "Tracker": "posevid.track",
    "infer_video": "posevid.infer",
    "infer_image": "posevid.infer",
    "InferOptions": "posevid.infer",
    "InferResult": "posevid.infer",
    "PosevidError": "posevid.errors",
}


def __getattr__(name: str):
    # Imported on first use so that `posevid --help` does not pay for importing torch.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'posevid' has no attribute {name!r}")


__all__ = list(_LAZY)
