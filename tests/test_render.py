import numpy as np
import pytest

from gid.gid_engine.errors import Cancelled, InputError
from gid.gid_engine.media.imaging import from_array
from gid.gid_engine.progress import Job
from gid.gid_engine.rendering.render import Timing, displacement_frames, frame_times, make_splatter, render_frames
from gid.gid_engine.motion.spectral_volume import SpectralVolume

from conftest import random_volume, textured_image


@pytest.fixture(scope="module")
def splatter():
    return make_splatter("onnx", device="cpu")


def test_one_loop_at_30fps_is_150_frames_spanning_one_period():
    sv = random_volume()
    t = frame_times(sv, Timing())
    assert len(t) == 150 and t[1] == pytest.approx(1.0)
    slow = frame_times(sv, Timing(slowmo=2.0))
    assert len(slow) == 300 and slow[1] == pytest.approx(0.5)
    fast24 = frame_times(sv, Timing(fps=24))
    assert len(fast24) == 120 and fast24[-1] + 150 / 120 == pytest.approx(150.0)
    # without looping, frame spacing is exact and the count is the user's
    t = frame_times(sv, Timing(frames=10, loop=False, slowmo=4))
    assert len(t) == 10 and t[1] == pytest.approx(0.25)


def test_rendered_loop_starts_on_the_input_image_and_closes(splatter):
    sv = random_volume(h=24, w=36)
    img = from_array(textured_image(48, 72))
    frames = list(render_frames(img, sv, splatter, Timing(frames=30)))
    assert len(frames) == 30 and frames[0].shape == (48, 72, 3)
    np.testing.assert_allclose(frames[0], img.pixels, atol=2e-5)  # anchored: frame 0 is I0
    assert np.abs(frames[10] - img.pixels).mean() > 1e-3  # and it moves
    # the frame after the last one lands exactly on the next period: the loop is seamless
    t30 = frame_times(sv, Timing(frames=30))
    assert t30[-1] + (t30[1] - t30[0]) == pytest.approx(150.0)
    after_last = sv.anchored().displacement_at(t30[-1] + (t30[1] - t30[0]))
    assert np.abs(after_last).max() < 1e-5


def test_amplitude_zero_renders_the_still(splatter):
    sv = random_volume(h=24, w=36)
    img = from_array(textured_image(24, 36))
    for frame in render_frames(img, sv, splatter, Timing(frames=5), amplitude=0.0):
        np.testing.assert_allclose(frame, img.pixels, atol=1e-6)


def test_aspect_mismatch_is_refused_unless_stretch(splatter):
    sv = random_volume(h=20, w=30)
    img = from_array(textured_image(30, 30))
    with pytest.raises(InputError, match="aspect"):
        next(render_frames(img, sv, splatter, Timing(frames=2)))
    assert next(render_frames(img, sv, splatter, Timing(frames=2), fit="stretch")).shape == (30, 30, 3)


def test_cancel_stops_rendering(splatter):
    sv = random_volume(h=24, w=36)
    img = from_array(textured_image(24, 36))
    job = Job()
    gen = render_frames(img, sv, splatter, Timing(frames=10), job=job)
    next(gen)
    job.cancel()
    with pytest.raises(Cancelled):
        next(gen)


def test_displacement_frames_forward_and_backward(splatter):
    coeffs = np.zeros((16, 4, 20, 30), np.float32)
    coeffs[1, 0] = 1.0  # x = 2 cos(2 pi t / 150): uniform, 2 px amplitude
    sv = SpectralVolume(coeffs)
    fwd = list(displacement_frames(sv, 60, 40, Timing(frames=4), anchor=False))
    assert fwd[0].shape == (2, 40, 60)
    np.testing.assert_allclose(fwd[0][0], 4.0, atol=1e-5)  # 2 px at 30 wide -> 4 px at 60 wide
    np.testing.assert_allclose(fwd[1][0], 0.0, atol=1e-5)  # quarter period
    back = list(displacement_frames(sv, 60, 40, Timing(frames=4), anchor=False, splatter=splatter))
    # uniform motion: the backward field equals the forward one wherever pixels land
    np.testing.assert_allclose(back[0][0, :, 5:], 4.0, atol=1e-4)
    np.testing.assert_allclose(back[0][1], 0.0, atol=1e-4)


def test_proxy_splat_matches_full_splat_for_large_outputs(splatter):
    """Output 4x the motion's size: auto switches to the proxy path, and the frames agree."""
    from gid.gid_tools.bench import smooth_volume
    from gid.gid_engine.rendering.render import proxy_size

    sv = smooth_volume(64, 36, seed=3).scaled(0.15)
    img = from_array(textured_image(144, 256, seed=4))
    assert proxy_size(sv, 256, 144) == (128, 72) and proxy_size(sv, 128, 72) is None
    full = list(render_frames(img, sv, splatter, Timing(frames=3), splat_resolution="full"))
    proxy = list(render_frames(img, sv, splatter, Timing(frames=3)))
    np.testing.assert_array_equal(proxy[0], img.pixels)  # anchored frame 0 is the still, exactly
    for a, b in zip(full[1:], proxy[1:]):
        moved = np.abs(a - img.pixels).mean()
        assert moved > 0.01  # the frames do move ...
        assert np.abs(a - b).mean() < 0.1 * moved  # ... and the two paths agree far better than that
