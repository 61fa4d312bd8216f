"""Seamless loops without gradients: project a spectral volume onto the loop constraints.

The torch sampler makes loops seamless with motion self-guidance (paper eq. 5), which needs
``grad_z L_g`` through the VAE decoder: onnxruntime has no autograd, so the torch-free path
enforces the same conditions exactly instead, after sampling. With ``F(t)`` the displacement
(``SpectralVolume.displacement_at``) and ``T`` the period in frames, ``L_g`` of
``motion_prior/pipeline.py`` is zero iff

* position: ``F(T-1) - F(0) = 0``  (``F_T = F_1``);
* velocity: ``(F(T-1) - F(T-2)) - (F(1) - F(0)) = 0``  (``dF_T = dF_1``);

and the volume is anchored when ``F(0) = 0``. Each is a linear functional of one pixel's
coefficients on one axis, ``x = (Re S_0 .. Re S_{K-1}, Im S_0 .. Im S_{K-1})``, the same for every
pixel and for x and y: ``F(t) = b(t) . x`` with ``b(t) = (c_k cos th_k, -c_k sin th_k)``,
``th_k = 2 pi k t / T``, ``c_0 = 1``, ``c_k = 2``. A fourth row pins ``Im S_0 = 0`` (a real
signal's DC has no imaginary part; it never shows in ``F``). Stacking the rows as ``A`` (4 x 2K),
the smallest change (in L2 over the coefficients) that satisfies them all is the orthogonal
projection ``x' = (I - A^T (A A^T)^-1 A) x``: one 2K x 2K matrix applied to all pixels at once
(about a millisecond at 256x160). A truncated Fourier series is always periodic; what this removes
is the model's "snap back" at the end of the period (position and velocity jumps at the seam).
"""

from __future__ import annotations

import functools

import numpy as np

from .spectral_volume import SpectralVolume


def time_basis(k: int, num_frames: int, t: float) -> np.ndarray:
    """``b(t)`` (2K,) float64: ``F(t) = b(t) . (Re S, Im S)`` for one pixel and axis."""
    theta = 2.0 * np.pi * (float(t) / num_frames % 1.0) * np.arange(k)
    c = np.full(k, 2.0)
    c[0] = 1.0
    return np.concatenate([c * np.cos(theta), -c * np.sin(theta)])


def loop_constraints(k: int, num_frames: int) -> np.ndarray:
    """``A`` (4, 2K) float64, rows: anchor ``F(0)``, position, velocity, ``Im S_0``."""
    b = {t: time_basis(k, num_frames, t) for t in (0, 1, num_frames - 2, num_frames - 1)}
    t_last = num_frames - 1
    im0 = np.zeros(2 * k)
    im0[k] = 1.0
    return np.stack([
        b[0],
        b[t_last] - b[0],
        (b[t_last] - b[num_frames - 2]) - (b[1] - b[0]),
        im0,
    ])


@functools.lru_cache(maxsize=8)
def loop_projection(k: int, num_frames: int) -> np.ndarray:
    """``P = I - A^T (A A^T)^-1 A`` (2K, 2K) float64, read-only (cached)."""
    a = loop_constraints(k, num_frames)
    p = np.eye(2 * k) - a.T @ np.linalg.solve(a @ a.T, a)
    p.setflags(write=False)
    return p


def project_coeffs(coeffs: np.ndarray, num_frames: int) -> np.ndarray:
    """``(K, 4, H, W)`` -> the nearest coefficients (L2) that loop seamlessly and are anchored."""
    k, _, h, w = coeffs.shape
    p = loop_projection(k, int(num_frames))
    out = np.empty(coeffs.shape, dtype=np.float32)
    for re, im in ((0, 1), (2, 3)):  # x, then y
        x = np.concatenate([coeffs[:, re].reshape(k, -1), coeffs[:, im].reshape(k, -1)]).astype(np.float64)
        y = p @ x
        out[:, re] = y[:k].reshape(k, h, w)
        out[:, im] = y[k:].reshape(k, h, w)
    return out


def make_seamless(volume: SpectralVolume) -> SpectralVolume:
    """The volume with its seam removed (``seam_error`` ~ 0) and anchored (``F(0) = 0``)."""
    return volume.replace(coeffs=project_coeffs(volume.coeffs, volume.num_frames))


def seam_errors(volume: SpectralVolume) -> tuple[float, float, float]:
    """Eq. 5's ``L_g`` in pixels, as (total, position, velocity): numpy twin of ``loop_loss``.

    ``|.|_1`` is summed over x and y and averaged over pixels, like the torch sampler reports it.
    """
    t = volume.num_frames
    f = volume.displacement_at(np.array([0.0, 1.0, t - 2.0, t - 1.0])).astype(np.float64)
    pos = float(np.abs(f[3] - f[0]).sum(0).mean())
    vel = float(np.abs((f[3] - f[2]) - (f[1] - f[0])).sum(0).mean())
    return pos + vel, pos, vel


def seam_error(volume: SpectralVolume) -> float:
    """``L_g`` (pixels) of a volume: 0 for a loop that is still at the seam."""
    return seam_errors(volume)[0]


def relative_change(before: np.ndarray, after: np.ndarray, *, visible_only: bool = True) -> float:
    """``||after - before|| / ||before||`` over ``(K, 4, H, W)`` coefficients (0 for all-zero ``before``).

    ``visible_only`` leaves out ``Im S_0``: it never shows in the motion (``sin 0 = 0``), yet a
    model may emit it and the projection zeroes it, which would otherwise dominate the figure.
    """
    b = before.astype(np.float64)
    d = after.astype(np.float64) - b
    if visible_only:
        b, d = b.copy(), d.copy()
        b[0, 1::2] = 0.0
        d[0, 1::2] = 0.0
    norm = float(np.linalg.norm(b))
    return float(np.linalg.norm(d)) / norm if norm else 0.0
