"""Softmax splatting (Niklaus & Liu, CVPR 2020) and push-pull hole filling, in torch.

This is the reference implementation of the engine's forward-warping renderer, written for
this project (the authors' CUDA code is for academic use only). It is also the source of the
ONNX graph that the torch-free runtime runs (``gid_engine/assets/softmax_splat.onnx``), so it
uses only ops that export cleanly: bilinear splatting by ``scatter_add``, bilinear resizes for
the pyramid, no data-dependent Python control flow.

Splatting moves every source pixel ``p`` to ``p + F(p)`` and spreads it bilinearly over the four
nearest target pixels. Where several source pixels land on one target, their colours are
averaged with weights ``exp(Z)``: with ``Z = W = mean_t ||F_t||`` (paper §5), pixels that move a
lot (foreground) win over static ones (background).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# exp(Z - max Z) is clamped at exp(-Z_FLOOR) so background pixels never underflow to exactly 0
# (that would turn a covered pixel into a hole); 50 keeps every sum far above float32's minimum.
Z_FLOOR = 50.0
# A target pixel whose bilinear coverage reaches this is trusted fully; below, it is blended
# with the hole filler in proportion (stretching motion covers pixels by less than 1).
FULL_COVERAGE = 0.5
# Push-pull levels: holes up to about 2**PYRAMID_LEVELS pixels wide are filled from their
# surroundings; anything larger (never seen with natural oscillations) falls back to I0.
PYRAMID_LEVELS = 6


def softmax_splat(
    values: torch.Tensor, flow: torch.Tensor, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward-warp ``values`` (N, C, H, W) by ``flow`` (N, 2, H, W) with softmax weights ``z``.

    Returns ``(weighted_sum, weight_sum, coverage)``: the exp(Z)-weighted sum of splatted values
    (N, C, H, W), the sum of exp(Z) weights (N, 1, H, W) and the plain bilinear coverage
    (N, 1, H, W), which says how much of each target pixel received anything at all.
    """
    n, c, h, w = values.shape
    xs = torch.arange(w, dtype=values.dtype, device=values.device).view(1, 1, w)
    ys = torch.arange(h, dtype=values.dtype, device=values.device).view(1, h, 1)
    tx = xs + flow[:, 0]
    ty = ys + flow[:, 1]
    x0 = torch.floor(tx)
    y0 = torch.floor(ty)
    fx = tx - x0
    fy = ty - y0

    zmax = torch.amax(z, dim=(2, 3), keepdim=True)
    ez = torch.exp(torch.clamp(z - zmax, min=-Z_FLOOR))
    payload = torch.cat([values * ez, ez, torch.ones_like(ez)], dim=1).flatten(2)  # (N, C+2, HW)
    out = torch.zeros_like(payload)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        xi = x0 + dx
        yi = y0 + dy
        wx = fx if dx else 1.0 - fx
        wy = fy if dy else 1.0 - fy
        inside = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
        # Corners that fall outside the frame add zero weight at index 0 (no size-dependent
        # "dump" slot, which would freeze the frame size into the exported graph).
        index = torch.where(inside, yi * w + xi, torch.zeros_like(xi))
        index = index.to(torch.int64).flatten(1).unsqueeze(1).expand_as(payload)
        weight = (wx * wy * inside.to(values.dtype)).flatten(1).unsqueeze(1)
        out = out.scatter_add(2, index, payload * weight)
    out = out.reshape(n, c + 2, h, w)
    return out[:, :c], out[:, c : c + 1], out[:, c + 1 :]


def push_pull_fill(color: torch.Tensor, confidence: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """``push_pull_fill_premultiplied`` of ``color * confidence``."""
    return push_pull_fill_premultiplied(color * confidence, confidence, fallback)


def push_pull_fill_premultiplied(premultiplied: torch.Tensor, confidence: torch.Tensor,
                                 fallback: torch.Tensor) -> torch.Tensor:
    """Fill low-confidence pixels from a coarse-to-fine pyramid of the confident ones, given the
    colour already multiplied by its confidence (the neural renderer's splat has it that way).

    Premultiplied colours and confidences are averaged down ``PYRAMID_LEVELS`` times, then
    composited back up: each level keeps what it knows and takes the rest from the level above.
    Pixels no level can reach take ``fallback`` (the unwarped input image).
    """
    premult = [premultiplied]
    alpha = [confidence]
    for _ in range(PYRAMID_LEVELS):
        premult.append(_half(premult[-1]))
        alpha.append(_half(alpha[-1]))
    p, a = premult[-1], alpha[-1]
    for level in range(PYRAMID_LEVELS - 1, -1, -1):
        size = premult[level].shape[2:]
        up_p = F.interpolate(p, size=size, mode="bilinear", align_corners=False)
        up_a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
        keep = alpha[level]
        p = premult[level] + (1.0 - keep) * up_p
        a = keep + (1.0 - keep) * up_a
    filled = p / torch.clamp(a, min=1e-6)
    return torch.where(a > 1e-4, filled, fallback)


def _half(x: torch.Tensor) -> torch.Tensor:
    """Halve the resolution, rounding up so odd sizes keep their last row/column."""
    h = (x.shape[2] + 1) // 2
    w = (x.shape[3] + 1) // 2
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)


HOLE_MARGIN = 2  # px: a disoccluded pixel's neighbours within this distance count as disoccluded too


def disocclusion_mask(flow: torch.Tensor, z: torch.Tensor, margin: int = HOLE_MARGIN) -> torch.Tensor:
    """``(N, 1, H, W)`` float 1 where the plain splat by ``flow`` leaves a target pixel less than fully
    covered (coverage < ``FULL_COVERAGE``: content a renderer must invent), dilated by ``margin`` px
    (a square), 0 elsewhere. ``gid eval render`` scores these pixels apart; training can weight them."""
    with torch.no_grad():
        _, _, coverage = softmax_splat(torch.zeros_like(z), flow, z)
        hole = (coverage < FULL_COVERAGE).to(flow.dtype)
        if margin <= 0:
            return hole
        return F.max_pool2d(hole, 2 * margin + 1, stride=1, padding=margin)


class SoftmaxSplatRenderer(nn.Module):
    """Frame ``t`` from I0: softmax splatting by ``F_t`` with weight ``Z``, then hole filling.

    Inputs: ``image`` (N, C, H, W) float (any channels: RGB, RGBA, or displacement fields),
    ``flow`` (N, 2, H, W) pixels, ``z`` (N, 1, H, W). Output: (N, C, H, W).
    """

    def forward(self, image: torch.Tensor, flow: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        summed, weight, coverage = softmax_splat(image, flow, z)
        color = summed / torch.clamp(weight, min=1e-30)
        confidence = torch.clamp(coverage / FULL_COVERAGE, 0.0, 1.0)
        return push_pull_fill(color, confidence, image)


class TorchSplatter:
    """The torch reference renderer with the same call signature as ``OnnxSplatter``."""

    name = "torch"

    def __init__(self, threads: int | None = None, device: str = "cpu") -> None:
        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        self._model = SoftmaxSplatRenderer().eval()

    def __call__(self, image: np.ndarray, flow: np.ndarray, z: np.ndarray) -> np.ndarray:
        dev = self.device
        with torch.inference_mode():
            out = self._model(torch.from_numpy(image[None]).to(dev), torch.from_numpy(flow[None]).to(dev),
                              torch.from_numpy(z[None, None]).to(dev))
        return out[0].cpu().numpy()
