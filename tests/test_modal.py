"""Interactive dynamics: modal basis, poke projection, exact integration, deterministic scrubbing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gid.gid_engine.errors import InputError
from gid.gid_engine.dynamics.modal import ModalBasis, ModalSimulator, Poke, oscillator_step
from gid.gid_engine.motion.spectral_volume import SpectralVolume

from conftest import random_volume

H, W = 24, 32


def bump(h: int = H, w: int = W, cx: float = 0.5, cy: float = 0.5, sigma: float = 0.3) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.exp(-(((xs + 0.5) / w - cx) ** 2 + ((ys + 0.5) / h - cy) ** 2) / (2 * sigma**2)).astype(np.float32)


def mode_volume(spec: dict[int, tuple[str, float]], h: int = H, w: int = W) -> SpectralVolume:
    """Volume with non-zero bins only: {bin: ("x" | "y", amplitude)} with a smooth bump shape."""
    coeffs = np.zeros((16, 4, h, w), np.float32)
    for k, (axis, amp) in spec.items():
        ch = 0 if axis == "x" else 2
        coeffs[k, ch] = amp * bump(h, w)
        coeffs[k, ch + 1] = 0.4 * amp * bump(h, w, cx=0.4)  # complex mode: a travelling component
    return SpectralVolume(coeffs, fps=30.0, num_frames=150, source="synthetic")


def centre_poke(frame: float = 0.0, dx: float = 1.0, dy: float = 0.0, **kw) -> Poke:
    return Poke(frame, 0.5, 0.5, dx, dy, **kw)


def peaks_interp(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive local maxima refined by a parabola through 3 samples: (times, values)."""
    s = signal
    idx = np.where((s[1:-1] > s[:-2]) & (s[1:-1] >= s[2:]) & (s[1:-1] > 0))[0] + 1
    a, b, c = s[idx - 1], s[idx], s[idx + 1]
    off = 0.5 * (a - c) / (a - 2 * b + c)
    return idx + off, b - 0.25 * (a - c) * off


