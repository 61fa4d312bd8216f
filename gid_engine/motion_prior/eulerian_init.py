"""Eulerian-initialised sampling: start the prior part-way from the static-flow field's motion.

Why: a diffusion sample is one draw of plausible motion, so *where* it moves varies from draw to
draw (on the held-out real clip the magnitude correlation of single draws spreads by ±0.04 to
±0.16 between seed families), while the learned Eulerian network (``static_flow.py``) predicts
one stable amplitude field ``M`` with the wrong spectrum (one frequency). SDEdit-style, the
pipelines can instead encode a volume built from ``M``, noise it to an intermediate timestep and
run only the remaining ``strength`` share of the DDIM steps: the prior keeps ``M``'s layout and
re-creates the spectrum, phases and detail.

The initial volume spreads ``M`` over the frequencies 1..K-1 with weights proportional to the
normalizer's per-frequency scales (the training data's mean spectrum), one random phase per
frequency (seeded, spatially constant: a region swings as one), and the same motion energy as the
Eulerian baseline ``M sin(2 pi f* t)``: RMS displacement ``|M| / sqrt(2)`` at every pixel.

numpy only: both the torch and the ONNX pipelines use it, so the same seed gives the same volume.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..spectral_volume import SpectralVolume


def eulerian_init_coeffs(field: np.ndarray, scales: np.ndarray, seed: int, fps: float = 30.0,
                         num_frames: int = 150) -> np.ndarray:
    """``field`` ``(2, H, W)`` amplitude ``M`` in pixels -> coefficients ``(K, 4, H, W)`` float32,
    anchored (``F(0) = 0``, the DC term set as in every training volume).

    For distinct frequencies the RMS over time of ``sum_k 2 Re(S_k e^{i w_k t})`` is
    ``sqrt(2 sum_k |S_k|^2)``; with ``|S_k| = a_k |M|`` and ``a_k`` proportional to the scales,
    ``sum_k a_k^2 = 1/4`` matches ``M sin``'s RMS ``|M| / sqrt(2)``.
    """
    m = np.asarray(field, dtype=np.float32)
    s = np.asarray(scales, dtype=np.float64)
    if m.ndim != 3 or m.shape[0] != 2:
        raise InputError(f"the static-flow field must be (2, H, W), got {m.shape}")
    if s.ndim != 1 or len(s) < 2:
        raise InputError("Eulerian initialisation needs at least two frequencies")
    w = s.copy()
    w[0] = 0.0  # DC: an anchored volume has no offset to start from
    a = 0.5 * w / np.sqrt(float((w * w).sum()))
    phases = np.random.default_rng(int(seed)).uniform(0.0, 2.0 * np.pi, size=len(s))
    coeffs = np.zeros((len(s), 4) + m.shape[1:], dtype=np.float32)
    for k in range(1, len(s)):
        c, si = np.float32(a[k] * np.cos(phases[k])), np.float32(a[k] * np.sin(phases[k]))
        coeffs[k, 0], coeffs[k, 1] = c * m[0], si * m[0]
        coeffs[k, 2], coeffs[k, 3] = c * m[1], si * m[1]
    return SpectralVolume(coeffs, fps=fps, num_frames=num_frames).anchored().coeffs.astype(np.float32)


def check_strength(strength: float) -> float:
    """``strength`` in (0, 1]: the share of the DDIM steps run from the noised initial volume."""
    s = float(strength)
    if not 0.0 < s <= 1.0:
        raise InputError(f"init strength must be in (0, 1] (1 = plain sampling), got {strength}")
    return s


def truncated_timesteps(timesteps: list[int] | np.ndarray, strength: float) -> list[int]:
    """The last ``round(strength * n)`` (at least one) of the descending DDIM ``timesteps``."""
    ts = [int(t) for t in timesteps]
    run = max(1, int(round(len(ts) * check_strength(strength))))
    return ts[len(ts) - run:]


def noised_latents(z0: np.ndarray, noise: np.ndarray, alpha_cumprod: float) -> np.ndarray:
    """``sqrt(a) z0 + sqrt(1 - a) noise`` (diffusers' ``add_noise``) in float32."""
    a = np.float32(alpha_cumprod)
    return (np.sqrt(a) * z0 + np.sqrt(np.float32(1.0) - a) * noise).astype(np.float32)
