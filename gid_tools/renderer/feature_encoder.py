"""The feature extractor of the renderer: a light conv pyramid of ``I0`` (paper §5: ResNet-34).

Light on purpose: it runs once per still, but the splatting and synthesis costs grow with its
channel counts at every frame. Level 0 is the RGB image plus ``features[0]`` learned channels
at full resolution; levels 1 and 2 are strided (1/2, 1/4). Trained jointly with the synthesis
network, from scratch (no pretrained weights can be downloaded here).
"""

from __future__ import annotations

import torch
from torch import nn

from ...gid_engine.rendering.neural_config import RendererConfig


def conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation)


class FeaturePyramidEncoder(nn.Module):
    """``(N, 3, H, W)`` in [0, 1], H and W multiples of 4 -> three maps (full, 1/2, 1/4)."""

    def __init__(self, config: RendererConfig) -> None:
        super().__init__()
        c0, c1, c2 = config.features
        self.level0 = nn.Sequential(conv(3, c0), nn.SiLU(), conv(c0, c0), nn.SiLU())
        self.level1 = nn.Sequential(conv(c0 + 3, c1, stride=2), nn.SiLU(), conv(c1, c1), nn.SiLU())
        self.level2 = nn.Sequential(conv(c1, c2, stride=2), nn.SiLU(), conv(c2, c2), nn.SiLU())

    @property
    def channels(self) -> tuple[int, int, int]:
        return (self.level0[0].out_channels + 3, self.level1[0].out_channels, self.level2[0].out_channels)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = image * 2.0 - 1.0
        f0 = torch.cat([image, self.level0(x)], dim=1)
        f1 = self.level1(torch.cat([x, f0[:, 3:]], dim=1))
        f2 = self.level2(f1)
        return f0, f1, f2
