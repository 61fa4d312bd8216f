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
    def __init__(self, folder: Optional[Path] = None, model=None, threads: Optional[int] = None) -> None:
        super().__init__(TorchSplatter(threads=threads))
        self.model = (model if model is not None else load_renderer(folder)).eval()

    def _encode(self, rgb: np.ndarray) -> tuple:
        with torch.inference_mode():
            return tuple(self.model.encode(torch.from_numpy(rgb)))

    def _render(self, features: tuple, flow: np.ndarray, z: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model.render(*features, torch.from_numpy(flow), torch.from_numpy(z)).numpy()
