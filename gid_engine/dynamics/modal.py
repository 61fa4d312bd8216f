"""Interactive dynamics from a single image: an image-space modal basis and its simulation.

Davis, Chen & Durand (2015, "Image-space modal bases for plausible manipulation of objects in
video") and the paper's eq. 6: the displacement field of the scene's response to a force is

    F_t(p) = sum_j  Re( U_j(p) q_j(t) )

where the mode shapes ``U_j`` are the spectral volume's coefficients at chosen frequency bins
``f_j`` and every complex modal coordinate ``q_j`` is a decoupled mass-spring-damper

    m q'' + c q' + k q = f_j(t),   k = s m w_j^2,  c = 2 zeta sqrt(k m),  w_j = 2 pi f_j

(``m`` mass scale, ``s`` stiffness scale, ``zeta`` damping ratio).

Real and imaginary parts of ``q_j`` evolve independently under the same real dynamics.

Units and conventions (image convention throughout: x right, y DOWN, displacements in pixels):

* Modes live at the volume's own (model) resolution and are mass-normalised as in Davis et al.
  for a uniform mass: ``sum_p |U_j(p)|^2 = 1`` over the masked image. ``ModalBasis.norms[j]``
  keeps the scale back to the volume (``S_j = norms[j] * U_j`` on the mask's support).
* ``Poke.strength`` is in pixels of the model resolution: an impulse poke of strength 1 at the
  antinode of the dominant (most powerful) mode, pushing along that mode's main direction,
  makes that mode swing to a peak of 1 px there (undamped, default mass and stiffness; damping
  0.03 makes the first peak ~5 % lower, other modes add their own share, a wide poke averages
  the mode shape under it). A drag (``duration > 0``) of strength 1 holds that point 1 px away
  once it settles. ``mass_scale`` and ``stiffness_scale`` change the response physically
  (impulse peak ~ 1 / (m sqrt(s)), drag hold ~ 1 / (m s)).
* ``Poke.radius`` is the standard deviation of the Gaussian falloff as a fraction of the image
  width (resolution independent); 0 = a point poke (bilinear).
* A motion mask ``m`` (``mask=``) confines the modes to its support ``m > 0`` (normalised
  there; a poke outside moves nothing) and multiplies the displayed displacement by ``m``, so
  0 freezes, 0.5 halves the motion there and 1 leaves it (a uniformly scaled *pre-masked*
  volume would be undone by the normalisation: pass the mask here instead).
* ``Poke.frame``/``duration`` are in frames of the simulator's ``fps``; integer frame ``n`` is
  time ``n / fps`` s. Pokes at fractional frames act at their exact time inside the step.

Integrator: the exact discretisation of each damped oscillator for a force constant over a
step (the closed-form matrix exponential of the 2x2 system, augmented with the force; agrees
with a 40-digit ``expm`` to ~1e-12 over omega*dt, zeta and step lengths). It is exact for
any ``w * dt``, any damping ratio (under-, critically and over-damped alike), and energy can
only decrease without force. The paper uses explicit Euler, whose step matrix has
``|eigenvalue|^2 = 1 - 2 zeta w dt + (w dt)^2``: it gains energy every step as soon as
``w dt > 2 zeta`` (at 30 fps and zeta = 0.03, every mode above 0.29 Hz), so stiff or
high-frequency modes explode; tests/test_modal.py demonstrates both.

Determinism: the state at frame N depends only on (pokes, parameters): simulation always
runs from frame 0 at rest, caching states at checkpoints, so visiting frames in any order
gives bit-identical results.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ...exporters.opencv import cv2
from ..errors import InputError
from ..motion.masks import resize_mask
from ..motion.spectral_volume import SpectralVolume

DEFAULT_DAMPING = 0.03
DEFAULT_MAX_SIDE = 512


# --------------------------------------------------------------------------------------- pokes
@dataclass(frozen=True)
class Poke:
    """A force on the image: an impulse at ``frame`` or, with ``duration > 0``, a drag.

    ``x, y`` normalised [0, 1] image coordinates (x right, y down; 0 = left/top edge).
    ``dx, dy`` direction (normalised here; length does not matter). ``strength`` pixels (see the
    module docstring; negative pushes the other way). ``radius`` Gaussian sigma as a fraction of
    the image width. ``duration`` frames: 0 = impulse, > 0 = constant force over
    ``[frame, frame + duration)``.
    """

    frame: float
    x: float
    y: float
    dx: float
    dy: float
    strength: float = 1.0
    radius: float = 0.05
    duration: float = 0.0

    def __post_init__(self) -> None:
        for name in ("frame", "x", "y", "dx", "dy", "strength", "radius", "duration"):
            value = getattr(self, name)
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise InputError(f"poke {name} must be a number, got {value!r}") from None
            if not math.isfinite(value):
                raise InputError(f"poke {name} must be finite, got {value}")
            object.__setattr__(self, name, value)
        if self.dx == 0.0 and self.dy == 0.0:
            raise InputError("poke direction (dx, dy) must not be zero")
        if self.radius < 0:
            raise InputError(f"poke radius must be >= 0, got {self.radius}")
        if self.duration < 0:
            raise InputError(f"poke duration must be >= 0 frames, got {self.duration}")

    @property
    def direction(self) -> tuple[float, float]:
        n = math.hypot(self.dx, self.dy)
        return (self.dx / n, self.dy / n)

    @property
    def is_impulse(self) -> bool:
        return self.duration == 0.0


def _axis_weights(center_px: float, sigma_px: float, n: int) -> np.ndarray:
    """1D falloff over pixel centres ``0..n-1``, normalised over the infinite pixel grid.

    Normalising over the whole line (not just the image) makes a poke near or past an edge
    weaker rather than concentrating all its force on the border pixels.
    """
    idx = np.arange(n, dtype=np.float64)
    if sigma_px <= 1e-3:  # point poke: the bilinear tent sums to 1 over the integers
        return np.maximum(0.0, 1.0 - np.abs(idx - center_px))
    reach = int(math.ceil(8 * sigma_px)) + 2
    base = math.floor(center_px)
    full = np.arange(base - reach, base + reach + 1, dtype=np.float64)
    total = np.exp(-0.5 * ((full - center_px) / sigma_px) ** 2).sum()
    return np.exp(-0.5 * ((idx - center_px) / sigma_px) ** 2) / total


def poke_weights(poke: Poke, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Separable Gaussian weights ``(wy (H,), wx (W,))`` of a poke at a ``width x height`` grid."""
    sigma = poke.radius * width
    wx = _axis_weights(poke.x * width - 0.5, sigma, width)
    wy = _axis_weights(poke.y * height - 0.5, sigma, height)
    return wy, wx


