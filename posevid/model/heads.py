"""DEKR heads: a heatmap head (K keypoints + 1 center) and one adaptive-convolution regression branch per keypoint.

Adaptive convolution: per pixel q the branch predicts a 2×2 matrix A_q and a translation t_q that move
the regular 3×3 grid g_i to A_q g_i + t_q; the features are sampled there bilinearly and weighted:
y(q) = Σ_i W_i x(q + A_q g_i + t_q). Sampling follows torchvision's `deform_conv2d` (zero outside the
image, per-point (dy, dx) offsets), written with `grid_sample` so no torchvision is needed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from posevid.model.hrnet import BN_MOMENTUM, BasicBlock, make_layer

# The 3×3 grid, kernel points in row-major order: row 0 = dy, row 1 = dx (the official buffer).
REGULAR_GRID = ((-1.0, -1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0), (-1.0, 0.0, 1.0, -1.0, 0.0, 1.0, -1.0, 0.0, 1.0))


def sample_points(x: torch.Tensor, py: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of x at absolute pixel positions, zero outside the image.

    x: (N, C, H, W); py, px: (N, P, H, W) row / column positions → (N, C, P, H, W).
    """
    n, c, h, w = x.shape
    p = py.shape[1]
    # align_corners=True maps -1 / +1 to the centres of the first / last pixel, so pixel i ↔ 2i/(size-1) - 1;
    # padding 'zeros' then gives each out-of-image corner weight zero, exactly like deform_conv2d.
    gx = px * (2.0 / max(w - 1, 1)) - 1.0
    gy = py * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1).reshape(n, p * h, w, 2)  # (N, P·H, W, 2) in (x, y) order
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.view(n, c, p, h, w)


def deform_conv3x3(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """3×3 deformable convolution, stride 1, padding 1, no bias (torchvision semantics).

    x: (N, C, H, W); offset: (N, 18, H, W) with (dy, dx) for each kernel point in row-major order;
    weight: (O, C, 3, 3) → (N, O, H, W).
    """
    n, c, h, w = x.shape
    grid = torch.tensor(REGULAR_GRID, dtype=x.dtype, device=x.device)  # (2, 9)
    ys = torch.arange(h, dtype=x.dtype, device=x.device).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=x.dtype, device=x.device).view(1, 1, 1, w)
    py = ys + grid[0].view(1, 9, 1, 1) + offset[:, 0::2]
    px = xs + grid[1].view(1, 9, 1, 1) + offset[:, 1::2]
    cols = sample_points(x, py, px).reshape(n, c * 9, h * w)  # (N, C·9, H·W), kernel index fastest
    return (weight.reshape(weight.shape[0], c * 9) @ cols).view(n, -1, h, w)


class AdaptBlock(nn.Module):
    """One adaptive-convolution residual block (the official `AdaptBlock`, names and buffer included)."""

    expansion = 1

    def __init__(self, inplanes: int, outplanes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1):
        super().__init__()
        if stride != 1 or dilation != 1 or downsample is not None or inplanes != outplanes:
            raise ValueError("AdaptBlock supports stride 1, dilation 1 and equal in/out widths only")
        self.register_buffer("regular_matrix", torch.tensor(REGULAR_GRID))
        self.transform_matrix_conv = nn.Conv2d(inplanes, 4, 3, 1, 1, bias=True)
        self.translation_conv = nn.Conv2d(inplanes, 2, 3, 1, 1, bias=True)
        self.adapt_conv = _DeformWeight(inplanes, outplanes)
        self.bn = nn.BatchNorm2d(outplanes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)

    def offsets(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) → (N, 18, H, W): A_q g_i + t_q − g_i as (dy, dx) per kernel point."""
        n, _, h, w = x.shape
        a = self.transform_matrix_conv(x).permute(0, 2, 3, 1).reshape(n * h * w, 2, 2)  # A_q, row-major
        moved = a @ self.regular_matrix - self.regular_matrix  # (NHW, 2, 9)
        off = moved.transpose(1, 2).reshape(n, h, w, 18).permute(0, 3, 1, 2)
        t = self.translation_conv(x)
        return off + t.repeat(1, 9, 1, 1)  # channels alternate dy, dx like t's (ty, tx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(deform_conv3x3(x, self.offsets(x), self.adapt_conv.weight))
        return self.relu(out + x)


class _DeformWeight(nn.Module):
    """Holds the deformable convolution's weight under the official name `adapt_conv.weight`."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)  # nn.Conv2d's default initialisation


