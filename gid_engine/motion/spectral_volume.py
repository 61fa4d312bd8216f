"""The spectral volume: the temporal Fourier coefficients of every pixel's 2D trajectory.

Conventions (fixed here, relied on everywhere):

* Array layout ``(K, 4, H, W)`` float32, channels ``(Re dx, Im dx, Re dy, Im dy)``, in pixels of
  the volume's own resolution; x points right, y points down (image rows).
* A motion texture ``F`` has shape ``(T, 2, H, W)``: ``F[t]`` is the displacement at frame ``t``
  (``t = 0 .. T-1`` at ``fps``) of the pixel that sits at ``p`` in the reference frame I0, so that
  pixel is at ``p + F[t](p)``. Extracted motion has ``F[0] == 0``.
* ``S_k = (1/T) * sum_t F_t exp(-2 pi i k t / T)`` (numpy's ``norm="forward"``), ``k = 0 .. K-1``,
  frequency ``k * fps / T`` Hz. With this scaling a sinusoid of amplitude ``A`` pixels at bin
  ``k > 0`` has ``|S_k| = A / 2`` and ``S_0`` is the mean displacement, independent of ``T``.

Evaluating the truncated Fourier series at any real time gives a band-limited, exactly
``T``-periodic trajectory: that is how we do slow motion and seamless loops.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError

DEFAULT_K = 16
DEFAULT_FPS = 30.0
DEFAULT_FRAMES = 150
# The largest coefficient a volume may hold, in pixels: motion beyond the largest image gid accepts
# (16384 px a side) by two orders of magnitude is damage, and float32 sums of it stay finite.
MAX_COEFFICIENT_PX = 1e6


@dataclass(frozen=True)
class SpectralVolume:
    """K temporal Fourier coefficients per pixel, plus the clip timing they came from.

    ``coeffs`` is ``(K, 4, H, W)`` float32. ``fps`` and ``num_frames`` define the fundamental
    period ``num_frames / fps`` seconds (5 s for the paper's 150 frames at 30 fps), so bin ``k``
    is at ``k * fps / num_frames`` Hz. ``source`` says where the motion came from (a video path,
    "predicted", "synthetic", ...) and ``extra`` carries any further provenance as JSON-able data.
    """

    coeffs: np.ndarray
    fps: float = DEFAULT_FPS
    num_frames: int = DEFAULT_FRAMES
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        c = self.coeffs
        if not isinstance(c, np.ndarray) or c.ndim != 4 or c.shape[1] != 4:
            shape = getattr(c, "shape", None)
            raise InputError(f"spectral volume must have shape (K, 4, H, W), got {shape}")
        k, _, h, w = c.shape
        if k < 1 or h < 1 or w < 1:
            raise InputError(f"spectral volume has an empty dimension: shape {c.shape}")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise InputError(f"spectral volume fps must be a positive number, got {self.fps}")
        if self.num_frames < 2:
            raise InputError(f"spectral volume needs num_frames >= 2, got {self.num_frames}")
        if k > self.num_frames // 2:
            raise InputError(
                f"K={k} frequencies need at least {2 * k} frames per period, got {self.num_frames}"
            )
        if c.dtype != np.float32:
            object.__setattr__(self, "coeffs", c.astype(np.float32))
        if not np.isfinite(self.coeffs).all():
            raise InputError("spectral volume contains NaN or infinite values")
        peak = float(np.abs(self.coeffs).max()) if self.coeffs.size else 0.0
        if peak > MAX_COEFFICIENT_PX:  # checked before any arithmetic on them can overflow
            raise InputError(f"spectral volume coefficients reach {peak:.3g} px, over the {MAX_COEFFICIENT_PX:.0e} px "
                             "gid accepts (a damaged file, or an amplitude far too large)")

    # ----------------------------------------------------------------------------- geometry
    @property
    def K(self) -> int:
        return int(self.coeffs.shape[0])

    @property
    def height(self) -> int:
        return int(self.coeffs.shape[2])

    @property
    def width(self) -> int:
        return int(self.coeffs.shape[3])

    @property
    def period_seconds(self) -> float:
        """Length of one full loop of the motion, in seconds."""
        return self.num_frames / self.fps

    @property
    def frequencies_hz(self) -> np.ndarray:
        return np.arange(self.K, dtype=np.float64) * self.fps / self.num_frames

    def complex_coeffs(self) -> np.ndarray:
        """``(K, 2, H, W)`` complex64 view: axis 1 is (x, y)."""
        c = self.coeffs
        return (c[:, 0::2] + 1j * c[:, 1::2]).astype(np.complex64)

    def replace(self, **changes: Any) -> "SpectralVolume":
        return dataclasses.replace(self, **changes)

    # ----------------------------------------------------------------------------- motion texture
    @classmethod
    def from_motion_texture(
        cls,
        texture: np.ndarray,
        fps: float = DEFAULT_FPS,
        k: int = DEFAULT_K,
        source: str = "",
        extra: dict[str, Any] | None = None,
    ) -> "SpectralVolume":
        """Real FFT over time of a ``(T, 2, H, W)`` motion texture, keeping the first ``k`` bins."""
        texture = np.asarray(texture)
        if texture.ndim != 4 or texture.shape[1] != 2:
            raise InputError(f"motion texture must have shape (T, 2, H, W), got {texture.shape}")
        t = texture.shape[0]
        if k > t // 2:
            raise InputError(f"a {t}-frame motion texture holds at most {t // 2} frequencies, asked {k}")
        spec = np.fft.rfft(texture.astype(np.float64), axis=0, norm="forward")[:k]  # (k, 2, H, W)
        coeffs = np.empty((k, 4) + texture.shape[2:], dtype=np.float32)
        coeffs[:, 0] = spec[:, 0].real
        coeffs[:, 1] = spec[:, 0].imag
        coeffs[:, 2] = spec[:, 1].real
        coeffs[:, 3] = spec[:, 1].imag
        return cls(coeffs, fps=float(fps), num_frames=int(t), source=source, extra=dict(extra or {}))

    def to_motion_texture(self) -> np.ndarray:
        """Inverse real FFT: the ``(T, 2, H, W)`` float32 texture at the clip's own frames."""
        spec = np.zeros((self.num_frames // 2 + 1, 2, self.height, self.width), dtype=np.complex128)
        spec[: self.K] = self.complex_coeffs()
        return np.fft.irfft(spec, n=self.num_frames, axis=0, norm="forward").astype(np.float32)

    def displacement_at(self, times: np.ndarray | float) -> np.ndarray:
        """Displacement fields at arbitrary times, in frames of the clip (``fps`` units).

        Returns ``(N, 2, H, W)`` float32 for ``N`` times (or ``(2, H, W)`` for a scalar). The
        phase is taken modulo one period, so ``t`` and ``t + num_frames`` give bit-identical
        fields: loops close exactly.
        """
        scalar = np.ndim(times) == 0
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
        basis = self._time_basis(t)  # (N, 2K)
        fields = basis @ self._basis_coefficients  # (N, 2*H*W)
        out = fields.reshape(len(t), 2, self.height, self.width).astype(np.float32, copy=False)
        return out[0] if scalar else out

    def _time_basis(self, t: np.ndarray) -> np.ndarray:
        """Rows ``[1, 2cos(th_1)..2cos(th_K-1), 0, -2sin(th_1)..]`` with ``th_k = 2 pi k t / T``."""
        frac = np.mod(t / self.num_frames, 1.0)
        theta = 2.0 * np.pi * frac[:, None] * np.arange(self.K)[None, :]
        scale = np.full(self.K, 2.0)
        scale[0] = 1.0
        return np.concatenate([scale * np.cos(theta), -scale * np.sin(theta)], axis=1).astype(np.float32)

    @functools.cached_property
    def _basis_coefficients(self) -> np.ndarray:
        """``(2K, 2*H*W)``: real parts stacked over imaginary parts, x then y per row.

        Cached: rendering evaluates the same volume at hundreds of times, and rebuilding this
        matrix (0.5 GB at 1080p) each time would cost more than the evaluation itself.
        """
        c = self.coeffs
        real = c[:, 0::2].reshape(self.K, -1)
        imag = c[:, 1::2].reshape(self.K, -1)
        return np.concatenate([real, imag], axis=0)

    # ----------------------------------------------------------------------------- edits
    def scaled(self, amplitude: float) -> "SpectralVolume":
        """Motion magnified (``> 1``) or minified (``< 1``): every coefficient times ``amplitude``."""
        if not math.isfinite(amplitude) or amplitude < 0:
            raise InputError(f"amplitude must be a finite number >= 0, got {amplitude}")
        return self.replace(coeffs=(self.coeffs * np.float32(amplitude)).astype(np.float32))

    def anchored(self) -> "SpectralVolume":
        """Shift the DC term so the displacement at ``t = 0`` is exactly zero.

        Truncating to K bins leaves a small non-zero ``F_0``; anchoring makes frame 0 of a render
        the untouched input image, and keeps the motion periodic (a constant shift).
        """
        f0 = self.displacement_at(0.0).astype(np.float64)  # (2, H, W)
        coeffs = self.coeffs.copy()
        coeffs[0, 0] -= f0[0].astype(np.float32)
        coeffs[0, 2] -= f0[1].astype(np.float32)
        return self.replace(coeffs=coeffs)

    def resized(self, width: int, height: int) -> "SpectralVolume":
        """Resample to another resolution; displacements scale with the size (x by width, y by height)."""
        if width < 1 or height < 1:
            raise InputError(f"cannot resize a spectral volume to {width}x{height}")
        if (width, height) == (self.width, self.height):
            return self
        from ..media.imaging import resize_channels  # local: keeps numpy-only users of this module light

        planes = self.coeffs.reshape(self.K * 4, self.height, self.width)
        out = resize_channels(planes, width, height).reshape(self.K, 4, height, width)
        out[:, 0:2] *= np.float32(width / self.width)
        out[:, 2:4] *= np.float32(height / self.height)
        return self.replace(coeffs=out.astype(np.float32))

    def mean_magnitude(self, samples: int | None = None) -> np.ndarray:
        """``W(p) = mean_t ||F_t(p)||``, the paper's splatting weight, over one period.

        ``samples`` times are taken (default: the clip's own frames, which is exact for the mean
        of a band-limited signal sampled at its own rate).
        """
        n = self.num_frames if samples is None else int(samples)
        total = np.zeros((self.height, self.width), dtype=np.float64)
        for start in range(0, n, 16):
            t = np.arange(start, min(n, start + 16), dtype=np.float64) * (self.num_frames / n)
            f = self.displacement_at(t)
            total += np.sqrt(f[:, 0] ** 2 + f[:, 1] ** 2).sum(axis=0)
        return (total / n).astype(np.float32)

    def metadata(self) -> dict[str, Any]:
        """JSON-able description (everything but the array)."""
        return {
            "K": self.K,
            "height": self.height,
            "width": self.width,
            "fps": self.fps,
            "num_frames": self.num_frames,
            "frequencies_hz": [round(float(f), 6) for f in self.frequencies_hz],
            "layout": "K,4,H,W: Re dx, Im dx, Re dy, Im dy (pixels, y down, numpy norm=forward)",
            "source": self.source,
            "extra": self.extra,
        }
