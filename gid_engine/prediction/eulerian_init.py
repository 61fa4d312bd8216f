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

from typing import Callable

from ..errors import InputError
from ..motion.normalization import FrequencyNormalizer
from ..motion.spectral_volume import SpectralVolume


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


def steps_run(steps: int, strength: float) -> int:
    """How many of ``steps`` DDIM steps a start at ``strength`` runs: ``round(strength * steps)``, at least one."""
    return max(1, int(round(int(steps) * check_strength(strength))))


def truncated_timesteps(timesteps: list[int] | np.ndarray, strength: float) -> list[int]:
    """The last :func:`steps_run` of the descending DDIM ``timesteps``."""
    ts = [int(t) for t in timesteps]
    return ts[len(ts) - steps_run(len(ts), strength):]


def noised_latents(z0: np.ndarray, noise: np.ndarray, alpha_cumprod: float) -> np.ndarray:
    """``sqrt(a) z0 + sqrt(1 - a) noise`` (diffusers' ``add_noise``) in float32."""
    a = np.float32(alpha_cumprod)
    return (np.sqrt(a) * z0 + np.sqrt(np.float32(1.0) - a) * noise).astype(np.float32)


def start_latents(field: np.ndarray, normalizer: FrequencyNormalizer, seed: int, fps: float, num_frames: int,
                  encode: Callable[[np.ndarray], np.ndarray], noise: np.ndarray, alpha_cumprod: float) -> np.ndarray:
    """The latents a start from ``field`` ``(2, H, W)`` begins at: the initial volume, normalized,
    ``encode``d (normalized slices -> scaled latents, each backend's VAE encoder) and noised with
    ``noise`` to the timestep whose cumulative alpha is ``alpha_cumprod``. One recipe for both
    pipelines, so the same seed and noise give the same start on torch and ONNX."""
    coeffs = eulerian_init_coeffs(field, normalizer.scales, seed, fps, num_frames)
    return noised_latents(encode(normalizer.normalize(coeffs)), noise, alpha_cumprod)
