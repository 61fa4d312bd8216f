"""The torch twin of ``runtime.OnnxNeuralRenderer`` (reference for parity, and ``--backend torch``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..splat_torch import TorchSplatter
from .checkpoint import load_renderer
from ...gid_engine.rendering.neural import NeuralFrames


GPU_BATCH = 16  # frames per network call on a GPU, where one frame a call is launch-bound (gid bench --gpu)


class TorchNeuralRenderer(NeuralFrames):
    """``device``: where the network runs ("cpu" or "cuda"); the pyramid stays there between frames,
    so a batch of frames costs one motion upload and one download. ``batch_size``: frames per call
    (default: ``GPU_BATCH`` on a GPU, 1 on the CPU, where batching gains nothing)."""

    def __init__(self, folder: Optional[Path] = None, model=None, threads: Optional[int] = None,
                 device: str = "cpu", batch_size: Optional[int] = None) -> None:
        super().__init__(TorchSplatter(threads=threads, device=device))
        self.device = torch.device(device)
        self.model = (model if model is not None else load_renderer(folder)).eval().to(self.device)
        self.batch_size = int(batch_size or (GPU_BATCH if self.device.type == "cuda" else 1))

    def _encode(self, rgb: np.ndarray) -> tuple:
        with torch.inference_mode():
            return tuple(self.model.encode(torch.from_numpy(rgb).to(self.device)))

    def _render(self, features: tuple, flow: np.ndarray, z: np.ndarray) -> np.ndarray:
        dev = self.device
        b = flow.shape[0]
        with torch.inference_mode():
            feats = [f.expand(b, -1, -1, -1) for f in features]
            frame = self.model.render(*feats, torch.from_numpy(flow).to(dev), torch.from_numpy(z).to(dev))
        return frame.cpu().numpy()