# --------------------------------------------------------------------------------------- basis
@dataclass(frozen=True, eq=False)
class ModalBasis:
    """Image-space modes at the model resolution.

    ``modes`` ``(J, 2, H, W)`` complex64, axis 1 = (x, y), each with ``sum |U_j|^2 = 1`` over
    the mask's support; ``omega`` natural angular frequencies (rad/s); ``bins`` the spectral
    volume bins they came from; ``power`` the mask-weighted ``sum |S|^2`` of each bin;
    ``norms`` the scale back to the volume; ``mask`` ``(H, W)`` float32 (or None) multiplies
    the displacement; ``dominant`` the index of the most powerful mode, which calibrates
    ``impulse_gain`` / ``drag_gain`` (see the module docstring for the units).
    """

    modes: np.ndarray
    omega: np.ndarray
    bins: np.ndarray
    power: np.ndarray
    norms: np.ndarray
    mask: np.ndarray | None
    dominant: int
    impulse_gain: float
    drag_gain: float

    @property
    def num_modes(self) -> int:
        return int(self.modes.shape[0])

    @property
    def height(self) -> int:
        return int(self.modes.shape[2])

    @property
    def width(self) -> int:
        return int(self.modes.shape[3])

    @property
    def frequencies_hz(self) -> np.ndarray:
        return self.omega / (2.0 * np.pi)

    @classmethod
    def from_spectral_volume(
        cls,
        sv: SpectralVolume,
        frequencies: str | Sequence[int] = "all",
        num_peaks: int = 4,
        mask: np.ndarray | None = None,
        exclude_dc: bool = True,
        max_side: int | None = DEFAULT_MAX_SIDE,
    ) -> "ModalBasis":
        """Modes from a spectral volume.

        ``frequencies``: ``"all"`` (every bin), ``"peaks"`` (the ``num_peaks`` bins of largest
        total power ``sum_p |S_k(p)|^2``, DC never counted as a peak), or explicit bin indices.
        ``mask`` (any size, [0, 1]) restricts the modes to its support (a poke outside does
        nothing) and scales the displayed motion per pixel. ``exclude_dc``: bin 0 has no
        restoring force (a free mode that a poke shifts for good), so it is left out by
        default. ``max_side``: volumes larger than this are downsampled first (speed; the
        motion is smooth), ``None`` keeps the volume's resolution.
        """
        if not isinstance(sv, SpectralVolume):
            raise InputError(f"expected a SpectralVolume, got {type(sv).__name__}")
        if max_side is not None and max(sv.width, sv.height) > max_side:
            scale = max_side / max(sv.width, sv.height)
            sv = sv.resized(max(1, round(sv.width * scale)), max(1, round(sv.height * scale)))
        h, w = sv.height, sv.width
        m = None if mask is None else resize_mask(mask, w, h)
        coeffs = sv.complex_coeffs().astype(np.complex128)  # (K, 2, H, W)
        weighted = coeffs if m is None else coeffs * m[None, None]
        power_all = (np.abs(weighted) ** 2).sum(axis=(1, 2, 3))  # (K,)

        first = 1 if exclude_dc else 0
        if isinstance(frequencies, str):
            if frequencies == "all":
                bins = list(range(first, sv.K))
            elif frequencies == "peaks":
                if int(num_peaks) < 1:
                    raise InputError(f"num_peaks must be >= 1, got {num_peaks}")
                candidates = np.arange(1, sv.K)
                order = candidates[np.argsort(-power_all[1:], kind="stable")]
                bins = sorted(int(b) for b in order[: int(num_peaks)])
                if not exclude_dc:
                    bins = [0] + bins
            else:
                raise InputError(f'frequencies must be "all", "peaks" or bin indices, got {frequencies!r}')
        else:
            bins = sorted({int(b) for b in frequencies})
            if any(b < 0 or b >= sv.K for b in bins):
                raise InputError(f"frequency bins must lie in 0..{sv.K - 1}, got {list(frequencies)}")
            if exclude_dc:
                bins = [b for b in bins if b != 0]
        if not bins:
            raise InputError(f"no frequency bins to build modes from (K={sv.K}, exclude_dc={exclude_dc})")
        bins_arr = np.asarray(bins, dtype=np.int64)

        support = None if m is None else (m > 0).astype(np.float64)
        shapes = coeffs[bins_arr] if support is None else coeffs[bins_arr] * support[None, None]
        norms = np.sqrt((np.abs(shapes) ** 2).sum(axis=(1, 2, 3)))  # (J,)
        safe = np.where(norms > 0, norms, 1.0)
        modes = (shapes / safe[:, None, None, None]).astype(np.complex64)
        omega = 2.0 * np.pi * sv.frequencies_hz[bins_arr]
        power = power_all[bins_arr]

        # Calibration: the most powerful mode with a restoring force (omega > 0).
        candidates = [j for j in range(len(bins)) if omega[j] > 0 and norms[j] > 0]
        dominant = max(candidates, key=lambda j: (power[j], -j)) if candidates else 0
        impulse_gain = drag_gain = 0.0
        if candidates:
            u = modes[dominant].astype(np.complex128)
            a = np.abs(u[0]) ** 2
            d = np.abs(u[1]) ** 2
            b = (u[0] * np.conj(u[1])).real
            lam = 0.5 * (a + d) + np.sqrt((0.5 * (a - d)) ** 2 + b**2)  # largest eigenvalue of Re(U U^H)
            lam_max = float(lam.max())
            if lam_max > 0:
                impulse_gain = float(omega[dominant]) / lam_max
                drag_gain = float(omega[dominant]) ** 2 / lam_max
        return cls(
            modes=modes,
            omega=omega.astype(np.float64),
            bins=bins_arr,
            power=power.astype(np.float64),
            norms=norms.astype(np.float64),
            mask=m,
            dominant=int(dominant),
            impulse_gain=impulse_gain,
            drag_gain=drag_gain,
        )

    def project(self, poke: Poke) -> np.ndarray:
        """``f_j = sum_p w(p) U_j(p)^H d``: the poke's (unit-strength, ungained) modal forces, (J,) complex."""
        wy, wx = poke_weights(poke, self.width, self.height)
        dx, dy = poke.direction
        # sum over y and x of w * conj(U): (J, 2)
        sums = np.einsum("y,jcyx,x->jc", wy, np.conj(self.modes.astype(np.complex128)), wx)
        return sums[:, 0] * dx + sums[:, 1] * dy


