"""Exact sRGB <-> linear transfer functions (IEC 61966-2-1, the piecewise curve, not gamma 2.2).

Blender treats PNGs as sRGB and EXRs as scene-linear, so frames must be converted exactly when the
file type and the pixel source disagree. Alpha is coverage, not colour: it is never converted.
Computation is done in float64 and returned as float32 so a round trip stays within 1e-6.
"""

from __future__ import annotations

import numpy as np


def _color_view(x: np.ndarray, has_alpha: bool | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Split off the alpha channel; by default an array whose last axis is 4 is RGBA."""
    if has_alpha is None:
        has_alpha = x.ndim >= 3 and x.shape[-1] == 4
    if has_alpha:
        return x[..., :-1], x[..., -1:]
    return x, None


def _join(color: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    out = color if alpha is None else np.concatenate([color, alpha.astype(np.float64)], axis=-1)
    return out.astype(np.float32)


def srgb_to_linear(x: np.ndarray, has_alpha: bool | None = None) -> np.ndarray:
    """sRGB-encoded values -> linear light (float32). ``has_alpha=None``: last axis 4 means RGBA."""
    color, alpha = _color_view(np.asarray(x, dtype=np.float64), has_alpha)
    lin = np.where(color <= 0.04045, color / 12.92, ((np.maximum(color, 0.04045) + 0.055) / 1.055) ** 2.4)
    return _join(lin, alpha)


def linear_to_srgb(x: np.ndarray, has_alpha: bool | None = None) -> np.ndarray:
    """Linear light -> sRGB-encoded values (float32). ``has_alpha=None``: last axis 4 means RGBA."""
    color, alpha = _color_view(np.asarray(x, dtype=np.float64), has_alpha)
    enc = np.where(color <= 0.0031308, color * 12.92, 1.055 * np.maximum(color, 0.0031308) ** (1 / 2.4) - 0.055)
    return _join(enc, alpha)
