"""HRNet backbone: parallel branches of decreasing resolution, fused after every module.

Module and parameter names follow the official DEKR/HRNet code so that official checkpoints load
unchanged; the layer order, BatchNorm settings and upsampling modes are the official ones too.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from posevid.config import ModelConfig

BN_MOMENTUM = 0.1


def conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False)


class BasicBlock(nn.Module):
    expansion = 1
    conv_bn_pairs = (("conv1", "bn1"), ("conv2", "bn2"))  # BatchNorm applied straight to a conv's output

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride, dilation)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    expansion = 4
    conv_bn_pairs = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(planes, planes, stride, dilation)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


def make_layer(block: type[nn.Module], inplanes: int, planes: int, blocks: int, stride: int = 1,
               dilation: int = 1) -> nn.Sequential:
    """`blocks` residual blocks; the first one projects the input when its width or stride changes."""
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * block.expansion, 1, stride, bias=False),
            nn.BatchNorm2d(planes * block.expansion, momentum=BN_MOMENTUM),
        )
    layers = [block(inplanes, planes, stride, downsample, dilation=dilation)]
    layers += [block(planes * block.expansion, planes, dilation=dilation) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def _fuse_path(cin: int, cout: int, src: int, dst: int) -> nn.Module:
    """Brings branch `src` to the resolution and width of branch `dst`."""
    if src == dst:
        return nn.Identity()
    if src > dst:  # lower resolution → higher: 1×1 conv, BN, nearest upsampling
        return nn.Sequential(
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.Upsample(scale_factor=2 ** (src - dst), mode="nearest"),
        )
    # higher resolution → lower: strided 3×3 convs, the last one without ReLU (summed before it)
    steps = []
    for k in range(dst - src):
        last = k == dst - src - 1
        out = cout if last else cin
        layers = [nn.Conv2d(cin, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out)]
        if not last:
            layers.append(nn.ReLU(inplace=True))
        steps.append(nn.Sequential(*layers))
    return nn.Sequential(*steps)


class HighResolutionModule(nn.Module):
    """Runs each branch's blocks, then every output branch sums all branches brought to its resolution."""

    def __init__(self, in_channels: tuple[int, ...], num_blocks: tuple[int, ...], channels: tuple[int, ...]):
        super().__init__()
        if len(in_channels) != len(channels):
            raise ValueError(f"{len(in_channels)} inputs for {len(channels)} branches")
        self.branches = nn.ModuleList(
            make_layer(BasicBlock, cin, c, n) for cin, c, n in zip(in_channels, channels, num_blocks)
        )
        n = len(channels)
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(_fuse_path(channels[j], channels[i], j, i) for j in range(n)) for i in range(n)
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for fuse in self.fuse_layers:
            y = fuse[0](xs[0])
            for j in range(1, len(xs)):
                y = y + fuse[j](xs[j])
            out.append(self.relu(y))
        return out


def _transition(prev: tuple[int, ...], cur: tuple[int, ...]) -> nn.ModuleList:
    """Adapts the previous stage's branches to the next stage and spawns its new, lower branches."""
    layers: list[nn.Module] = []
    for i, c in enumerate(cur):
        if i < len(prev):
            layers.append(
                nn.Identity() if prev[i] == c else nn.Sequential(
                    nn.Conv2d(prev[i], c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
            )
        else:
            steps = []
            for k in range(i + 1 - len(prev)):
                out = c if k == i - len(prev) else prev[-1]
                steps.append(nn.Sequential(
                    nn.Conv2d(prev[-1], out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)))
            layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


class HRNet(nn.Module):
    """Stem (stride 4) → bottleneck layer1 → stages 2..4; `forward` returns the fused stride-4 features.

    Attributes are created under the official names (conv1, bn1, conv2, bn2, layer1, transition1..,
    stage2..) because DEKR subclasses this and its state_dict must match official checkpoints.
    """

    conv_bn_pairs = (("conv1", "bn1"), ("conv2", "bn2"))  # the stem

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        s = cfg.stem_channels
        self.conv1 = nn.Conv2d(3, s, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(s, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(s, s, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(s, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_layer(Bottleneck, s, cfg.layer1_planes, cfg.layer1_blocks)
        prev: tuple[int, ...] = (cfg.layer1_planes * Bottleneck.expansion,)
        for i, stage in enumerate(cfg.stages):
            setattr(self, f"transition{i + 1}", _transition(prev, stage.channels))
            modules = [HighResolutionModule(stage.channels, stage.num_blocks, stage.channels)
                       for _ in range(stage.num_modules)]
            setattr(self, f"stage{i + 2}", nn.Sequential(*modules))
            prev = stage.channels
        self.num_stages = len(cfg.stages)

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised image → (N, sum(widths), H/4, W/4) multi-resolution features."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        ys = [self.layer1(x)]
        for i in range(self.num_stages):
            transition = getattr(self, f"transition{i + 1}")
            # Existing branches pass through their transition; new branches grow from the lowest one.
            xs = [t(ys[j] if j < len(ys) else ys[-1]) for j, t in enumerate(transition)]
            ys = getattr(self, f"stage{i + 2}")(xs)
        size = ys[0].shape[-2:]
        # Official DEKR: bilinear, align_corners=False, to the highest resolution, then concatenate.
        ups = [F.interpolate(y, size=size, mode="bilinear", align_corners=False) for y in ys[1:]]
        return torch.cat([ys[0], *ups], dim=1)
