"""An inference-only copy of a network (BatchNorm folded into convolutions, channels-last weights), and
the arithmetic it runs in.

Faster on CPU (oneDNN runs its convolutions faster in channels-last, and a folded BatchNorm costs
nothing; docs/benchmark.md); the outputs are the same up to float rounding. The copy must not be trained:
its BatchNorm layers are gone.
The backbone in bfloat16 (`precision="bf16"`, applied by `PoseHeads.run_clip`) is faster again on CPUs that
compute it natively, with outputs that differ slightly (measured speed and accuracy: docs/benchmark.md).
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from posevid.model.dekr import PoseHeads


def fold_batch_norm(module: nn.Module, keep: tuple[nn.Module, ...] = ()) -> None:
    """Folds, in place, every BatchNorm (eval mode) that directly follows a convolution into that
    convolution and replaces it with an identity: adjacent (Conv2d, BatchNorm2d) in an nn.Sequential, and the
    (conv, BatchNorm) attribute names a module class lists in `conv_bn_pairs` (those its forward applies
    one after the other). Sequentials in `keep` stay as they are."""
    for m in module.modules():
        if any(m is k for k in keep):
            continue
        if isinstance(m, nn.Sequential):
            names = [name for name, _ in m.named_children()]
            pairs = list(zip(names, names[1:]))
        else:
            pairs = getattr(m, "conv_bn_pairs", ())
        for conv_name, bn_name in pairs:
            conv, bn = getattr(m, conv_name, None), getattr(m, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(m, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(m, bn_name, nn.Identity())


def inference_copy(model: PoseHeads) -> PoseHeads:
    """A copy of `model` in eval mode for inference only (see the module's docstring); `model` is untouched."""
    fast = copy.deepcopy(model).eval()
    # the sparse regression (`offsets_at`) reads the offset transition's BatchNorm itself
    fold_batch_norm(fast, keep=(fast.transition_offset,))
    return fast.to(memory_format=torch.channels_last)


PRECISIONS = ("auto", "fp32", "bf16")
_NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}  # x86 CPUs whose oneDNN kernels compute bfloat16 natively


def native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively (x86 AVX512-BF16 or AMX-BF16, read from /proc/cpuinfo).
    Elsewhere bfloat16 is emulated, which usually makes it slower than float32, so "auto" keeps float32 there."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:  # not Linux: no way to tell, stay exact
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return not _NATIVE_BF16_FLAGS.isdisjoint(flags)


def resolve_precision(precision: str, device: torch.device) -> str:
    """"fp32" or "bf16": what `precision` ("auto", "fp32", "bf16") means on `device`. "auto" is bf16 on a
    CPU that computes it natively and fp32 everywhere else."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if device.type == "cpu" and native_bf16() else "fp32"
    return precision
