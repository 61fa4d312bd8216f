"""The Eulerian baselines' motion: one static field per pixel, driven by one sinusoid.

Holynski et al. 2021 animate a still with a single static flow field; for oscillation the field
becomes an axis ``M(p)`` along which each pixel swings, ``F_t(p) = M(p) sin(2 pi k* t / T)``.
``static_flow_field`` reads ``M`` off a reference volume (the oracle baseline of ``evaluate``,
and the training target of the learned field in ``static_flow``); ``static_flow_baseline``
turns a field back into a spectral volume with energy in one bin. Numpy only.
"""

from __future__ import annotations

import numpy as np

from ..motion.spectral_volume import SpectralVolume


def static_flow_field(ref: SpectralVolume) -> np.ndarray:
    """``M(p)`` ``(2, H, W)``: each pixel's principal trajectory axis times ``sqrt(2)`` x its RMS
    displacement along it (see module doc)."""
    tex = ref.to_motion_texture().astype(np.float64)  # (T, 2, H, W)
    x, y = tex[:, 0], tex[:, 1]
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    sxx, syy, sxy = (x * x).mean(0), (y * y).mean(0), (x * y).mean(0)
    # principal eigenvector of [[sxx, sxy], [sxy, syy]]
    theta = 0.5 * np.arctan2(2 * sxy, sxx - syy)
    dx, dy = np.cos(theta), np.sin(theta)
    var = sxx * dx * dx + 2 * sxy * dx * dy + syy * dy * dy
    amp = np.sqrt(2.0 * np.maximum(var, 0.0))
    return np.stack([amp * dx, amp * dy])


def static_flow_baseline(ref: SpectralVolume, k_star: int) -> SpectralVolume:
    """``F_t(p) = M(p) sin(2 pi k* t / T)`` with ``M`` the reference's principal axis (see module doc)."""
    m = static_flow_field(ref)
    coeffs = np.zeros_like(ref.coeffs)
    if 0 < k_star < ref.K:
        # A sin(w t) has S_k = -i A / 2
        coeffs[k_star, 1] = (-0.5 * m[0]).astype(np.float32)
        coeffs[k_star, 3] = (-0.5 * m[1]).astype(np.float32)
    return ref.replace(coeffs=coeffs, source="baseline:static-flow")
