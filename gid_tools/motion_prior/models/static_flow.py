"""The learned Eulerian baseline (Holynski et al. 2021, adapted): one static motion field from a still.

Holynski et al. predict a single static flow field from an image and integrate it over time. For
oscillation the equivalent is one displacement amplitude field ``M(p)`` (the principal axis of each
pixel's trajectory times its amplitude), played at one global frequency ``f*``:
``F_t(p) = M(p) sin(2 pi f* t)``. This network regresses ``M`` from the image, trained on the same
synthetic pairs as the prior, so the evaluation can compare the prior with a baseline that, like
the prior, only sees the image (the "static flow (oracle)" row takes ``M`` from the reference).

The sign of a principal axis is arbitrary, so targets are canonicalised (``M_x >= 0``); magnitude
correlation and power spectra, the metrics it is compared on, do not depend on that sign.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(8, cout), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, 1, 1), nn.GroupNorm(8, cout), nn.SiLU())


class StaticFlowNet(nn.Module):
    """``(N, 3, H, W)`` image in [-1, 1] -> ``(N, 2, H, W)`` amplitude field ``M`` in pixels.

    A small U-Net (1/2 to 1/16 resolution, 0.84 M parameters); H and W multiples of 16."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.width = w = width
        self.enc = nn.ModuleList([_block(3, w, 2), _block(w, 2 * w, 2), _block(2 * w, 4 * w, 2),
                                  _block(4 * w, 4 * w, 2)])
        self.dec = nn.ModuleList([_block(8 * w, 2 * w), _block(4 * w, w), _block(2 * w, w)])
        self.head = nn.Conv2d(w, 2, 3, 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        skips = []
        x = image
        for enc in self.enc:
            x = enc(x)
            skips.append(x)
        x = skips.pop()
        for dec in self.dec:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = dec(torch.cat([x, skip], dim=1))
        x = F.interpolate(self.head(x), size=image.shape[-2:], mode="bilinear", align_corners=False)
        return x
