"""Shared fixtures: small deterministic images and spectral volumes with known content."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gid.gid_engine.motion.spectral_volume import SpectralVolume

REPO = Path(__file__).resolve().parents[1]


def textured_image(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """Smooth random texture with some edges, float32 (H, W, C) in [0, 1]."""
    from gid.exporters.opencv import cv2

    rng = np.random.default_rng(seed)
    noise = rng.random((h, w, channels)).astype(np.float32)
    img = 0.6 * cv2.GaussianBlur(noise, (0, 0), 1.5) + 0.4 * cv2.GaussianBlur(noise, (0, 0), 4.0)
    img = (img - img.min()) / (img.max() - img.min() + 1e-6)
    img[h // 3 : h // 3 + 3, :, :] = 0.05  # a dark horizontal edge
    return np.clip(img, 0, 1).astype(np.float32).reshape(h, w, channels)


def random_volume(k: int = 16, h: int = 20, w: int = 30, seed: int = 0, decay: float = 0.3) -> SpectralVolume:
    """Random coefficients with power falling off with frequency, like natural motion."""
    rng = np.random.default_rng(seed)
    coeffs = rng.normal(size=(k, 4, h, w)).astype(np.float32)
    coeffs *= np.exp(-decay * np.arange(k, dtype=np.float32))[:, None, None, None]
    coeffs[0, 1] = 0.0  # DC of a real signal has no imaginary part
    coeffs[0, 3] = 0.0
    return SpectralVolume(coeffs, fps=30.0, num_frames=150, source="random")


@pytest.fixture
def volume() -> SpectralVolume:
    return random_volume()
