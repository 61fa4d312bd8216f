"""The torch dataset of image–motion pairs, and the frequency normalizer fit on it.

Items are a pure function of ``(seed, split, index)``: each index draws its own generators
(``pair_rng``), so DataLoader workers, shuffling and restarts never change what index ``i`` is.
A fraction ``real_fraction`` of the indices (chosen by the index's own generator) serve a real
pair (from ``real_pairs``), randomly flipped; the rest are synthetic.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ....gid_engine.errors import InputError
from ....gid_engine.motion.normalization import FrequencyNormalizer
from ....gid_engine.motion.spectral_volume import DEFAULT_K, SpectralVolume
from .synthetic import pair_rng, synthetic_pair

RealPairs = Sequence[tuple[np.ndarray, SpectralVolume]]


class MotionPairDataset(Dataset):
    """``length`` pairs: ``{"image": (3, H, W) float32 in [-1, 1], "volume": (K, 4, H, W) float32
    (normalized by ``normalizer`` when given, else pixels), "index": int}``."""

    def __init__(
        self,
        length: int,
        *,
        seed: int = 0,
        split: str = "train",
        width: int = 256,
        height: int = 160,
        k: int = DEFAULT_K,
        normalizer: FrequencyNormalizer | None = None,
        real: RealPairs | None = None,
        real_fraction: float = 0.1,
    ) -> None:
        if length < 0:
            raise InputError(f"dataset length must be >= 0, got {length}")
        if not 0.0 <= real_fraction <= 1.0:
            raise InputError(f"real_fraction must be in [0, 1], got {real_fraction}")
        if normalizer is not None and normalizer.K != k:
            raise InputError(f"normalizer has K={normalizer.K}, the dataset K={k}")
        self.length = int(length)
        self.seed, self.split = int(seed), split
        self.width, self.height, self.k = int(width), int(height), int(k)
        self.normalizer = normalizer
        self.real = [_fit_real(img, vol, width, height, k) for img, vol in (real or [])]
        self.real_fraction = float(real_fraction) if self.real else 0.0

    def __len__(self) -> int:
        return self.length

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """``(image (H, W, 3) float32 [0, 1], coeffs (K, 4, H, W) float32 px, is_real)``."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} pairs")
        pick = real_pick(self.seed, self.split, index, len(self.real), self.real_fraction)
        if pick is not None:
            choice, flip = pick
            image, coeffs = self.real[choice]
            return (flip_image(image), flip_coeffs(coeffs), True) if flip else (image, coeffs, True)
        image, volume = synthetic_pair(index, seed=self.seed, split=self.split, width=self.width,
                                       height=self.height, k=self.k)
        return image, volume.coeffs, False

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, coeffs, _ = self.pair(int(index))
        return pair_to_tensors(image, coeffs, self.normalizer) | {"index": int(index)}


def real_pick(seed: int, split: str, index: int, n_real: int, real_fraction: float) -> tuple[int, bool] | None:
    """Which real pair (and whether mirrored) index ``index`` serves, or None for a synthetic one.
    Apart from the dataset so a builder can tell the real indices without holding the real pairs
    (they are large: a clip's pairs would otherwise be copied into every data worker)."""
    if n_real <= 0:
        return None
    rng = pair_rng(seed, split, index, stream="mix")
    use_real = rng.random() < real_fraction
    choice, flip = int(rng.integers(n_real)), bool(rng.random() < 0.5)
    return (choice, flip) if use_real else None


def pair_to_tensors(image: np.ndarray, coeffs: np.ndarray,
                    normalizer: FrequencyNormalizer | None = None) -> dict[str, torch.Tensor]:
    """``{"image": (3, H, W) in [-1, 1], "volume": (K, 4, H, W)}`` float32 tensors."""
    img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)) * 2.0 - 1.0
    vol = normalizer.normalize(coeffs) if normalizer is not None else coeffs
    return {"image": img, "volume": torch.from_numpy(np.ascontiguousarray(vol, dtype=np.float32))}


def fit_frequency_normalizer(
    n: int = 256,
    seed: int = 0,
    *,
    split: str = "train",
    width: int = 256,
    height: int = 160,
    k: int = DEFAULT_K,
    real: RealPairs | None = None,
    real_fraction: float = 0.1,
    percentile: float = 95.0,
) -> FrequencyNormalizer:
    """Per-frequency 95th-percentile scales (paper eq. 4) over the first ``n`` pairs of the
    dataset with these settings (synthetic, plus real pairs at ``real_fraction``)."""
    if n < 1:
        raise InputError(f"fitting the normalizer needs n >= 1 pairs, got {n}")
    data = MotionPairDataset(n, seed=seed, split=split, width=width, height=height, k=k,
                             real=real, real_fraction=real_fraction)
    return FrequencyNormalizer.fit((data.pair(i)[1] for i in range(n)), percentile=percentile)


# ----------------------------------------------------------------------------- helpers
def _fit_real(image: np.ndarray, volume: SpectralVolume, width: int, height: int, k: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """A real pair at the dataset's size and K (resampled; extra bins dropped, missing = 0)."""
    from ....exporters.opencv import cv2

    img = np.asarray(image, dtype=np.float32)[:, :, :3]
    if img.shape[:2] != (height, width):
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    vol = volume.resized(width, height)
    coeffs = np.zeros((k, 4, height, width), dtype=np.float32)
    kk = min(k, vol.K)
    coeffs[:kk] = vol.coeffs[:kk]
    return np.ascontiguousarray(np.clip(img, 0.0, 1.0)), coeffs


def flip_image(image: np.ndarray) -> np.ndarray:
    """Mirror an (H, W, C) image left-right."""
    return np.ascontiguousarray(image[:, ::-1])


def flip_coeffs(coeffs: np.ndarray) -> np.ndarray:
    """Mirror left-right: the field is flipped and its x displacements change sign."""
    out = np.ascontiguousarray(coeffs[..., ::-1])
    out[:, 0:2] *= -1.0
    return out
