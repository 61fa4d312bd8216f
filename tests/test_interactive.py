"""gid_engine.dynamics.interactive: simulator fields drawn onto a still, sequences and bakes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gid.exporters.frames import decode_frame
from gid.gid_engine.errors import Cancelled, InputError
from gid.gid_engine.media.imaging import from_array
from gid.gid_engine.dynamics.interactive import (
    FieldRenderer,
    backward_field,
    bake_to_dir,
    field_size,
    interactive_displacement_frames,
    interactive_frames,
    motion_weight,
    preview_size,
    render_with_field,
)
from gid.gid_engine.dynamics.modal import ModalBasis, ModalSimulator, Poke
from gid.gid_engine.progress import Job
from gid.gid_engine.rendering.render import make_splatter
from gid.gid_engine.motion.spectral_volume import SpectralVolume

from conftest import textured_image

H, W = 48, 64


def bump(h: int = H, w: int = W, cx: float = 0.5, cy: float = 0.5, sigma: float = 0.25) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.exp(-(((xs + 0.5) / w - cx) ** 2 + ((ys + 0.5) / h - cy) ** 2) / (2 * sigma**2)).astype(np.float32)


def two_mode_volume(h: int = H, w: int = W) -> SpectralVolume:
    """Bin 2 (1 Hz) sways in x, bin 5 (2.5 Hz) in y, both smooth bumps; everything else zero."""
    coeffs = np.zeros((8, 4, h, w), np.float32)
    coeffs[2, 0] = 2.0 * bump(h, w)
    coeffs[2, 1] = 0.5 * bump(h, w, cx=0.4)
    coeffs[5, 2] = 1.0 * bump(h, w, cy=0.6)
    return SpectralVolume(coeffs, fps=30.0, num_frames=60, source="synthetic")


@pytest.fixture(scope="module")
def splatter():
    return make_splatter("onnx", "cpu")


@pytest.fixture
def sim() -> ModalSimulator:
    basis = ModalBasis.from_spectral_volume(two_mode_volume(), frequencies=[2, 5])
    return ModalSimulator(basis, damping=0.05, fps=30.0)


@pytest.fixture
def still() -> np.ndarray:
    return textured_image(H, W, seed=2)


POKES = (Poke(5, 0.5, 0.5, 1.0, 0.0, strength=3.0), Poke(12, 0.4, 0.6, 0.0, 1.0, strength=2.0, duration=4))


# ------------------------------------------------------------------------------------- sizes
def test_preview_size_caps_the_long_side_only() -> None:
    assert preview_size(1920, 1080) == (960, 540)
    assert preview_size(512, 288) == (512, 288)
    assert preview_size(100, 3000, 960) == (32, 960)
    with pytest.raises(InputError):
        preview_size(0, 10)


def test_field_size_follows_the_basis(sim: ModalSimulator) -> None:
    assert field_size(sim.basis, 64, 48) is None  # same size: splat the image
    assert field_size(sim.basis, 640, 480) == (128, 96)  # auto: twice the basis
    assert field_size(sim.basis, 640, 480, proxy_factor=1) == (64, 48)
    assert field_size(sim.basis, 100, 75, "full") is None
    assert field_size(sim.basis, 64, 48, "proxy") == (64, 48)


def test_motion_weight_is_the_rms_amplitude_of_the_chosen_bins() -> None:
    sv = two_mode_volume()
    z = motion_weight(ModalBasis.from_spectral_volume(sv, frequencies=[2]))
    s = sv.complex_coeffs()[2].astype(np.complex128)
    expected = np.sqrt(2 * (np.abs(s[0]) ** 2 + np.abs(s[1]) ** 2))
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-6)
    mask = np.zeros((H, W), np.float32)
    mask[:, : W // 2] = 0.5
    zm = motion_weight(ModalBasis.from_spectral_volume(sv, frequencies=[2], mask=mask))
    np.testing.assert_allclose(zm[:, : W // 2], 0.5 * expected[:, : W // 2], rtol=1e-5, atol=1e-6)
    assert np.abs(zm[:, W // 2:]).max() == 0.0


# ------------------------------------------------------------------------------------- drawing
def test_uniform_fields_move_the_picture_right_and_down(still: np.ndarray, splatter) -> None:
    z = np.zeros((H, W), np.float32)
    right = np.zeros((2, H, W), np.float32)
    right[0] = 1.0
    out = render_with_field(still, right, z, splatter)
    np.testing.assert_allclose(out[:, 1:], still[:, :-1], atol=1e-5)
    down = np.zeros((2, H, W), np.float32)
    down[1] = 2.0
    out = render_with_field(still, down, z, splatter)
    np.testing.assert_allclose(out[2:], still[:-2], atol=1e-5)
    # Zero motion is the still itself, bit for bit, and the backward field of zero is zero.
    assert np.array_equal(render_with_field(still, np.zeros((2, H, W), np.float32), z, splatter), still)
    assert np.abs(backward_field(np.zeros((2, H, W), np.float32), z, splatter)).max() == 0.0
    # A uniform forward shift is its own backward field (away from the edge it enters from).
    np.testing.assert_allclose(backward_field(right, z, splatter)[:, :, 1:], right[:, :, 1:], atol=1e-5)


def test_frames_are_the_still_until_the_first_poke_then_move(still: np.ndarray, sim: ModalSimulator,
                                                            splatter) -> None:
    frames = list(interactive_frames(still, sim, POKES, range(0, 30), splatter))
    assert len(frames) == 30 and frames[0].shape == (H, W, 3) and frames[0].dtype == np.float32
    for f in frames[:6]:  # the impulse at frame 5 changes the velocity, not yet the position
        assert np.array_equal(f, still)
    diffs = [float(np.abs(f - still).max()) for f in frames[6:]]
    assert min(diffs) > 0.0  # every later frame moves (frame 20 is near a zero crossing: ~0.01 px)
    assert diffs[12 - 6] > 0.1 and diffs[7 - 6] > 0.05


def test_frames_do_not_depend_on_the_order_they_are_asked_in(still: np.ndarray, sim: ModalSimulator,
                                                             splatter) -> None:
    order = [3, 17, 9, 25, 6, 17, 0, 25]
    forward = {n: f for n, f in zip(range(26), interactive_frames(still, sim, POKES, range(26), splatter))}
    fresh = ModalSimulator(sim.basis, damping=sim.damping, fps=sim.fps)
    for n, f in zip(order, interactive_frames(still, fresh, POKES, order, splatter)):
        assert np.array_equal(f, forward[n]), n
    # Pokes are a set: their order does not matter either.
    swapped = next(interactive_frames(still, fresh, POKES[::-1], [17], splatter))
    assert np.array_equal(swapped, forward[17])


def test_renderer_equals_splatting_the_simulators_field(still: np.ndarray, sim: ModalSimulator, splatter) -> None:
    renderer = FieldRenderer(still, sim.basis, splatter)
    assert renderer.proxy is None
    field = sim.displacement_at(20, POKES)
    expected = splatter(np.ascontiguousarray(still.transpose(2, 0, 1)), field, motion_weight(sim.basis))
    np.testing.assert_array_equal(renderer.frame(sim, 20, POKES), expected.transpose(1, 2, 0))


def test_proxy_rendering_matches_full_rendering(sim: ModalSimulator, splatter) -> None:
    big = textured_image(4 * H, 4 * W, seed=4)
    full = FieldRenderer(big, sim.basis, splatter, "full")
    proxy = FieldRenderer(big, sim.basis, splatter, "auto")
    assert proxy.proxy == (2 * W, 2 * H) and (proxy.field_width, proxy.field_height) == (2 * W, 2 * H)
    a, b = full.frame(sim, 12, POKES), proxy.frame(sim, 12, POKES)
    moved = float(np.abs(a - big).mean())
    assert moved > 0.005
    assert float(np.abs(a - b).mean()) < 0.03 * moved  # measured 1.1 %
    preview = FieldRenderer(big, sim.basis, splatter, "auto", proxy_factor=1)
    assert (preview.field_width, preview.field_height) == (W, H)
    assert float(np.abs(preview.frame(sim, 12, POKES) - a).mean()) < 0.03 * moved  # measured 1.1 %


def test_a_zero_mask_freezes_everything(still: np.ndarray, splatter) -> None:
    basis = ModalBasis.from_spectral_volume(two_mode_volume(), mask=np.zeros((H, W), np.float32))
    frozen = ModalSimulator(basis)
    for f in interactive_frames(still, frozen, POKES, [0, 10, 20], splatter):
        assert np.array_equal(f, still)


def test_motion_for_another_shape_is_refused(sim: ModalSimulator, splatter) -> None:
    tall = textured_image(W, H)
    with pytest.raises(InputError, match="aspect"):
        FieldRenderer(tall, sim.basis, splatter)
    assert FieldRenderer(tall, sim.basis, splatter, fit="stretch").height == W


# ------------------------------------------------------------------------------------- fields
def test_displacement_frames_forward_and_backward(sim: ModalSimulator, splatter) -> None:
    forward = list(interactive_displacement_frames(sim, POKES, [4, 10, 13], 2 * W, 2 * H))
    for f, n in zip(forward, [4, 10, 13]):
        np.testing.assert_array_equal(f, sim.displacement_at(n, POKES, 2 * W, 2 * H))
    assert np.abs(forward[0]).max() == 0.0 and np.abs(forward[2]).max() > 0.5
    backward = list(interactive_displacement_frames(sim, POKES, [4, 10, 13], 2 * W, 2 * H, splatter=splatter))
    assert backward[2].shape == (2, 2 * H, 2 * W)
    assert np.abs(backward[0]).max() == 0.0
    # Smooth motion: the backward field is the forward one, moved by under a pixel.
    peak = float(np.abs(forward[2]).max())
    assert float(np.abs(backward[2] - forward[2]).max()) < 0.1 * peak  # measured 7 %


# ------------------------------------------------------------------------------------- bake
def test_bake_to_dir_writes_what_interactive_frames_yields(tmp_path, still: np.ndarray, sim: ModalSimulator,
                                                          splatter) -> None:
    image = from_array((still * 255 + 0.5).astype(np.uint8), name="still.png")
    frames = [3, 6, 9, 15]
    result = bake_to_dir(image, sim, POKES, frames, tmp_path / "out", splatter, images=True, displacement=True)
    names = sorted(p.name for p in result["files"])
    assert names == sorted([f"frame_{i:04d}.png" for i in range(1, 5)] + ["frame.json"]
                           + [f"disp_{i:04d}.exr" for i in range(1, 5)] + ["disp.json"]
                           + [f"disp_node_{i:04d}.exr" for i in range(1, 5)] + ["disp_node.json"])
    expected = list(interactive_frames(image, sim, POKES, frames, splatter))
    for i, frame in enumerate(expected, start=1):
        png = decode_frame(tmp_path / "out" / f"frame_{i:04d}.png").astype(np.float32) / 255.0
        assert float(np.abs(png - frame).max()) <= 0.5 / 255 + 1e-6
    raw = decode_frame(tmp_path / "out" / "disp_0004.exr")
    np.testing.assert_allclose(np.moveaxis(raw[:, :, :2], 2, 0), sim.displacement_at(15, POKES), atol=1e-6)
    doc = json.loads((tmp_path / "out" / "frame.json").read_text())
    assert doc["params"]["frames"] == frames and len(doc["params"]["pokes"]) == 2
    assert doc["params"]["pokes"][1]["duration"] == 4.0 and doc["params"]["damping"] == 0.05
    assert math.isclose(result["scale"], float(np.abs(np.stack([sim.displacement_at(n, POKES) for n in frames])).max()),
                        rel_tol=1e-6)


def test_a_cancelled_bake_leaves_nothing(tmp_path, still: np.ndarray, sim: ModalSimulator, splatter) -> None:
    image = from_array(still, name="still.exr")

    def progress(done: int, total: int, what: str) -> None:
        if done == 3:
            job.cancel()

    job = Job(progress)
    with pytest.raises(Cancelled):
        bake_to_dir(image, sim, POKES, range(1, 9), tmp_path / "out", splatter, displacement=True, job=job)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    with pytest.raises(InputError, match="nothing to bake"):
        bake_to_dir(image, sim, POKES, [1], tmp_path / "out", splatter, images=False)
