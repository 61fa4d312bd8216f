"""The whole neural renderer: feature pyramid -> softmax splatting per level -> synthesis (Fig. 4).

``NeuralRenderer.encode`` runs once per still; ``render`` runs per frame. At level ``j`` (scale
``2^-j``) the motion is area-averaged to the level's size and divided by ``2^j`` (a displacement
in that level's pixels), the weights ``W`` are area-averaged, and the level's features (with
``log(1 + W)`` appended) are softmax-splatted with them. The RGB of level 0 is also splatted and
hole-filled exactly as the plain renderer does: that frame is the synthesis network's base.

Frames must be a multiple of 4 pixels on each side (``pad_to_multiple``): the levels are then exact
halves, which keeps every resize a fixed-factor op that exports to ONNX with dynamic sizes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..splat_torch import FULL_COVERAGE, SoftmaxSplatRenderer, push_pull_fill_premultiplied, softmax_splat
from ...gid_engine.rendering.neural_config import LEVELS, MULTIPLE, RendererConfig
from .feature_encoder import FeaturePyramidEncoder
from .synthesis import SynthesisNetwork


GATE_RADIUS = 4  # px: moving content lands within its displacement; edges get this margin
GATE_MOTION_PX = 0.5


def level_motion(flow: torch.Tensor, z: torch.Tensor, level: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flow (pixels) and weights at pyramid ``level``."""
    if level == 0:
        return flow, z
    f = 2 ** level
    return F.avg_pool2d(flow, f) / float(f), F.avg_pool2d(z, f)


def splat_level(features: torch.Tensor, flow: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Softmax-splat ``features`` (N, C, h, w); returns (N, C + 2, h, w): the warped features,
    the splatted ``log(1 + W)`` and the coverage confidence in [0, 1] (0 = a hole)."""
    values = torch.cat([features, torch.log1p(z)], dim=1)
    summed, weight, coverage = softmax_splat(values, flow, z)
    warped = summed / torch.clamp(weight, min=1e-30)
    confidence = torch.clamp(coverage / FULL_COVERAGE, 0.0, 1.0)
    return torch.cat([warped * confidence, confidence], dim=1)


def correction_gate(flow: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
    """Where the synthesis network may change the plain frame: holes (``1 - confidence``) and
    pixels within ``GATE_RADIUS`` of motion larger than ``GATE_MOTION_PX`` (ramping in from 0);
    exactly 0 where nothing moves, so zero motion renders the still itself."""
    magnitude = torch.sqrt(flow[:, 0:1].square() + flow[:, 1:2].square())
    near = F.max_pool2d(magnitude, 2 * GATE_RADIUS + 1, stride=1, padding=GATE_RADIUS)
    return torch.maximum(1.0 - confidence, torch.clamp(near / GATE_MOTION_PX, 0.0, 1.0))


class NeuralRenderer(nn.Module):
    def __init__(self, config: RendererConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = FeaturePyramidEncoder(config)
        self.synthesis = SynthesisNetwork(config, self.encoder.channels)

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(N, 3, H, W)`` RGB in [0, 1] -> the feature pyramid (level 0 starts with the RGB)."""
        return self.encoder(image)

    def render(self, f0: torch.Tensor, f1: torch.Tensor, f2: torch.Tensor, flow: torch.Tensor,
               z: torch.Tensor) -> torch.Tensor:
        """The frame ``(N, 3, H, W)`` for forward motion ``flow`` (N, 2, H, W) and weights ``z`` (N, 1, H, W)."""
        levels = [splat_level(feats, *level_motion(flow, z, j)) for j, feats in enumerate((f0, f1, f2))]
        # level 0 starts with the RGB, splatted and premultiplied by its confidence (last channel):
        # hole-filled, that is the plain renderer's frame, without splatting the RGB a second time
        confidence = levels[0][:, -1:]
        base = push_pull_fill_premultiplied(levels[0][:, :3], confidence, f0[:, :3])
        return self.synthesis(levels[0], levels[1], levels[2], base, correction_gate(flow, confidence))

    def forward(self, image: torch.Tensor, flow: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.render(*self.encode(image), flow, z)

    def plain(self, image: torch.Tensor, flow: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The plain splat + push-pull frame (the baseline, and the base of ``render``)."""
        return SoftmaxSplatRenderer()(image, flow, z)


def padded_size(width: int, height: int) -> tuple[int, int]:
    """The smallest (W, H) at least as large that the pyramid accepts."""
    return -(-width // MULTIPLE) * MULTIPLE, -(-height // MULTIPLE) * MULTIPLE


assert LEVELS == 3  # render() and the ONNX graphs are written for three levels