# ------------------------------------------------------------------------------------ integration
def test_impulse_response_matches_the_analytic_damped_oscillator():
    sv = mode_volume({3: ("x", 2.0)})  # 0.6 Hz
    basis = ModalBasis.from_spectral_volume(sv, frequencies="peaks", num_peaks=1)
    assert basis.num_modes == 1 and basis.bins.tolist() == [3]
    zeta, fps = 0.03, 30.0
    sim = ModalSimulator(basis, damping=zeta, fps=fps)
    poke = centre_poke()
    frames = np.arange(0, 1500)
    q = np.array([sim.state_at(int(n), [poke])[0][0] for n in frames])

    omega = 2 * np.pi * 0.6
    omega_d = omega * math.sqrt(1 - zeta**2)
    dv = basis.impulse_gain * basis.project(poke)[0]
    t = frames / fps
    analytic = dv * np.exp(-zeta * omega * t) * np.sin(omega_d * t) / omega_d
    np.testing.assert_allclose(q, analytic, rtol=0, atol=1e-9 * abs(dv) / omega_d)

    # Measured from the simulated signal alone, as one would from a video of the response.
    x = sim.displacement_at(0, [poke])  # frame 0: at rest
    assert np.abs(x).max() == 0.0
    signal = np.array([sim.displacement_at(int(n), [poke])[0, H // 2, W // 2] for n in frames], np.float64)
    crossings = np.where(np.sign(signal[1:]) != np.sign(signal[:-1]))[0]
    crossings = crossings[crossings > 0]
    tz = crossings + signal[crossings] / (signal[crossings] - signal[crossings + 1])  # linear interpolation
    period_frames = 2 * (tz[-1] - tz[0]) / (len(tz) - 1)
    freq = fps / period_frames
    assert freq == pytest.approx(omega_d / (2 * np.pi), rel=0.01)

    times, values = peaks_interp(signal)
    assert len(values) > 20
    decay_per_peak = -np.log(values[1:] / values[:-1])  # log of successive peaks
    rate = decay_per_peak.mean() / (np.diff(times).mean() / fps)
    assert rate == pytest.approx(zeta * omega, rel=0.01)
    assert np.all(np.abs(decay_per_peak / (np.diff(times) / fps) - zeta * omega) < 0.01 * zeta * omega)


@pytest.mark.parametrize("zeta", [1.0, 2.5])
def test_critically_and_over_damped_modes_are_exact(zeta):
    sv = mode_volume({5: ("y", 1.0)})  # 1 Hz
    basis = ModalBasis.from_spectral_volume(sv, frequencies=[5])
    sim = ModalSimulator(basis, damping=zeta)
    poke = centre_poke(dx=0.0, dy=1.0)
    frames = np.arange(0, 120)
    q = np.array([sim.state_at(int(n), [poke])[0][0] for n in frames])
    w, t = 2 * np.pi * 1.0, frames / 30.0
    dv = basis.impulse_gain * basis.project(poke)[0]
    if zeta == 1.0:
        analytic = dv * t * np.exp(-w * t)
    else:
        r = w * math.sqrt(zeta**2 - 1)
        analytic = dv * (np.exp((-zeta * w + r) * t) - np.exp((-zeta * w - r) * t)) / (2 * r)
    np.testing.assert_allclose(q, analytic, rtol=0, atol=1e-10 * abs(dv))
    assert np.all(np.abs(q[1:]) > 0) and np.all(np.sign(q[1:].real) == np.sign(dv.real))  # never overshoots


def euler_energy_growth(omega: float, zeta: float, dt: float, steps: int) -> float:
    """Energy ratio after ``steps`` explicit-Euler steps (the paper's integrator)."""
    q, v = 0.0, 1.0
    e0 = 0.5 * v * v
    for _ in range(steps):
        q, v = q + dt * v, v + dt * (-(omega**2) * q - 2 * zeta * omega * v)
    return (0.5 * v * v + 0.5 * omega**2 * q * q) / e0


@pytest.mark.parametrize("stiffness", [1.0, 400.0])
@pytest.mark.parametrize("zeta", [0.03, 0.0])
def test_energy_never_grows_without_force_over_10000_steps(stiffness, zeta):
    sv = mode_volume({2: ("x", 1.0), 9: ("y", 0.5), 15: ("x", 0.2)})
    basis = ModalBasis.from_spectral_volume(sv, frequencies="peaks", num_peaks=3)
    sim = ModalSimulator(basis, damping=zeta, stiffness_scale=stiffness, checkpoint_every=1000)
    pokes = [centre_poke(0.0, 1.0, 1.0)]  # one impulse, then free motion
    energies = np.array([sim.energy(*sim.state_at(n, pokes)) for n in range(1, 10_001)])
    assert energies[0] > 0
    if zeta > 0:
        assert np.all(np.diff(energies) <= 0.0)  # strictly never grows, not even by rounding
        assert energies[-1] < 1e-6 * energies[0]
    else:
        assert energies.max() <= energies[0] * (1 + 1e-10)  # undamped: conserved to rounding
        assert energies.min() >= energies[0] * (1 - 1e-10)
    # Explicit Euler at the same omega*dt gains energy: |eig|^2 = 1 - 2 zeta w dt + (w dt)^2 > 1.
    w_dt = float(sim.omega_effective.max()) / 30.0
    assert 1 - 2 * zeta * w_dt + w_dt**2 > 1.0
    assert euler_energy_growth(float(sim.omega_effective.max()), zeta, 1 / 30.0, 200) > 10.0


def test_exact_step_is_stable_where_explicit_euler_explodes():
    # w*dt = 3 (a stiff mode): the exact step contracts, Euler's spectral radius is ~3.
    omega, zeta, dt = 90.0, 0.03, 1 / 30.0
    p, _ = oscillator_step(omega, zeta, dt)
    assert np.abs(np.linalg.eigvals(p)).max() == pytest.approx(math.exp(-zeta * omega * dt), rel=1e-9)
    euler = np.array([[1.0, dt], [-(omega**2) * dt, 1 - 2 * zeta * omega * dt]])
    assert np.abs(np.linalg.eigvals(euler)).max() > 2.9
    assert euler_energy_growth(omega, zeta, dt, 50) > 1e40


# ------------------------------------------------------------------------------------ determinism
POKES = [
    Poke(3.5, 0.4, 0.5, 1.0, 0.3, strength=2.0),
    Poke(20.0, 0.6, 0.4, -0.2, 1.0, strength=0.5, radius=0.1, duration=15.25),
    Poke(60.0, 0.5, 0.6, 0.0, -1.0, strength=1.5, radius=0.0),
]


def fields(sim: ModalSimulator, order, pokes=POKES) -> dict[int, np.ndarray]:
    return {int(n): sim.displacement_at(int(n), pokes) for n in order}


def test_same_frame_same_displacement_whatever_the_visiting_order():
    sv = random_volume(h=H, w=W, seed=3)
    basis = ModalBasis.from_spectral_volume(sv, frequencies="all")
    forward = fields(ModalSimulator(basis, checkpoint_every=7), range(101))
    shuffled = fields(ModalSimulator(basis, checkpoint_every=7), np.random.default_rng(0).permutation(101))
    backward = fields(ModalSimulator(basis, checkpoint_every=7), range(100, -1, -1))
    other_checkpoints = fields(ModalSimulator(basis, checkpoint_every=1), np.random.default_rng(1).permutation(101))
    reordered_pokes = fields(ModalSimulator(basis, checkpoint_every=7), range(101), pokes=POKES[::-1])
    assert any(np.abs(f).max() > 0.01 for f in forward.values())
    for n in range(101):
        for other in (shuffled, backward, other_checkpoints, reordered_pokes):
            assert np.array_equal(forward[n], other[n]), n


def test_changing_a_poke_changes_frames_after_it_and_not_before():
    basis = ModalBasis.from_spectral_volume(random_volume(h=H, w=W, seed=4), frequencies="all")
    sim = ModalSimulator(basis)
    before = fields(sim, range(101))
    for changed in (
        POKES[:2] + [Poke(60.0, 0.5, 0.6, 0.0, -1.0, strength=3.0, radius=0.0)],  # stronger
        POKES[:2] + [Poke(60.0, 0.5, 0.6, 1.0, 0.0, strength=1.5, radius=0.0)],  # other direction
        POKES[:2] + [Poke(60.5, 0.5, 0.6, 0.0, -1.0, strength=1.5, radius=0.0)],  # half a frame later
    ):
        after = fields(sim, np.random.default_rng(2).permutation(101), pokes=changed)
        for n in range(61):
            assert np.array_equal(before[n], after[n]), n
        for n in range(61, 101):
            assert not np.allclose(before[n], after[n], atol=1e-6), n
    # Back to the original pokes (and the cache still answers the same bits).
    again = fields(sim, range(100, -1, -1))
    assert all(np.array_equal(before[n], again[n]) for n in range(101))


def test_changing_parameters_invalidates_the_cache():
    basis = ModalBasis.from_spectral_volume(random_volume(h=H, w=W, seed=5), frequencies="peaks")
    sim = ModalSimulator(basis)
    base = sim.displacement_at(50, POKES)
    for name, value in (("damping", 0.2), ("stiffness_scale", 2.0), ("mass_scale", 3.0), ("fps", 24.0)):
        old = getattr(sim, name)
        setattr(sim, name, value)
        assert not np.allclose(sim.displacement_at(50, POKES), base), name
        assert np.array_equal(ModalSimulator(basis, **{name: value}).displacement_at(50, POKES),
                              sim.displacement_at(50, POKES))
        setattr(sim, name, old)
        assert np.array_equal(sim.displacement_at(50, POKES), base)


def test_fractional_frames_and_pokes_are_exact_partial_steps():
    basis = ModalBasis.from_spectral_volume(mode_volume({4: ("x", 1.0)}), frequencies=[4])
    sim = ModalSimulator(basis, damping=0.05)
    poke = centre_poke(2.25)
    q2, _ = sim.state_at(2, [poke])
    assert q2[0] == 0
    q3, _ = sim.state_at(3, [poke])
    w, zeta = 2 * np.pi * 0.8, 0.05
    wd, dv = w * math.sqrt(1 - zeta**2), basis.impulse_gain * basis.project(poke)[0]
    for t_frames, q in ((3.0, q3[0]), (3.6, sim.state_at(3.6, [poke])[0][0])):
        t = (t_frames - 2.25) / 30.0
        assert q == pytest.approx(dv * math.exp(-zeta * w * t) * math.sin(wd * t) / wd, rel=1e-9)
    assert np.array_equal(sim.state_at(3, [poke])[0], q3)  # a fractional query leaves the cache alone


# ------------------------------------------------------------------------------------ projection, units
def test_projection_excites_along_the_mode_and_not_perpendicular():
    sv = mode_volume({2: ("x", 1.0), 5: ("y", 1.0)})
    basis = ModalBasis.from_spectral_volume(sv, frequencies="peaks", num_peaks=2)
    assert basis.bins.tolist() == [2, 5]
    np.testing.assert_allclose((np.abs(basis.modes.astype(np.complex128)) ** 2).sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    along_x = basis.project(centre_poke(dx=3.0, dy=0.0))
    along_y = basis.project(centre_poke(dx=0.0, dy=-2.0))
    assert abs(along_x[0]) > 1e-3 and along_x[1] == 0
    assert abs(along_y[1]) > 1e-3 and along_y[0] == 0
    # the projection is the Gaussian-weighted conjugate dot product with the unit direction
    poke = Poke(0, 0.3, 0.7, 1.0, 1.0, radius=0.1)
    ys, xs = np.mgrid[0:H, 0:W]
    g = np.exp(-(((xs + 0.5) / W - 0.3) ** 2 * W**2 + ((ys + 0.5) / H - 0.7) ** 2 * H**2) / (2 * (0.1 * W) ** 2))
    g /= 2 * np.pi * (0.1 * W) ** 2
    u = basis.modes.astype(np.complex128)
    manual = (g * (np.conj(u[:, 0]) + np.conj(u[:, 1])) / math.sqrt(2)).sum(axis=(1, 2))
    np.testing.assert_allclose(basis.project(poke), manual, rtol=1e-6)

    sim = ModalSimulator(basis)
    q, _ = sim.state_at(10, [centre_poke(dx=1.0, dy=0.0)])
    assert abs(q[0]) > 0 and q[1] == 0
    field = sim.displacement_at(10, [centre_poke(dx=1.0, dy=0.0)])
    assert np.abs(field[0]).max() > 0.1 and np.abs(field[1]).max() == 0


def test_strength_is_peak_pixels_at_the_dominant_antinode():
    sv = random_volume(h=H, w=W, seed=7)
    basis = ModalBasis.from_spectral_volume(sv, frequencies="all")
    single = ModalBasis.from_spectral_volume(sv, frequencies=[int(basis.bins[basis.dominant])])
    u = single.modes[0].astype(np.complex128)
    m = np.stack([np.stack([(u[a] * np.conj(u[b])).real for b in range(2)], -1) for a in range(2)], -2)  # (H,W,2,2)
    lam, vec = np.linalg.eigh(m)
    y, x = np.unravel_index(lam[..., 1].argmax(), lam.shape[:2])
    d = vec[y, x, :, 1]
    poke = Poke(0, (x + 0.5) / W, (y + 0.5) / H, d[0], d[1], strength=2.5, radius=0.0)
    sim = ModalSimulator(single, damping=0.0, fps=300.0)
    path = np.array([sim.displacement_at(n, [poke])[:, y, x] for n in range(0, 1000)])
    assert np.linalg.norm(path, axis=1).max() == pytest.approx(2.5, rel=1e-3)
    # a drag of strength 2.5 holds the point 2.5 px away once settled
    drag = Poke(0, (x + 0.5) / W, (y + 0.5) / H, d[0], d[1], strength=2.5, radius=0.0, duration=10_000)
    held = ModalSimulator(single, damping=0.7).displacement_at(600, [drag])[:, y, x]
    assert np.linalg.norm(held) == pytest.approx(2.5, rel=1e-4)
    # stiffer and heavier respond less, as physics says
    stiff = ModalSimulator(single, damping=0.7, stiffness_scale=4.0, mass_scale=2.0).displacement_at(600, [drag])
    assert np.linalg.norm(stiff[:, y, x]) == pytest.approx(2.5 / 8.0, rel=1e-4)


def test_displacement_at_twice_the_size_is_twice_the_pixels():
    from gid.exporters.opencv import cv2

    basis = ModalBasis.from_spectral_volume(mode_volume({2: ("x", 1.0), 6: ("y", 0.7)}), frequencies="all")
    sim = ModalSimulator(basis)
    small = sim.displacement_at(17, POKES)
    big = sim.displacement_at(17, POKES, width=2 * W, height=2 * H)
    assert big.shape == (2, 2 * H, 2 * W) and big.dtype == np.float32
    assert np.abs(small).max() > 0.05
    for c in range(2):  # bilinear resize of the model field, values doubled
        np.testing.assert_allclose(big[c], cv2.resize(2 * small[c], (2 * W, 2 * H), interpolation=cv2.INTER_LINEAR),
                                   rtol=1e-6, atol=1e-7)
        assert np.abs(big[c]).max() == pytest.approx(2.0 * np.abs(small[c]).max(), rel=0.01)
        assert np.abs(big[c]).mean() == pytest.approx(2.0 * np.abs(small[c]).mean(), rel=0.01)
    wide = sim.displacement_at(17, POKES, width=3 * W, height=H)  # x scales with width, y with height
    assert np.abs(wide[0]).mean() == pytest.approx(3 * np.abs(small[0]).mean(), rel=0.01)
    assert np.abs(wide[1]).mean() == pytest.approx(np.abs(small[1]).mean(), rel=0.01)
    buf = np.empty((2, 2 * H, 2 * W), np.float32)
    assert sim.displacement_at(17, POKES, 2 * W, 2 * H, out=buf) is buf and np.array_equal(buf, big)


def test_peaks_pick_the_most_powerful_bins_and_never_dc():
    sv = mode_volume({0: ("x", 50.0), 2: ("x", 1.0), 7: ("y", 3.0), 11: ("x", 2.0), 13: ("y", 0.1)})
    two = ModalBasis.from_spectral_volume(sv, frequencies="peaks", num_peaks=2)
    assert two.bins.tolist() == [7, 11]
    assert two.bins[two.dominant] == 7
    np.testing.assert_allclose(two.frequencies_hz, [1.4, 2.2])
    shape_norm = math.sqrt(np.sum(bump().astype(np.float64) ** 2) + 0.16 * np.sum(bump(cx=0.4).astype(np.float64) ** 2))
    np.testing.assert_allclose(two.norms / shape_norm, [3.0, 2.0], rtol=1e-5)  # S_j = norms_j U_j
    every = ModalBasis.from_spectral_volume(sv)
    assert every.bins.tolist() == list(range(1, 16))
    with_dc = ModalBasis.from_spectral_volume(sv, frequencies="peaks", num_peaks=1, exclude_dc=False)
    assert with_dc.bins.tolist() == [0, 7] and with_dc.bins[with_dc.dominant] == 7


def test_large_volumes_are_reduced_to_model_resolution():
    coeffs = np.zeros((4, 4, 400, 1000), np.float32)
    coeffs[2, 0] = 1.0
    basis = ModalBasis.from_spectral_volume(SpectralVolume(coeffs, num_frames=150), max_side=500)
    assert (basis.width, basis.height) == (500, 200)


def test_bad_arguments_are_input_errors():
    sv = mode_volume({3: ("x", 1.0)})
    with pytest.raises(InputError):
        Poke(0, 0.5, 0.5, 0.0, 0.0)
    with pytest.raises(InputError):
        Poke(0, 0.5, 0.5, 1.0, 0.0, radius=-1)
    with pytest.raises(InputError):
        Poke(float("nan"), 0.5, 0.5, 1.0, 0.0)
    with pytest.raises(InputError):
        ModalBasis.from_spectral_volume(sv, frequencies="loud")
    with pytest.raises(InputError):
        ModalBasis.from_spectral_volume(sv, frequencies=[99])
    sim = ModalSimulator(ModalBasis.from_spectral_volume(sv))
    with pytest.raises(InputError):
        sim.displacement_at(3, [], width=64)
    sim.damping = -1
    with pytest.raises(InputError):
        sim.state_at(3, [])
