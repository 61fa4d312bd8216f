"""Pixels between Blender's layout and the engine's (numpy only).

Blender stores an image's pixels bottom row first, RGBA (or its channel count) as one flat float
array; the engine and files are top row first. Byte images Blender shows as sRGB hold encoded
values, float buffers scene-linear ones.
"""

from __future__ import annotations

import numpy as np

from ...exporters.colors import srgb_to_linear
from ...gid_engine.motion.masks import as_mask_array

LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def top_down(flat: np.ndarray, width: int, height: int, channels: int) -> np.ndarray:
    """Blender's flat pixel array -> ``(H, W, C)`` float32, top row first."""
    return np.ascontiguousarray(np.asarray(flat, np.float32).reshape(height, width, channels)[::-1])


def bottom_up(frame: np.ndarray, channels: int) -> np.ndarray:
    """``(H, W, C)`` top-down pixels -> the flat array Blender stores for an image of ``channels``
    channels (missing alpha made opaque, extra channels dropped)."""
    if frame.shape[2] != channels:
        alpha = np.ones(frame.shape[:2] + (1,), np.float32)
        frame = np.concatenate([frame[:, :, :3], alpha], axis=2)[:, :, :channels]
    return np.ascontiguousarray(frame[::-1], dtype=np.float32).ravel()


def mask_from_pixels(px: np.ndarray, name: str = "mask") -> np.ndarray:
    """A mask image's ``(H, W, C)`` pixels as ``(H, W)`` float32 in [0, 1]: its alpha where it has
    transparency, else the luminance of its stored values (as ``masks.load_mask``)."""
    if px.shape[2] == 4 and float(px[:, :, 3].min()) < 1.0:
        m = px[:, :, 3]
    else:
        m = px[:, :, :3] @ LUMA if px.shape[2] >= 3 else px[:, :, 0]
    return as_mask_array(np.clip(m, 0.0, 1.0), name=name)


def still_from_pixels(px: np.ndarray, width: int, height: int, srgb: bool) -> np.ndarray:
    """An image's ``(H, W, C)`` pixels at ``width x height`` as (H, W, 4) float32 *linear* values
    (``srgb``: the stored values are sRGB-encoded bytes, decoded here)."""
    from ...exporters.opencv import cv2

    if px.shape[2] != 4:
        alpha = np.ones(px.shape[:2] + (1,), np.float32)
        px = np.concatenate([px[:, :, :3] if px.shape[2] >= 3 else np.repeat(px[:, :, :1], 3, 2), alpha], axis=2)
    if (px.shape[1], px.shape[0]) != (width, height):
        interp = cv2.INTER_AREA if width <= px.shape[1] else cv2.INTER_LINEAR
        px = cv2.resize(px, (width, height), interpolation=interp)
    if srgb:
        px = srgb_to_linear(px, has_alpha=True)
    return np.ascontiguousarray(px, dtype=np.float32)