# --------------------------------------------------------------------------------------- dynamics
def oscillator_step(omega: float, zeta: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact step of ``q'' + 2 zeta omega q' + omega^2 q = u`` over ``h`` seconds, ``u`` constant.

    Returns ``(P (2, 2), G (2,))`` with ``[q, q'](t + h) = P [q, q'](t) + G u``: the closed form
    of the matrix exponential of the 2x2 system (augmented with the constant force), written so
    that it neither overflows nor cancels for any ``omega * h``, and is continuous through
    critical damping (``zeta = 1`` is the limit of both branches). ``omega = 0`` is a free mass.
    """
    omega, zeta, h = float(omega), float(zeta), float(h)
    if omega == 0.0:
        return np.array([[1.0, h], [0.0, 1.0]]), np.array([0.5 * h * h, h])
    alpha = zeta * omega
    e = math.exp(-alpha * h)
    one_minus_e = -math.expm1(-alpha * h)
    if zeta <= 1.0:
        wd = omega * math.sqrt(max(0.0, 1.0 - zeta * zeta))
        x = wd * h
        ec = e * math.cos(x)
        es = e * h * (math.sin(x) / x if x > 1e-8 else 1.0 - x * x / 6.0)  # e * sin(wd h) / wd
        one_minus_ec = one_minus_e + 2.0 * e * math.sin(0.5 * x) ** 2
    else:
        beta = omega * math.sqrt(zeta * zeta - 1.0)
        x = beta * h
        gap = omega / (zeta + math.sqrt(zeta * zeta - 1.0))  # alpha - beta > 0, without cancellation
        slow, fast = math.exp(-gap * h), math.exp(-(alpha + beta) * h)
        ec = 0.5 * (slow + fast)  # e * cosh(beta h)
        if x > 1e-4:
            es = 0.5 * (slow - fast) / beta  # e * sinh(beta h) / beta
            e_sinh2 = 0.25 * (slow - 2.0 * e + fast)  # e * sinh(beta h / 2)^2
        else:
            es = e * h * (1.0 + x * x / 6.0)
            e_sinh2 = e * (0.5 * x) ** 2 * (1.0 + x * x / 12.0)
        one_minus_ec = one_minus_e - 2.0 * e_sinh2
    p = np.array([[ec + alpha * es, es], [-omega * omega * es, ec - alpha * es]])
    # Constant force: q -> u / omega^2 + P (q - u / omega^2), so G = (I - P) [1 / omega^2, 0].
    if max(2.0 * alpha, omega) * h <= 1.0:
        # Short steps: the closed form below would cancel; integrate the impulse response's Taylor
        # series instead (derivatives d_n at 0: d0 = 0, d1 = 1, d_{n+2} = -2 alpha d_{n+1} - omega^2 d_n).
        d_prev, d_cur, term, g0 = 0.0, 1.0, h, 0.0
        for n in range(1, 40):
            term *= h / (n + 1)  # h^(n+1) / (n+1)!
            g0 += d_cur * term
            d_prev, d_cur = d_cur, -2.0 * alpha * d_cur - omega * omega * d_prev
    else:
        g0 = (one_minus_ec - alpha * es) / (omega * omega)
    g = np.array([g0, es])
    return p, g


class _Dynamics:
    """Per-parameter exact step matrices for all modes, cached by step length (in frames)."""

    def __init__(self, omega: np.ndarray, zeta: float, mass: float, fps: float) -> None:
        self.omega = omega
        self.zeta = zeta
        self.mass = mass
        self.fps = fps
        self._cache: dict[float, tuple[np.ndarray, ...]] = {}

    def step(self, frames: float) -> tuple[np.ndarray, ...]:
        hit = self._cache.get(frames)
        if hit is None:
            h = frames / self.fps
            mats = [oscillator_step(float(w), self.zeta, h) for w in self.omega]
            p = np.array([m[0] for m in mats]).reshape(-1, 2, 2)
            g = np.array([m[1] for m in mats]).reshape(-1, 2)
            hit = (p[:, 0, 0].copy(), p[:, 0, 1].copy(), p[:, 1, 0].copy(), p[:, 1, 1].copy(),
                   g[:, 0].copy(), g[:, 1].copy())
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[frames] = hit
        return hit

    def advance(self, q: np.ndarray, v: np.ndarray, frames: float, accel: np.ndarray | None):
        p00, p01, p10, p11, g0, g1 = self.step(frames)
        nq = p00 * q + p01 * v
        nv = p10 * q + p11 * v
        if accel is not None:
            nq = nq + g0 * accel
            nv = nv + g1 * accel
        # A mode that has rung down below 1e-100 (px, px/s) is exactly at rest: flushing it keeps
        # the arithmetic out of denormals (slow, and rounding there is not physics).
        tiny = (np.abs(nq) < 1e-100) & (np.abs(nv) < 1e-100)
        if tiny.any():
            nq = np.where(tiny, 0.0, nq)
            nv = np.where(tiny, 0.0, nv)
        return nq, nv


@dataclass(frozen=True)
class _Events:
    """Pokes turned into modal kicks: impulses by integer cell, drags as intervals."""

    impulses: dict  # cell -> list of (time, dv (J,) complex)
    drags: tuple  # of (start, end, accel (J,) complex)


# --------------------------------------------------------------------------------------- simulator
class ModalSimulator:
    """Deterministic, scrub-friendly simulation of a ``ModalBasis`` under pokes.

    Parameters are plain attributes (``damping`` = damping ratio zeta, ``stiffness_scale``,
    ``mass_scale``, ``fps``, ``checkpoint_every``); changing any of them, or the pokes, starts a
    new cache entry, so results never mix parameter sets. Thread-safe.
    """

    _MAX_KEYS = 4

    def __init__(
        self,
        basis: ModalBasis,
        damping: float = DEFAULT_DAMPING,
        stiffness_scale: float = 1.0,
        mass_scale: float = 1.0,
        fps: float = 30.0,
        checkpoint_every: int = 10,
    ) -> None:
        self.basis = basis
        self.damping = damping
        self.stiffness_scale = stiffness_scale
        self.mass_scale = mass_scale
        self.fps = fps
        self.checkpoint_every = checkpoint_every
        self._lock = threading.RLock()
        self._dyn: tuple[tuple, _Dynamics] | None = None
        self._runs: OrderedDict[tuple, dict] = OrderedDict()
        self._projections: dict[Poke, np.ndarray] = {}
        j, _, h, w = basis.modes.shape
        shown = basis.modes if basis.mask is None else basis.modes * basis.mask[None, None]
        # Re(U q) = Re(U) Re(q) - Im(U) Im(q): one (2J,) x (2J, 2HW) product per frame.
        self._synth = np.ascontiguousarray(
            np.concatenate([shown.real.reshape(j, -1), -shown.imag.reshape(j, -1)], axis=0), dtype=np.float32
        )

    # ------------------------------------------------------------------ parameters
    def _params(self) -> tuple:
        zeta, s, m, fps, every = (float(self.damping), float(self.stiffness_scale), float(self.mass_scale),
                                  float(self.fps), self.checkpoint_every)
        if not (math.isfinite(zeta) and zeta >= 0):
            raise InputError(f"damping must be a finite number >= 0, got {zeta}")
        if not (math.isfinite(s) and s > 0):
            raise InputError(f"stiffness_scale must be > 0, got {s}")
        if not (math.isfinite(m) and m > 0):
            raise InputError(f"mass_scale must be > 0, got {m}")
        if not (math.isfinite(fps) and fps > 0):
            raise InputError(f"fps must be > 0, got {fps}")
        if int(every) != every or int(every) < 1:
            raise InputError(f"checkpoint_every must be a whole number >= 1, got {every}")
        return (zeta, s, m, fps, int(every))

    def _dynamics(self, params: tuple) -> _Dynamics:
        if self._dyn is None or self._dyn[0] != params:
            zeta, s, m, fps, _ = params
            self._dyn = (params, _Dynamics(self.basis.omega * math.sqrt(s), zeta, m, fps))
        return self._dyn[1]

    @property
    def omega_effective(self) -> np.ndarray:
        """Natural angular frequencies after ``stiffness_scale`` (rad/s)."""
        return self.basis.omega * math.sqrt(float(self.stiffness_scale))

    def energy(self, q: np.ndarray, v: np.ndarray) -> float:
        """``sum_j 1/2 m |q_j'|^2 + 1/2 k_j |q_j|^2`` (real and imaginary parts together)."""
        m = float(self.mass_scale)
        k = m * self.omega_effective**2
        return float(0.5 * m * np.sum(np.abs(v) ** 2) + 0.5 * np.sum(k * np.abs(q) ** 2))

    # ------------------------------------------------------------------ forces
    def _projection(self, poke: Poke) -> np.ndarray:
        hit = self._projections.get(poke)
        if hit is None:
            hit = self.basis.project(poke)
            if len(self._projections) > 1024:
                self._projections.clear()
            self._projections[poke] = hit
        return hit

    def _events(self, pokes: tuple[Poke, ...], mass: float) -> _Events:
        impulses: dict[int, list] = {}
        drags = []
        for p in pokes:
            proj = self._projection(p)
            if p.is_impulse:
                if p.frame < 0:
                    continue  # the simulation starts at rest at frame 0
                dv = proj * (self.basis.impulse_gain * p.strength / mass)
                impulses.setdefault(int(math.floor(p.frame)), []).append((p.frame, dv))
            else:
                start, end = max(p.frame, 0.0), p.frame + p.duration
                if end > start:
                    drags.append((start, end, proj * (self.basis.drag_gain * p.strength / mass)))
        return _Events(impulses=impulses, drags=tuple(drags))

    @staticmethod
    def _canonical(pokes: Iterable[Poke]) -> tuple[Poke, ...]:
        pokes = tuple(pokes)
        for p in pokes:
            if not isinstance(p, Poke):
                raise InputError(f"expected Poke objects, got {type(p).__name__}")
        # Order-independent: the same set of pokes always sums its forces in the same order.
        return tuple(sorted(pokes, key=lambda p: (p.frame, p.duration, p.x, p.y, p.dx, p.dy, p.strength, p.radius)))

    def _advance_span(self, dyn: _Dynamics, ev: _Events, q, v, t0: float, t1: float):
        """Advance from ``t0`` to ``t1`` frames (both inside one cell ``[n, n+1]``), exactly."""
        cell = int(math.floor(t0))
        kicks = [(t, dv) for (t, dv) in ev.impulses.get(cell, ()) if t0 <= t < t1]
        active = [d for d in ev.drags if d[0] < t1 and d[1] > t0]
        if not kicks and all(d[0] <= t0 and d[1] >= t1 for d in active):
            accel = None
            for d in active:
                accel = d[2] if accel is None else accel + d[2]
            return dyn.advance(q, v, t1 - t0, accel)
        cuts = {t0, t1}
        cuts.update(t for t, _ in kicks)
        for start, end, _ in active:
            if t0 < start < t1:
                cuts.add(start)
            if t0 < end < t1:
                cuts.add(end)
        cuts = sorted(cuts)
        for a, b in zip(cuts[:-1], cuts[1:]):
            for t, dv in kicks:
                if t == a:
                    v = v + dv
            accel = None
            for start, end, acc in active:
                if start <= a < end:
                    accel = acc if accel is None else accel + acc
            q, v = dyn.advance(q, v, b - a, accel)
        return q, v

    # ------------------------------------------------------------------ state
    def state_at(self, frame: float, pokes: Sequence[Poke] = ()) -> tuple[np.ndarray, np.ndarray]:
        """Modal state ``(q, q')`` at ``frame`` (``(J,)`` complex128 each; ``q'`` per second).

        Simulated from rest at frame 0; integer frames are cached (checkpoints every
        ``checkpoint_every`` frames plus the last frame visited), so playing forward costs
        one step a frame and scrubbing back restarts from the nearest checkpoint. A fractional
        frame is reached by an exact partial step from the integer frame below. Frames before
        0 are at rest.
        """
        try:
            frame = float(frame)
        except (TypeError, ValueError):
            raise InputError(f"frame must be a number, got {frame!r}") from None
        if not math.isfinite(frame):
            raise InputError(f"frame must be finite, got {frame}")
        canon = self._canonical(pokes)
        with self._lock:
            params = self._params()
            zeta, s, m, fps, every = params
            dyn = self._dynamics(params)
            j = self.basis.num_modes
            if frame <= 0:
                z = np.zeros(j, dtype=np.complex128)
                return z, z.copy()
            key = (params, canon)
            run = self._runs.get(key)
            if run is None:
                run = {"events": self._events(canon, m), "checkpoints": {0: (np.zeros(j, np.complex128),) * 2},
                       "top": 0, "last": None}
                self._runs[key] = run
                while len(self._runs) > self._MAX_KEYS:
                    self._runs.popitem(last=False)
            else:
                self._runs.move_to_end(key)
            n = int(math.floor(frame))
            start = min(n // every, run["top"] // every) * every
            q, v = run["checkpoints"][start]
            last = run["last"]
            if last is not None and start <= last[0] <= n:
                start, q, v = last
            ev = run["events"]
            for i in range(start, n):
                q, v = self._advance_span(dyn, ev, q, v, float(i), float(i + 1))
                if (i + 1) % every == 0 and (i + 1) > run["top"]:
                    run["checkpoints"][i + 1] = (q, v)
                    run["top"] = i + 1
            run["last"] = (n, q, v)
            if frame > n:
                q, v = self._advance_span(dyn, ev, q, v, float(n), frame)
            return q.copy(), v.copy()

    def displacement_at(
        self,
        frame: float,
        pokes: Sequence[Poke] = (),
        width: int | None = None,
        height: int | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(2, H, W)`` float32 displacement in pixels (x right, y down) at ``frame``.

        ``F = mask * sum_j Re(U_j q_j)`` at the model resolution, then resized bilinearly to
        ``width x height`` (both or neither; default the model size) with the displacements
        scaled by the size ratio (x by width, y by height). ``out``: an optional C-contiguous
        float32 ``(2, height, width)`` buffer to write into (saves a 16 MB allocation per 1080p
        frame for callers that keep frames around).
        """
        q, _ = self.state_at(frame, pokes)
        basis = self.basis
        h, w = basis.height, basis.width
        if (width is None) != (height is None):
            raise InputError("give both width and height, or neither")
        out_w, out_h = (w, h) if width is None else (int(width), int(height))
        if out_w < 1 or out_h < 1:
            raise InputError(f"cannot synthesise displacement at {out_w}x{out_h}")
        coeff = np.concatenate([q.real, q.imag]).astype(np.float32)
        field = (coeff @ self._synth).reshape(2, h, w)
        if out is not None:
            if (out.shape != (2, out_h, out_w) or out.dtype != np.float32
                    or not out.flags.c_contiguous or not out.flags.writeable):
                raise InputError(f"out must be a writable C-contiguous float32 array of shape {(2, out_h, out_w)}")
        if (out_w, out_h) == (w, h):
            if out is None:
                return field
            out[...] = field
            return out
        field[0] *= np.float32(out_w / w)
        field[1] *= np.float32(out_h / h)
        if out is None:
            out = np.empty((2, out_h, out_w), dtype=np.float32)
        for c in range(2):
            cv2.resize(field[c], (out_w, out_h), dst=out[c], interpolation=cv2.INTER_LINEAR)
        return out
