"""The torch twin of ``runtime.OnnxNeuralRenderer`` (reference for parity, and ``--backend torch``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..splat_torch import TorchSplatter
from .checkpoint import load_renderer
from .runtime import NeuralFrames


class TorchNeuralRenderer(NeuralFrames):
    """``device``: where the network runs ("cpu" or "cuda"); the pyramid stays there between frames,
    so a frame costs one motion upload and one frame download."""

    def __init__(self, folder: Optional[Path] = None, model=None, threads: Optional[int] = None,
                 device: str = "cpu") -> None:
        super().__init__(TorchSplatter(threads=threads, device=device))
        self.device = torch.device(device)
        self.model = (model if model is not None else load_renderer(folder)).eval().to(self.device)

    def _encode(self, rgb: np.ndarray) -> tuple:
        with torch.inference_mode():
            return tuple(self.model.encode(torch.from_numpy(rgb).to(self.device)))

    def _render(self, features: tuple, flow: np.ndarray, z: np.ndarray) -> np.ndarray:
        dev = self.device
        with torch.inference_mode():
            frame = self.model.render(*features, torch.from_numpy(flow).to(dev), torch.from_numpy(z).to(dev))
        return frame.cpu().numpy()
