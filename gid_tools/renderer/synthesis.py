"""The image synthesis network (paper §5): decodes the splatted feature pyramid into the frame.

A U-Net-like decoder (as in conditional inpainting): it starts at 1/4 resolution, where dilated
residual blocks see across disocclusions, and injects each finer splatted level on the way up.
Every level's input carries its splat *coverage* (where nothing landed is a hole to fill) and
the splatted motion weight ``log(1 + W)`` (which side of a hole is background).

The output is a correction added to the plain renderer's frame (splat + push-pull fill of the
RGB), with the last layer zero-initialised (training starts from the plain renderer), and
multiplied by a *gate* that ``NeuralRenderer`` computes: 1 where the splat left a hole or where
anything moves nearby, 0 where nothing moves. So frame 0 of an anchored loop is the still bit for
bit and static areas never shift in colour (what artists check first), while moving content, its
edges and its disocclusions are the network's to fix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...gid_engine.rendering.neural_config import RendererConfig
from .feature_encoder import conv

EXTRA = 2  # coverage + log(1 + W) per level


class ResBlock(nn.Module):
    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(conv(channels, channels, dilation=dilation), nn.SiLU(),
                                  conv(channels, channels, dilation=dilation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x + self.body(x))


class SynthesisNetwork(nn.Module):
    def __init__(self, config: RendererConfig, in_channels: tuple[int, int, int]) -> None:
        super().__init__()
        w0, w1, w2 = config.widths
        c0, c1, c2 = in_channels
        self.coarse_in = conv(c2 + EXTRA, w2)
        self.coarse = nn.Sequential(*[ResBlock(w2, dilation=2 ** (i % 3)) for i in range(config.coarse_blocks)])
        self.up1 = conv(w2, w1)
        self.mid = nn.Sequential(conv(w1 + c1 + EXTRA, w1), nn.SiLU(), ResBlock(w1))
        self.up0 = conv(w1, w0)
        self.fine = nn.Sequential(conv(w0 + c0 + EXTRA + 3, w0), nn.SiLU())
        self.out = nn.Conv2d(w0, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, level0: torch.Tensor, level1: torch.Tensor, level2: torch.Tensor,
                base: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """Splatted levels (each with its EXTRA channels appended), the plain frame and the gate
        (N, 1, H, W) in [0, 1] -> frame."""
        x = self.coarse(F.silu(self.coarse_in(level2)))
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = self.mid(torch.cat([F.silu(self.up1(x)), level1], dim=1))
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = self.fine(torch.cat([F.silu(self.up0(x)), level0, base], dim=1))
        return base + gate * self.out(x)
