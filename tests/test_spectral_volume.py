import numpy as np
import pytest

from gid.gid_engine.errors import InputError
from gid.gid_engine.motion.spectral_volume import SpectralVolume

from conftest import random_volume


def test_frequencies_are_0_to_3_hz_in_0_2_steps(volume):
    np.testing.assert_allclose(volume.frequencies_hz, np.arange(16) * 0.2, atol=1e-12)
    assert volume.period_seconds == pytest.approx(5.0)


def test_motion_texture_round_trip_is_exact_for_band_limited_motion(volume):
    texture = volume.to_motion_texture()
    assert texture.shape == (150, 2, 20, 30)
    back = SpectralVolume.from_motion_texture(texture, fps=30.0, k=16)
    np.testing.assert_allclose(back.coeffs, volume.coeffs, atol=2e-6)


def test_sinusoid_amplitude_convention():
    t = np.arange(150)
    texture = np.zeros((150, 2, 4, 5), np.float32)
    texture[:, 0] = (3.0 * np.cos(2 * np.pi * 2 * t / 150 + 0.3))[:, None, None]  # 0.4 Hz, 3 px
    sv = SpectralVolume.from_motion_texture(texture)
    c = sv.complex_coeffs()
    assert abs(c[2, 0, 0, 0]) == pytest.approx(1.5, rel=1e-5)  # |S_k| = A/2
    assert np.angle(c[2, 0, 0, 0]) == pytest.approx(0.3, abs=1e-5)
    assert np.abs(c[[0, 1, 3, 4], 0]).max() < 1e-5


def test_displacement_at_matches_inverse_fft_on_integer_frames(volume):
    texture = volume.to_motion_texture()
    frames = [0, 1, 37, 149]
    np.testing.assert_allclose(volume.displacement_at(np.array(frames)), texture[frames], atol=1e-4)


def test_motion_is_periodic_frame_T_equals_frame_0_bitwise(volume):
    f0 = volume.displacement_at(0.0)
    fT = volume.displacement_at(float(volume.num_frames))
    assert np.array_equal(f0, fT)
    assert np.array_equal(volume.displacement_at(12.5), volume.displacement_at(162.5))


def test_fractional_times_interpolate_smoothly(volume):
    a, b, mid = volume.displacement_at(np.array([10.0, 11.0, 10.5]))
    # band-limited motion at 30 fps is smooth: the midpoint is close to the linear average
    assert np.abs(mid - (a + b) / 2).max() < 0.05 * (np.abs(a).max() + 1e-6)


def test_anchored_volume_has_zero_displacement_at_frame_0(volume):
    anchored = volume.anchored()
    assert np.abs(anchored.displacement_at(0.0)).max() < 1e-5
    # only the DC changed: the oscillation is the same
    np.testing.assert_array_equal(anchored.coeffs[1:], volume.coeffs[1:])


def test_amplitude_scaling_scales_displacements(volume):
    np.testing.assert_allclose(volume.scaled(2.5).displacement_at(7.0), 2.5 * volume.displacement_at(7.0),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError):
        volume.scaled(float("nan"))


def test_resize_scales_displacements_with_size():
    coeffs = np.zeros((16, 4, 10, 20), np.float32)
    coeffs[3, 0] = 1.0  # uniform x motion, 1 px
    coeffs[3, 2] = 2.0  # uniform y motion, 2 px
    sv = SpectralVolume(coeffs)
    big = sv.resized(60, 20)  # 3x wider, 2x taller
    assert big.coeffs.shape == (16, 4, 20, 60)
    np.testing.assert_allclose(big.coeffs[3, 0], 3.0, rtol=1e-5)
    np.testing.assert_allclose(big.coeffs[3, 2], 4.0, rtol=1e-5)
    small = sv.resized(5, 5)
    np.testing.assert_allclose(small.coeffs[3, 0], 0.25, rtol=1e-5)
    np.testing.assert_allclose(small.coeffs[3, 2], 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "shape", [(16, 3, 4, 4), (16, 4, 4), (0, 4, 4, 4), (100, 4, 4, 4)],
)
def test_wrong_shapes_are_refused(shape):
    with pytest.raises(InputError):
        SpectralVolume(np.zeros(shape, np.float32))


def test_nan_coefficients_are_refused():
    c = random_volume().coeffs.copy()
    c[2, 1, 3, 4] = np.nan
    with pytest.raises(InputError, match="NaN"):
        SpectralVolume(c)


def test_mean_magnitude_of_a_circle_is_its_radius():
    coeffs = np.zeros((16, 4, 3, 3), np.float32)
    # x = 2 cos, y = 2 sin at bin 1: |S| = 1 each, a circle of radius 2 px
    coeffs[1, 0] = 1.0
    coeffs[1, 3] = -1.0
    sv = SpectralVolume(coeffs)
    np.testing.assert_allclose(sv.mean_magnitude(), 2.0, rtol=1e-5)
