"""Motion masks: a per-pixel multiplier in [0, 1] on how much the picture may move.

A mask covers the same picture as the spectral volume (any resolution; it is resampled to the
volume's, area-averaging when shrinking, so a sharp 4K mask becomes soft edges at 256x160).
``0`` freezes a pixel, ``1`` leaves its motion as predicted, ``0.5`` halves it. The same mask
serves the looping animation (``apply_motion_mask`` scales every Fourier coefficient) and the
interactive simulation (``ModalBasis.from_spectral_volume(..., mask=...)``).
"""

from __future__ import annotations

import os

import numpy as np

from ...exporters.opencv import cv2
from ..errors import InputError
from .spectral_volume import SpectralVolume

# Rec. 709 luminance weights, applied to the stored (not linearised) values of a painted mask.
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def as_mask_array(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """Validate an ``(H, W)`` (or ``(H, W, 1)``) mask and return it as float32 in [0, 1].

    uint8 / uint16 masks are scaled by their full range; bool masks become 0/1; float masks
    must already lie in [0, 1] (a float mask in 0..255 is a mistake we refuse, not guess).
    """
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[:, :, 0]
    if m.ndim != 2:
        raise InputError(f"{name}: expected a single-channel (H, W) mask, got shape {m.shape}")
    if m.shape[0] < 1 or m.shape[1] < 1:
        raise InputError(f"{name}: mask is empty (shape {m.shape})")
    if m.dtype == np.bool_:
        return m.astype(np.float32)
    if m.dtype == np.uint8:
        return m.astype(np.float32) / 255.0
    if m.dtype == np.uint16:
        return m.astype(np.float32) / 65535.0
    if not np.issubdtype(m.dtype, np.number) or np.iscomplexobj(m):
        raise InputError(f"{name}: unsupported mask type {m.dtype}")
    m = m.astype(np.float32)
    if not np.isfinite(m).all():
        raise InputError(f"{name}: mask contains NaN or infinite values")
    lo, hi = float(m.min()), float(m.max())
    if lo < -1e-6 or hi > 1.0 + 1e-6:
        raise InputError(f"{name}: mask values must lie in [0, 1], got [{lo:g}, {hi:g}]")
    return np.clip(m, 0.0, 1.0)


def resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """The mask at ``width x height`` float32 in [0, 1]: INTER_AREA when shrinking, else bilinear."""
    m = as_mask_array(mask)
    h, w = m.shape
    if (w, h) == (width, height):
        return m
    interp = cv2.INTER_AREA if (width <= w and height <= h) else cv2.INTER_LINEAR
    out = cv2.resize(m, (int(width), int(height)), interpolation=interp)
    return np.clip(out.reshape(height, width), 0.0, 1.0).astype(np.float32)


def apply_motion_mask(sv: SpectralVolume, mask: np.ndarray) -> SpectralVolume:
    """A copy of ``sv`` whose motion is scaled per pixel by ``mask`` (every coefficient multiplied).

    Because the displacement is linear in the coefficients, the animated motion at each pixel
    is exactly ``mask(p)`` times the original: zeros freeze, 0.5 halves. For interaction, pass
    the mask to ``ModalBasis.from_spectral_volume`` instead (a basis normalises its modes, which
    would cancel a uniformly scaled pre-masked volume).
    """
    m = resize_mask(mask, sv.width, sv.height)
    coeffs = (sv.coeffs * m[None, None]).astype(np.float32)
    extra = dict(sv.extra)
    extra["motion_mask_mean"] = round(float(m.mean()), 6)
    return sv.replace(coeffs=coeffs, extra=extra)


def load_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a mask image as ``(H, W)`` float32 in [0, 1].

    The alpha channel is the mask when the image has one that is not fully opaque (a cut-out
    PNG); otherwise the luminance of the colour channels (a painted black/white mask). Every
    failure is a one-line ``InputError``.
    """
    from ..media.imaging import load_image  # local: imaging pulls Pillow lazily for header checks

    img = load_image(path)
    px = img.pixels
    if img.has_alpha and float(px[:, :, 3].min()) < 1.0:
        m = px[:, :, 3]
    else:
        m = px[:, :, :3] @ _LUMA
    m = np.clip(m, 0.0, 1.0).astype(np.float32)  # EXR masks may overshoot 1 slightly
    return as_mask_array(m, name=f"mask {path}")
