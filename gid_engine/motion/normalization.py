"""Frequency-adaptive normalization of spectral volumes (paper §4.2, eq. 4).

Motion amplitude falls off roughly exponentially with frequency, so one global scale leaves
high-frequency coefficients crushed near zero. Instead each frequency ``f_j`` gets its own scale
``s_j`` = the 95th percentile of coefficient magnitudes over a training set, and then

    S'_j = sign(S_j) * sqrt(|S_j| / s_j)

applied to each of the four real numbers (Re/Im of x and y). It is exactly invertible:
``S_j = sign(S'_j) * S'_j**2 * s_j``. The statistics are data: saved and loaded as JSON so the
diffusion model and the runtime always use the same ones.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import FormatError, InputError
from .spectral_volume import SpectralVolume

STATS_FORMAT = "gid.frequency_normalization"
STATS_VERSION = 1
# Per volume at most this many pixels enter the percentile (strided, so deterministic):
# enough for a stable 95th percentile, bounded memory for thousands of volumes.
SAMPLES_PER_VOLUME = 65536


@dataclass(frozen=True)
class FrequencyNormalizer:
    """Per-frequency scales ``s_j`` (length K) and the percentile they were taken at."""

    scales: np.ndarray
    percentile: float = 95.0
    num_volumes: int = 0

    def __post_init__(self) -> None:
        s = np.asarray(self.scales, dtype=np.float64)
        if s.ndim != 1 or len(s) == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise InputError("normalization scales must be a non-empty list of positive numbers")
        object.__setattr__(self, "scales", s)

    @property
    def K(self) -> int:
        return len(self.scales)

    @classmethod
    def fit(cls, volumes: Iterable[SpectralVolume | np.ndarray], percentile: float = 95.0) -> "FrequencyNormalizer":
        """Scales from a set of volumes: per frequency, the percentile of complex magnitudes.

        The magnitude of a coefficient is ``|Re + i Im|`` of x and of y separately (the paper's
        "Fourier coefficient magnitudes"); exact-zero magnitudes (DC of anchored data, padding)
        still count, as they do in the paper's statistics.
        """
        per_freq: list[list[np.ndarray]] | None = None
        count = 0
        for vol in volumes:
            c = vol.coeffs if isinstance(vol, SpectralVolume) else np.asarray(vol, dtype=np.float32)
            if c.ndim != 4 or c.shape[1] != 4:
                raise InputError(f"expected (K, 4, H, W) volumes, got {c.shape}")
            if per_freq is None:
                per_freq = [[] for _ in range(c.shape[0])]
            elif len(per_freq) != c.shape[0]:
                raise InputError("all volumes must have the same number of frequencies K")
            flat = c.reshape(c.shape[0], 4, -1)
            step = max(1, flat.shape[2] // SAMPLES_PER_VOLUME)
            flat = flat[:, :, ::step]
            mag = np.concatenate([np.hypot(flat[:, 0], flat[:, 1]), np.hypot(flat[:, 2], flat[:, 3])], axis=1)
            for j in range(c.shape[0]):
                per_freq[j].append(mag[j])
            count += 1
        if per_freq is None:
            raise InputError("cannot fit normalization statistics from zero volumes")
        scales = np.array([np.percentile(np.concatenate(m), percentile) for m in per_freq])
        scales = np.maximum(scales, 1e-8)  # a frequency that never moves still needs a valid scale
        return cls(scales, float(percentile), count)

    def normalize(self, coeffs: np.ndarray) -> np.ndarray:
        """Eq. 4 on a ``(K, 4, H, W)`` array (or ``(B, K, 4, H, W)``)."""
        s = self._broadcast_scales(coeffs)
        return (np.sign(coeffs) * np.sqrt(np.abs(coeffs) / s)).astype(np.float32)

    def denormalize(self, normalized: np.ndarray) -> np.ndarray:
        """The exact inverse of ``normalize``."""
        s = self._broadcast_scales(normalized)
        return (np.sign(normalized) * np.square(normalized) * s).astype(np.float32)

    def _broadcast_scales(self, arr: np.ndarray) -> np.ndarray:
        if arr.ndim < 4 or arr.shape[-4] != self.K or arr.shape[-3] != 4:
            raise InputError(f"expected (..., {self.K}, 4, H, W), got {arr.shape}")
        return self.scales.reshape((self.K, 1, 1, 1)).astype(np.float64)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        return {
            "format": STATS_FORMAT,
            "version": STATS_VERSION,
            "percentile": self.percentile,
            "num_volumes": self.num_volumes,
            "scales": [float(x) for x in self.scales],
        }

    def save(self, path: Path) -> None:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "FrequencyNormalizer":
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"normalization statistics not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise FormatError(f"cannot read normalization statistics {path}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != STATS_FORMAT:
            raise FormatError(f"{path} is not a gid normalization statistics file")
        if doc.get("version") != STATS_VERSION:
            raise FormatError(f"{path}: unsupported statistics version {doc.get('version')}")
        scales = doc.get("scales")
        if not isinstance(scales, list) or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in scales):
            raise FormatError(f"{path}: 'scales' must be a list of numbers")
        try:
            return cls(np.array(scales, dtype=np.float64), float(doc.get("percentile", 95.0)),
                       int(doc.get("num_volumes", 0)))
        except InputError as exc:
            raise FormatError(f"{path}: {exc}") from None
