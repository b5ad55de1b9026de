"""Saving and loading weights: posevid checkpoints (which carry their config) and official DEKR checkpoints."""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import torch

from posevid import __version__
from posevid.config import MODELS, ModelConfig, model_config
from posevid.errors import PosevidError
from posevid.model.dekr import PoseHeads, build_model

FORMAT = "posevid.checkpoint/1"

# Weights shipped inside the package (posevid/weights/, package data), by model name. Shipping a new
# model's weights: put the file in posevid/weights/ and add its line here.
SHIPPED_WEIGHTS = {
    "small": "posevid_small.pt",
    "effnet": "posevid_effnet.pt",  # opt-in: better on real people, slower (its model card)
}


def shipped_weights(name: str) -> Path:
    """Path of the weights shipped for model `name`, the same in editable and regular installs."""
    if name not in MODELS:
        raise PosevidError(unknown_model(name))
    if name not in SHIPPED_WEIGHTS:
        raise PosevidError(f"model {name!r} has no shipped weights (shipped: {', '.join(SHIPPED_WEIGHTS)}); "
                           "pass weights=PATH (a posevid or official DEKR checkpoint) or pretrained=False for random init")
    resource = resources.files("posevid") / "weights" / SHIPPED_WEIGHTS[name]
    if not isinstance(resource, Path) or not resource.is_file():  # a broken install, or a zipped package
        raise PosevidError(f"the shipped weights of model {name!r} are missing from this installation "
                           f"({resource}); reinstall posevid or pass weights=PATH")
    return resource


def unknown_model(name: object) -> str:
    return f"unknown model {name!r}; known models: {', '.join(MODELS)}"


def save_checkpoint(path: str | Path, model: PoseHeads, **extra) -> None:
    """Writes {format, version, config, model state, **extra} atomically (temp file, then rename)."""
    path = Path(path)
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    payload = {"format": FORMAT, "posevid_version": __version__, "config": model.cfg.to_dict(),
               "model": model.state_dict(), **extra}
    tmp = path.with_name(path.name + ".partial")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], ModelConfig | None, dict]:
    """Reads a checkpoint file → (state_dict, config if the file names one, the whole payload).

    Accepts posevid checkpoints, official DEKR files (a bare state_dict), and training dumps that wrap the
    state_dict under 'state_dict' or prefix names with 'module.' (DataParallel).
    """
    path = Path(path)
    if not path.is_file():
        raise PosevidError(f"{path}: weights file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for non-checkpoint files
        raise PosevidError(f"{path}: not a PyTorch checkpoint ({type(e).__name__})") from None
    if not isinstance(payload, dict):
        raise PosevidError(f"{path}: not a checkpoint (holds a {type(payload).__name__})")
    if payload.get("format") == FORMAT:
        try:
            cfg = ModelConfig.from_dict(payload["config"])
        except (KeyError, TypeError, ValueError) as e:
            raise PosevidError(f"{path}: posevid checkpoint with an invalid config ({e})") from None
        return payload["model"], cfg, payload
    state = payload.get("state_dict", payload)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PosevidError(f"{path}: no model weights found in this file")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return state, infer_official_config(state), payload


def infer_official_config(state: dict[str, torch.Tensor]) -> ModelConfig | None:
    """Which official configuration a bare state_dict belongs to, from the heads' input widths."""
    w = state.get("transition_heatmap.0.weight")
    if w is None:
        return None
    for cfg in MODELS.values():
        if w.shape[1] == cfg.fused_channels and w.shape[0] == cfg.heatmap_channels:
            return cfg
    return None


def load_state(model: PoseHeads, state: dict[str, torch.Tensor], source: str) -> None:
    """Loads strictly, except that a missing ConvGRU keeps its identity start (official DEKR weights)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.startswith("temporal.")]
    unexpected = [k for k in state if k not in expected and not k.startswith("temporal.")]
    wrong = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of another shape (e.g. {k}: {tuple(state[k].shape)} vs "
                         f"{tuple(expected[k].shape)})")
        raise PosevidError(f"{source}: weights do not fit model {model.cfg.name}: {'; '.join(parts)} parameters")
    # A checkpoint trained without the GRU, loaded into a temporal model, keeps the GRU's identity start.
    keep = {k: v for k, v in expected.items() if k.startswith("temporal.") and k not in state}
    model.load_state_dict({**{k: v for k, v in state.items() if k in expected}, **keep}, strict=True)


def load_model(name: str | None = None, weights: str | Path | None = None, *, pretrained: bool = True,
               temporal: bool = True) -> PoseHeads:
    """Builds a network by name with its weights; eval mode, on the CPU.

    - `load_model("small")`: the weights shipped with posevid (`SHIPPED_WEIGHTS`); a model without
      shipped weights is refused: pass `weights=` or `pretrained=False`.
    - `load_model("small", pretrained=False)`: random initialisation (the ConvGRU at its identity start).
    - `load_model(weights=path)` or `load_model(name, weights=path)`: a posevid checkpoint (it carries its
      config) or an official DEKR file (W32/W48 recognised by their shapes; name the model otherwise).
      A file made for another model than `name` is refused.
    `temporal=False` builds the per-frame network (no ConvGRU) from the same weights.
    """
    if name is not None and name not in MODELS:
        raise PosevidError(unknown_model(name))
    if weights is not None and not pretrained:
        raise PosevidError("pass either weights= or pretrained=False, not both")
    if weights is None:
        if name is None:
            raise PosevidError(f"load_model needs a model name ({', '.join(MODELS)}) or weights=PATH")
        if not pretrained:
            return build_model(model_config(name), temporal=temporal).eval()
        weights = shipped_weights(name)
    state, cfg, _ = read_weights(weights)
    if name is not None and cfg is not None and cfg.name != name:
        raise PosevidError(f"{weights}: weights are for model {cfg.name}, not {name}")
    if cfg is None:
        if name is None:
            raise PosevidError(f"{weights}: cannot tell which model these weights belong to; pass --model")
        cfg = model_config(name)
    model = build_model(cfg, temporal=temporal)
    load_state(model, state, str(weights))
    return model.eval()
