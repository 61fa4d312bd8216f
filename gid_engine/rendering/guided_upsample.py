"""Edge-aware upsampling of motion fields, guided by the full-resolution still (fast guided filter).

The model predicts motion at 256x160 and the renderer splats at most twice that; a 4K backdrop
then needs the field upsampled ~8x. Bilinear upsampling smears a branch's motion several pixels
into the sky beside it (and the sky's stillness into the branch), which shows as a halo that
swims with the motion. The guided filter (He, Sun, Tang 2013) makes the field locally an affine
function of the image's luma, so motion edges snap to image edges; the *fast* variant (He & Sun
2015) fits that affine model at the field's own resolution and upsamples only its two
coefficients, so the full-resolution cost per frame is two resizes and a multiply-add per channel.

Everything that depends only on the still (its luma at both sizes, local means and variances) is
computed once per still in ``GuidedUpsampler``; per frame only the field's own statistics are.
"""

from __future__ import annotations

import numpy as np

from ...exporters.opencv import cv2
from ..media.imaging import luma as image_luma

RADIUS = 2  # box radius at the small resolution (px): the scale of structure the model resolves
EPS = 1e-3  # regulariser on luma variance in [0, 1]^2: below it a region counts as flat


def luma(pixels: np.ndarray) -> np.ndarray:
    """(H, W) float32 luma in [0, 1] of an image (alpha ignored, HDR clipped): the guide."""
    return np.clip(image_luma(pixels), 0.0, 1.0).astype(np.float32)


class GuidedUpsampler:
    """Upsample ``(C, h, w)`` fields to the guide's ``(H, W)``, edge-aware."""

    def __init__(self, guide: np.ndarray, small_size: tuple[int, int], radius: int = RADIUS, eps: float = EPS) -> None:
        self.height, self.width = guide.shape[:2]
        self.small_size = (int(small_size[0]), int(small_size[1]))  # (w, h)
        self.guide = np.ascontiguousarray(guide, dtype=np.float32)
        self.small = cv2.resize(self.guide, self.small_size, interpolation=cv2.INTER_AREA)
        self.ksize = (2 * radius + 1, 2 * radius + 1)
        self.mean_i = self._box(self.small)
        self.var_i = self._box(self.small * self.small) - self.mean_i * self.mean_i
        self.eps = float(eps)

    def _box(self, x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, self.ksize, borderType=cv2.BORDER_REFLECT)

    def __call__(self, field: np.ndarray) -> np.ndarray:
        """``field`` (C, h, w) at ``small_size`` -> (C, H, W) float32 (values unchanged in scale)."""
        c, h, w = field.shape
        if (w, h) != self.small_size:
            raise ValueError(f"field is {w}x{h}, the upsampler was built for {self.small_size[0]}x{self.small_size[1]}")
        out = np.empty((c, self.height, self.width), dtype=np.float32)
        for k in range(c):
            p = np.ascontiguousarray(field[k], dtype=np.float32)
            mean_p = self._box(p)
            cov = self._box(self.small * p) - self.mean_i * mean_p
            a = cov / (self.var_i + self.eps)
            b = mean_p - a * self.mean_i
            a_full = cv2.resize(self._box(a), (self.width, self.height), interpolation=cv2.INTER_LINEAR)
            b_full = cv2.resize(self._box(b), (self.width, self.height), interpolation=cv2.INTER_LINEAR)
            out[k] = a_full * self.guide + b_full
        return out
