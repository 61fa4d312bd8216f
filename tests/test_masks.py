"""Motion masks: per-pixel motion scaling for loops (coefficients) and interaction (modes)."""

from __future__ import annotations

import numpy as np
import pytest

from gid.exporters.opencv import cv2
from gid.gid_engine.errors import InputError
from gid.gid_engine.motion.masks import apply_motion_mask, as_mask_array, load_mask, resize_mask
from gid.gid_engine.dynamics.modal import ModalBasis, ModalSimulator, Poke

from conftest import random_volume

H, W = 20, 30
POKES = [Poke(0.0, 0.25, 0.5, 1.0, 0.5, strength=2.0, radius=0.1), Poke(12.0, 0.3, 0.3, 0.0, 1.0, duration=8)]


def half_mask(scale: int = 4) -> np.ndarray:
    """Left half 1, right half 0.5, at ``scale`` times the volume size (edges on volume pixels)."""
    m = np.ones((H * scale, W * scale), np.float32)
    m[:, (W // 2) * scale :] = 0.5
    return m


def test_zero_mask_freezes_the_loop():
    sv = random_volume(h=H, w=W)
    masked = apply_motion_mask(sv, np.zeros((7, 11), np.float32))
    assert masked.coeffs.shape == sv.coeffs.shape and masked.coeffs.dtype == np.float32
    assert np.count_nonzero(masked.coeffs) == 0
    assert np.abs(masked.to_motion_texture()).max() == 0.0
    assert np.abs(sv.coeffs).max() > 0  # the input is untouched


def test_half_mask_halves_the_loop_where_it_is_half():
    sv = random_volume(h=H, w=W)
    masked = apply_motion_mask(sv, half_mask())
    before, after = sv.to_motion_texture(), masked.to_motion_texture()
    left, right = slice(0, W // 2), slice(W // 2, W)
    np.testing.assert_allclose(after[..., left], before[..., left], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(after[..., right], 0.5 * before[..., right], rtol=1e-6, atol=1e-6)
    assert masked.extra["motion_mask_mean"] == pytest.approx(0.75)


def test_zero_mask_gives_no_interactive_motion():
    sv = random_volume(h=H, w=W)
    basis = ModalBasis.from_spectral_volume(sv, frequencies="all", mask=np.zeros((H, W)))
    sim = ModalSimulator(basis)
    for n in (0, 1, 5, 13, 40, 100):
        assert np.abs(sim.displacement_at(n, POKES)).max() == 0.0
        assert np.abs(sim.displacement_at(n, POKES, 4 * W, 4 * H)).max() == 0.0


def test_half_mask_halves_the_interactive_motion_where_it_is_half():
    sv = random_volume(h=H, w=W, seed=2)
    plain = ModalSimulator(ModalBasis.from_spectral_volume(sv, frequencies="all"))
    masked = ModalSimulator(ModalBasis.from_spectral_volume(sv, frequencies="all", mask=half_mask()))
    left, right = slice(0, W // 2), slice(W // 2, W)
    for n in (3, 10, 25, 60):
        a, b = plain.displacement_at(n, POKES), masked.displacement_at(n, POKES)
        assert np.abs(a).max() > 1e-3
        np.testing.assert_allclose(b[..., left], a[..., left], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b[..., right], 0.5 * a[..., right], rtol=1e-5, atol=1e-6)


def test_partial_mask_confines_modes_and_pokes_to_its_support():
    sv = random_volume(h=H, w=W, seed=3)
    m = np.zeros((H, W), np.float32)
    m[:, : W // 2] = 1.0
    basis = ModalBasis.from_spectral_volume(sv, frequencies="peaks", num_peaks=3, mask=m)
    u = basis.modes.astype(np.complex128)
    np.testing.assert_allclose((np.abs(u) ** 2).sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)  # normalised over the mask
    assert np.abs(u[..., W // 2 :]).max() == 0.0
    outside = Poke(0.0, 0.9, 0.5, 1.0, 0.0, radius=0.02)  # on the frozen half: moves nothing
    assert np.abs(basis.project(outside)).max() < 1e-12
    sim = ModalSimulator(basis)
    assert np.abs(sim.displacement_at(20, [outside])).max() < 1e-9
    inside = sim.displacement_at(20, [Poke(0.0, 0.2, 0.5, 1.0, 0.0)])
    assert np.abs(inside[..., : W // 2]).max() > 1e-3 and np.abs(inside[..., W // 2 :]).max() == 0.0


def test_resize_mask_area_averages_when_shrinking():
    checker = (np.indices((4 * H, 4 * W)).sum(axis=0) % 2).astype(np.float32)
    small = resize_mask(checker, W, H)
    assert small.shape == (H, W) and small.dtype == np.float32
    np.testing.assert_allclose(small, 0.5, atol=1e-6)  # INTER_AREA: the mean, not a sample
    big = resize_mask(np.array([[0.0, 1.0]], np.float32), 4, 2)
    assert big.shape == (2, 4) and big.min() >= 0 and big.max() <= 1
    assert as_mask_array(np.full((2, 2), 255, np.uint8)).max() == 1.0
    assert as_mask_array(np.ones((2, 2, 1), bool)).shape == (2, 2)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((2, 3, 3)), np.zeros((0, 4)), np.full((3, 3), 255.0), np.full((3, 3), np.nan), np.full((2, 2), -0.5)],
)
def test_bad_mask_arrays_are_input_errors(bad):
    with pytest.raises(InputError):
        apply_motion_mask(random_volume(h=H, w=W), bad)


def test_load_mask_uses_luminance(tmp_path):
    gray = np.zeros((10, 16), np.uint8)
    gray[:, 8:] = 255
    gray[:5, :8] = 128
    path = tmp_path / "mask.png"
    cv2.imwrite(str(path), gray)
    m = load_mask(path)
    assert m.shape == (10, 16) and m.dtype == np.float32
    assert m[0, 0] == pytest.approx(128 / 255, abs=1e-6) and m[9, 0] == 0.0 and m[0, 15] == pytest.approx(1.0)
    # colour: Rec. 709 luminance of pure green
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 1] = 255
    cv2.imwrite(str(tmp_path / "green.png"), bgr)
    assert load_mask(tmp_path / "green.png")[0, 0] == pytest.approx(0.7152, abs=1e-4)
    # an opaque alpha channel is ignored: the painted values are the mask
    bgra = np.dstack([gray, gray, gray, np.full_like(gray, 255)])
    cv2.imwrite(str(tmp_path / "opaque.png"), bgra)
    np.testing.assert_allclose(load_mask(tmp_path / "opaque.png"), m, atol=1e-6)


def test_load_mask_prefers_a_real_alpha_channel(tmp_path):
    bgra = np.full((6, 6, 4), 255, np.uint8)  # white everywhere...
    bgra[:, :3, 3] = 0  # ...but the left half is cut out
    cv2.imwrite(str(tmp_path / "cutout.png"), bgra)
    m = load_mask(tmp_path / "cutout.png")
    assert m[:, :3].max() == 0.0 and m[:, 3:].min() == 1.0


def test_bad_mask_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_mask(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(InputError):
        load_mask(junk)
    with pytest.raises(InputError):
        load_mask(tmp_path)
