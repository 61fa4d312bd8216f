"""gid_engine.rendering.live: the backward spectral volume that Blender's node group evaluates."""

from __future__ import annotations

import numpy as np
import pytest

from gid.gid_engine.errors import InputError
from gid.gid_engine.motion.extract import extract_motion
from gid.gid_engine.rendering.live import ATLAS_PAD, BIN_STEPS, backward_volume, forward_volume, tau_at
from gid.gid_engine.rendering.render import field_splatter, make_splatter, prepare_motion
from gid.gid_engine.repo_data import TREE_CLIP


@pytest.fixture(scope="module")
def motion():
    return extract_motion(TREE_CLIP, max_side=96)


@pytest.fixture(scope="module")
def splatter():
    return make_splatter("onnx", "cpu", 2)


@pytest.fixture(scope="module")
def live(motion, splatter):
    return backward_volume(motion, splatter)


def _splatted(motion, splatter, tau: float) -> np.ndarray:
    prepared = prepare_motion(motion, motion.width, motion.height, 1.0, anchor=True, fit="stretch")
    forward = prepared.displacement_at(tau)
    return field_splatter(splatter)(forward, forward, prepared.z)


def test_frame_zero_is_the_still_and_the_loop_closes(live, motion):
    assert live.period == motion.num_frames and live.fps == motion.fps
    assert np.abs(live.field_at(0.0)).max() < 1e-5
    assert np.array_equal(live.field_at(float(live.period)), live.field_at(0.0))
    assert np.array_equal(live.field_at(37.0 + 3 * live.period), live.field_at(37.0))


def test_the_series_matches_the_splatted_backward_fields(live, motion, splatter):
    assert live.bins in BIN_STEPS or live.bins == 64
    assert live.extra["p999_error_px"] <= 0.05
    for tau in (1.0, 36.0, 74.0, 111.0):
        err = np.abs(live.field_at(tau) - _splatted(motion, splatter, tau))
        assert float(np.percentile(err, 99)) < 0.05 and float(err.mean()) < 0.01, tau
        assert float(err.max()) <= live.error_px + 1e-4


def test_a_looser_tolerance_keeps_fewer_bins(motion, splatter, live):
    loose = backward_volume(motion, splatter, tolerance_px=0.5)
    assert loose.bins < live.bins and loose.extra["p999_error_px"] <= 0.5
    capped = backward_volume(motion, splatter, max_bins=8)
    assert capped.bins == 8 and capped.error_px > live.error_px


def test_the_atlas_lays_out_each_bin_with_repeated_edges(live):
    atlas = live.atlas()
    w, h, p = live.width, live.height, ATLAS_PAD
    assert atlas.shape == (h + 2 * p, live.bins * (w + 2 * p), 4) and atlas.dtype == np.float32
    for m in (0, live.bins - 1):
        tile = atlas[p:p + h, m * (w + 2 * p) + p:m * (w + 2 * p) + p + w]
        assert np.array_equal(tile, live.coeffs[m].transpose(1, 2, 0))
        assert np.array_equal(atlas[0, m * (w + 2 * p) + p:m * (w + 2 * p) + p + w], tile[0])  # top edge repeated


def test_scene_frames_map_to_motion_time():
    assert tau_at(1, scene_fps=24, clip_fps=30) == 0.0  # the anchor frame shows the still
    assert tau_at(1 + 24 * 5, scene_fps=24, clip_fps=30) == pytest.approx(150.0)  # 5 s later: one 150-frame loop
    assert tau_at(1 + 48, scene_fps=24, clip_fps=30, speed=0.5) == pytest.approx(30.0)  # half speed
    assert tau_at(10, scene_fps=30, clip_fps=30, anchor_frame=10, offset=1.0) == pytest.approx(30.0)


def test_bad_arguments_are_one_line(motion, splatter):
    with pytest.raises(InputError, match="tolerance_px"):
        backward_volume(motion, splatter, tolerance_px=-1)
    with pytest.raises(InputError, match="max_bins"):
        backward_volume(motion, splatter, max_bins=0)


def test_the_forward_series_is_the_motion_itself(motion):
    fwd = forward_volume(motion, amplitude=0.5)
    anchored = motion.scaled(0.5).anchored()
    assert fwd.bins == motion.K and fwd.extra["direction"] == "forward"
    for tau in (0.0, 10.0, 74.5):
        assert np.allclose(fwd.field_at(tau), anchored.displacement_at(tau), atol=1e-4)