def head_transition(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def heatmap_head(channels: int, blocks: int, num_outputs: int) -> nn.ModuleList:
    return nn.ModuleList([make_layer(BasicBlock, channels, channels, blocks), nn.Conv2d(channels, num_outputs, 1)])


def offset_branches(num_keypoints: int, channels: int, blocks: int) -> tuple[nn.ModuleList, nn.ModuleList]:
    features = nn.ModuleList(make_layer(AdaptBlock, channels, channels, blocks) for _ in range(num_keypoints))
    finals = nn.ModuleList(nn.Conv2d(channels, 2, 1) for _ in range(num_keypoints))
    return features, finals


def offsets_grouped(x: torch.Tensor, features: nn.ModuleList, finals: nn.ModuleList) -> torch.Tensor:
    """All keypoint branches at once: (N, K·C, H, W) → (N, 2K, H, W), equal to running each branch alone.

    The K branches have identical shapes, so their weights are concatenated into grouped convolutions and
    one batched sampling/matmul; this is several times faster on CPU than K separate small branches.
    """
    for depth in range(len(features[0])):
        x = _adaptive_step(x, [f[depth] for f in features])
    k = len(features)
    weight = torch.cat([f.weight for f in finals])
    bias = torch.cat([f.bias for f in finals])
    return F.conv2d(x, weight, bias, groups=k)


def _adaptive_step(x: torch.Tensor, blocks: list[AdaptBlock]) -> torch.Tensor:
    """One AdaptBlock per branch, all branches at once: (N, K·C, H, W) → (N, K·C, H, W)."""
    k = len(blocks)
    n, kc, h, w = x.shape
    c = kc // k
    # transform (4) and translation (2) convs of every branch as one grouped conv: (N, K·6, H, W)
    weight = torch.cat([t for b in blocks for t in (b.transform_matrix_conv.weight, b.translation_conv.weight)])
    bias = torch.cat([t for b in blocks for t in (b.transform_matrix_conv.bias, b.translation_conv.bias)])
    # channels-last: oneDNN's grouped 3×3 conv is ~3× faster forward and ~15× faster backward in it
    params = F.conv2d(x.contiguous(memory_format=torch.channels_last), weight, bias, padding=1, groups=k)
    params = params.contiguous().view(n, k, 6, h, w)
    a = params[:, :, :4].permute(0, 1, 3, 4, 2).reshape(n, k, h, w, 2, 2)  # A_q per branch, row-major
    t = params[:, :, 4:]  # (N, K, 2, H, W) as (ty, tx)
    grid = blocks[0].regular_matrix  # (2, 9)
    moved = torch.einsum("nkhwij,jp->nkiphw", a, grid)  # A_q g for every kernel point: (N, K, 2, 9, H, W)
    ys = torch.arange(h, dtype=x.dtype, device=x.device).view(h, 1)
    xs = torch.arange(w, dtype=x.dtype, device=x.device).view(1, w)
    py = (moved[:, :, 0] + t[:, :, 0:1] + ys).reshape(n * k, 9, h, w)
    px = (moved[:, :, 1] + t[:, :, 1:2] + xs).reshape(n * k, 9, h, w)
    cols = sample_points(x.reshape(n * k, c, h, w), py, px).view(n, k, c * 9, h * w)
    wd = torch.stack([b.adapt_conv.weight.reshape(c, c * 9) for b in blocks])  # (K, C, C·9)
    out = (wd @ cols).view(n, kc, h, w)
    out = _grouped_batch_norm(out, [b.bn for b in blocks])
    return F.relu(out + x)


def offsets_at(x: torch.Tensor, index: torch.Tensor, features: nn.ModuleList, finals: nn.ModuleList,
               transition: nn.Sequential | None = None) -> torch.Tensor:
    """The branches' output at chosen pixels only (inference): x (K·C, H, W) of one frame, index (P,) flat
    pixel indices → (P, 2K), equal to `offsets_grouped` read at those pixels.

    With `transition` (the 1×1 conv + BN + ReLU that makes the branches' input), x is the fused features
    it reads (C_f, H, W). Every block but the last runs densely (the next block samples its output
    anywhere); the last one and the final 1×1 convs are computed at the P pixels, and with one block per
    branch so is the transition, at the few pixels that block reads: most of the head's cost saved.
    """
    if features[0][0].bn.training:
        raise RuntimeError("offsets_at uses BatchNorm's running statistics: call model.eval() first")
    depth = len(features[0])
    if transition is not None and depth > 1:
        x, transition = transition(x[None])[0], None
    for d in range(depth - 1):
        x = _adaptive_step(x[None], [f[d] for f in features])[0]
    blocks = [f[depth - 1] for f in features]
    k, c = len(blocks), blocks[0].adapt_conv.weight.shape[0]
    h, w = x.shape[-2:]
    p = index.numel()
    values_at = _pixels(x.view(k, c, h, w)) if transition is None else _transition_pixels(x, transition, k)
    qy, qx = index // w, index % w
    grid = blocks[0].regular_matrix  # (2, 9): row 0 dy, row 1 dx, kernel points row-major
    gy, gx = grid.long()
    # 3×3 neighbourhoods of the P pixels (zero outside, as the dense conv's padding): (K, P, C, 9)
    patch = values_at((qy[:, None] + gy).flatten(), (qx[:, None] + gx).flatten()).view(k, c, p, 9).transpose(1, 2)
    weight = torch.stack([torch.cat((b.transform_matrix_conv.weight, b.translation_conv.weight)).reshape(6, c * 9)
                          for b in blocks])  # (K, 6, C·9)
    bias = torch.stack([torch.cat((b.transform_matrix_conv.bias, b.translation_conv.bias)) for b in blocks])
    params = torch.einsum("kpj,koj->kpo", patch.reshape(k, p, c * 9), weight) + bias[:, None]  # (K, P, 6)
    moved = params[..., :4].reshape(k, p, 2, 2) @ grid  # (K, P, 2, 9): A_q g
    py = qy[:, None].to(x.dtype) + moved[:, :, 0] + params[..., 4:5]
    px = qx[:, None].to(x.dtype) + moved[:, :, 1] + params[..., 5:6]
    cols = _bilinear(values_at, py, px).transpose(1, 2).reshape(k, p, c * 9)  # as sample_points
    wd = torch.stack([b.adapt_conv.weight.reshape(c, c * 9) for b in blocks])  # (K, C, C·9)
    out = torch.einsum("kpj,koj->kpo", cols, wd)  # (K, P, C)
    scale, shift = _bn_affine([b.bn for b in blocks])
    out = F.relu(out * scale[:, None] + shift[:, None] + patch[..., 4])  # kernel point 4: the pixel itself
    final_w = torch.stack([f.weight.reshape(2, c) for f in finals])  # (K, 2, C)
    final_b = torch.stack([f.bias for f in finals])
    offsets = torch.einsum("kpc,koc->kpo", out, final_w) + final_b[:, None]  # (K, P, 2)
    return offsets.permute(1, 0, 2).reshape(p, 2 * k)


def _bn_affine(bns: list[nn.BatchNorm2d]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inference BatchNorm of each module as scale and shift: (len(bns), C) each."""
    scale = torch.stack([m.weight / torch.sqrt(m.running_var + m.eps) for m in bns])
    return scale, torch.stack([m.bias - m.running_mean * s for m, s in zip(bns, scale)])


def _pixels(xk: torch.Tensor):
    """Reader of (K, C, H, W) at integer pixels: positions (M,) shared or (K, M) per branch → (K, C, M),
    zero outside the map."""
    k, c, h, w = xk.shape
    rows = xk.permute(0, 2, 3, 1).reshape(k, h * w, c)  # gathering whole pixels is far faster than per channel

    def values_at(qy: torch.Tensor, qx: torch.Tensor) -> torch.Tensor:
        qy, qx = qy.expand(k, -1), qx.expand(k, -1)
        inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
        v = rows[torch.arange(k)[:, None], qy.clamp(0, h - 1) * w + qx.clamp(0, w - 1)]  # (K, M, C)
        return (v * inside[..., None]).transpose(1, 2)
    return values_at


def _transition_pixels(fused: torch.Tensor, transition: nn.Sequential, k: int):
    """Like `_pixels` for transition(fused), computing the 1×1 conv + BN + ReLU only at the pixels read."""
    conv, bn = transition[0], transition[1]
    cf, h, w = fused.shape
    rows = fused.permute(1, 2, 0).reshape(h * w, cf)  # as in `_pixels`; a view of channels-last features
    weight = conv.weight.view(k, -1, cf)  # (K, C, C_f)
    scale, shift = (t.view(k, -1, 1) for t in _bn_affine([bn]))

    def values_at(qy: torch.Tensor, qx: torch.Tensor) -> torch.Tensor:
        inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
        q = qy.clamp(0, h - 1) * w + qx.clamp(0, w - 1)
        f = rows.index_select(0, q.flatten()).view(*q.shape, cf)  # (M, C_f) or (K, M, C_f)
        v = (torch.einsum("mf,kcf->kcm", f, weight) if f.dim() == 2 else torch.einsum("kmf,kcf->kcm", f, weight))
        return F.relu(v * scale + shift) * inside.expand(k, -1)[:, None]
    return values_at


def _bilinear(values_at, py: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """Bilinear samples at (K, P, 9) positions from an integer-pixel reader, zero outside the map (as
    `sample_points`) → (K, C, P, 9)."""
    y0, x0 = py.floor(), px.floor()
    wy, wx = py - y0, px - x0
    y0, x0 = y0.long(), x0.long()
    k = py.shape[0]
    out = 0.0
    for dy, dx, wt in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx), (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
        v = values_at((y0 + dy).reshape(k, -1), (x0 + dx).reshape(k, -1))  # (K, C, P·9)
        out = out + v.view(k, -1, *py.shape[1:]) * wt[:, None]
    return out


def _grouped_batch_norm(x: torch.Tensor, bns: list[nn.BatchNorm2d]) -> torch.Tensor:
    """BatchNorm of concatenated channel groups with each group's own module (running stats kept per module)."""
    cat = lambda name: torch.cat([getattr(b, name) for b in bns])  # noqa: E731
    if not bns[0].training:
        return F.batch_norm(x, cat("running_mean"), cat("running_var"), cat("weight"), cat("bias"),
                            False, 0.0, bns[0].eps)
    mean, var = cat("running_mean"), cat("running_var")
    out = F.batch_norm(x, mean, var, cat("weight"), cat("bias"), True, bns[0].momentum, bns[0].eps)
    with torch.no_grad():  # F.batch_norm updated the concatenated copies: hand each module its slice
        c = bns[0].num_features
        for i, b in enumerate(bns):
            b.running_mean.copy_(mean[i * c:(i + 1) * c])
            b.running_var.copy_(var[i * c:(i + 1) * c])
            b.num_batches_tracked += 1
    return out
