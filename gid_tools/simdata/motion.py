"""Physical motion for simulated scenes, as a linear modal model (bpy-free).

Every moving vertex's displacement is a short weighted sum of scene-wide modal coordinates:
``d(v, t) = sum_j w[v, j] * q[idx[v, j], t]`` with ``w`` a 3-vector per entry (``VertexModes``).
Branches, grass blades, leaves, flags, flames and water waves all take this form, so the exact
trajectory of any surface point (a barycentric mix of its triangle's vertices) follows from the
same arrays that move the rendered geometry.

The coordinates ``q`` (``(M, T)``, one row per mode, ``T`` frames of one window) are damped
oscillators driven by wind, made in the frequency domain (``oscillator_response``): wind is
coloured noise with gusts (``wind_spectrum``), each oscillator's response is the wind's spectrum
times its transfer function, so the window is exactly periodic and each mode's energy sits where
its natural frequency and damping put it. Natural frequencies follow cantilever beam theory:
``f = (1.875^2 / 2 pi) * sqrt(E I / rho A) / L^2``, which for a round section of radius ``r`` is
``c * r / L^2`` (``cantilever_frequency``); the first mode's shape is zero and flat at the anchor
and largest at the free end (``cantilever_shape``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BETA1 = 1.8751040687119611  # first root of cos(b) cosh(b) = -1: the clamped-free beam's first mode
_SIGMA1 = (np.cosh(BETA1) + np.cos(BETA1)) / (np.sinh(BETA1) + np.sin(BETA1))


def cantilever_shape(s: np.ndarray) -> np.ndarray:
    """First bending mode of a clamped-free beam at relative arclength ``s`` in [0, 1], scaled to 1 at the tip."""
    s = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
    b = BETA1 * s
    shape = np.cosh(b) - np.cos(b) - _SIGMA1 * (np.sinh(b) - np.sin(b))
    tip = np.cosh(BETA1) - np.cos(BETA1) - _SIGMA1 * (np.sinh(BETA1) - np.sin(BETA1))
    return shape / tip


def cantilever_frequency(length: float, radius: float, stiffness: float = 1.0) -> float:
    """Natural frequency (Hz) of a round cantilever: ``stiffness * radius / length^2`` times the beam
    constant for green wood (``sqrt(E / rho) / 2`` with E ~ 10 GPa, rho ~ 900 kg/m^3, in SI units)."""
    wood = np.sqrt(10e9 / 900.0) / 2.0  # sqrt(E I / rho A) = r/2 * sqrt(E / rho) for a round section
    return float(stiffness * BETA1 ** 2 / (2.0 * np.pi) * wood * radius / length ** 2)


def frequencies(num_frames: int, fps: float) -> np.ndarray:
    """The real-FFT frequencies (Hz) of a ``num_frames`` window."""
    return np.fft.rfftfreq(num_frames, d=1.0 / fps)


def wind_spectrum(rng: np.random.Generator, num_frames: int, fps: float, *, slope: float = 5.0 / 3.0,
                  gusts: int = 2) -> np.ndarray:
    """Complex rfft spectrum of one window of wind-speed fluctuation (unit RMS): a ``f^-slope``
    (Kolmogorov) coloured noise plus ``gusts`` smooth bumps at random times."""
    f = frequencies(num_frames, fps)
    mag = np.zeros_like(f)
    mag[1:] = (f[1:] / f[1]) ** (-slope / 2.0)
    spec = mag * np.exp(2j * np.pi * rng.random(len(f))) * rng.rayleigh(1.0, len(f))
    t = np.arange(num_frames) / fps
    period = num_frames / fps
    gust = np.zeros(num_frames)
    for _ in range(gusts):
        centre, width = rng.uniform(0, period), rng.uniform(0.4, 1.5)
        dt = (t - centre + period / 2) % period - period / 2  # periodic distance
        gust += rng.uniform(0.5, 2.0) * np.exp(-0.5 * (dt / width) ** 2)
    spec = spec + np.fft.rfft(gust, norm="forward") * num_frames ** 0.5
    spec[0] = 0.0
    signal = np.fft.irfft(spec, n=num_frames)
    return spec / max(float(signal.std()), 1e-12)


def oscillator_response(force: np.ndarray, f0: float, zeta: float, num_frames: int, fps: float) -> np.ndarray:
    """The periodic steady-state displacement ``(T,)`` of ``x'' + 2 zeta w0 x' + w0^2 x = w0^2 F(t)``
    for the force spectrum ``force`` (rfft of one window): unit static gain, resonance ``1/(2 zeta)``."""
    f = frequencies(num_frames, fps)
    r = f / f0
    h = 1.0 / (1.0 - r ** 2 + 2j * zeta * r)
    return np.fft.irfft(force * h, n=num_frames)


def delayed(spec: np.ndarray, delay_s: float, num_frames: int, fps: float) -> np.ndarray:
    """``spec`` shifted later by ``delay_s`` seconds (wind reaching a point downstream)."""
    return spec * np.exp(-2j * np.pi * frequencies(num_frames, fps) * delay_s)


@dataclass
class VertexModes:
    """Per-vertex modal weights: vertex ``v`` moves by ``sum_j w[v, j] * q[idx[v, j], t]``.

    ``idx`` ``(N, J)`` int32 (unused entries point at mode 0 with zero weight), ``w`` ``(N, J, 3)``
    float32 metres per unit coordinate."""

    idx: np.ndarray
    w: np.ndarray

    @classmethod
    def static(cls, n: int) -> "VertexModes":
        return cls(np.zeros((n, 0), np.int32), np.zeros((n, 0, 3), np.float32))

    @property
    def n(self) -> int:
        return int(self.idx.shape[0])

    def displacement(self, q: np.ndarray) -> np.ndarray:
        """``(N, 3)`` displacement for coordinates ``q`` ``(M,)`` at one time, or ``(T, N, 3)`` for ``(M, T)``."""
        if self.idx.shape[1] == 0:
            shape = (self.n, 3) if q.ndim == 1 else (q.shape[1], self.n, 3)
            return np.zeros(shape, np.float32)
        if q.ndim == 1:
            return np.einsum("njc,nj->nc", self.w, q[self.idx]).astype(np.float32)
        return np.einsum("njc,njt->tnc", self.w, q[self.idx]).astype(np.float32)

    def take(self, rows: np.ndarray) -> "VertexModes":
        return VertexModes(self.idx[rows], self.w[rows])

    @staticmethod
    def concat(parts: list["VertexModes"]) -> "VertexModes":
        """One ``VertexModes`` for vertices stacked in order (entries padded to the widest)."""
        j = max((p.idx.shape[1] for p in parts), default=0)
        idx = np.concatenate([np.pad(p.idx, ((0, 0), (0, j - p.idx.shape[1]))) for p in parts])
        w = np.concatenate([np.pad(p.w, ((0, 0), (0, j - p.w.shape[1]), (0, 0))) for p in parts])
        return VertexModes(idx.astype(np.int32), w.astype(np.float32))


class ModeBank:
    """Collects modal coordinates as scenes add them: ``add`` returns the row of a new mode."""

    def __init__(self, num_frames: int, fps: float) -> None:
        self.num_frames, self.fps = num_frames, fps
        self.rows: list[np.ndarray] = []

    def add(self, series: np.ndarray) -> int:
        self.rows.append(np.asarray(series, dtype=np.float64))
        return len(self.rows) - 1

    def array(self) -> np.ndarray:
        if not self.rows:
            return np.zeros((1, self.num_frames), np.float64)
        return np.stack(self.rows)
