"""Edge-aware motion upsampling (issue 9): motion stops at image edges instead of smearing."""

from __future__ import annotations

import numpy as np
import pytest

from gid.exporters.opencv import cv2
from gid.gid_engine.rendering.guided_upsample import GuidedUpsampler, luma
from gid.gid_engine.media.imaging import from_array
from gid.gid_engine.rendering.render import Timing, make_splatter, render_frames
from gid.gid_engine.motion.spectral_volume import SpectralVolume


def step_scene(h: int = 360, w: int = 640, edge: int = 333, small: tuple[int, int] = (128, 72)):
    rng = np.random.default_rng(0)
    xs = np.arange(w)[None, :].repeat(h, 0)
    guide = np.where(xs < edge, 0.15, 0.8).astype(np.float32) + rng.normal(0, 0.02, (h, w)).astype(np.float32)
    truth = np.where(xs < edge, 0.0, 5.0).astype(np.float32)  # the bright object moves 5 px, the dark one not
    coarse = cv2.resize(truth, small, interpolation=cv2.INTER_AREA)
    return guide, truth, coarse


def test_motion_does_not_bleed_across_edges():
    guide, truth, coarse = step_scene()
    up = GuidedUpsampler(guide, (coarse.shape[1], coarse.shape[0]))(np.stack([coarse, -coarse]))
    bilinear = cv2.resize(coarse, (guide.shape[1], guide.shape[0]), interpolation=cv2.INTER_LINEAR)
    bleed = lambda f: int((np.abs(f - truth)[180] > 0.5).sum())  # noqa: E731 - pixels off by > 0.5 px on a row
    assert bleed(bilinear) >= 4 and bleed(up[0]) <= bleed(bilinear) // 4
    assert np.abs(up[0] - truth).mean() < np.abs(bilinear - truth).mean() / 2
    np.testing.assert_allclose(up[1], -up[0], atol=1e-5)  # linear in the field


def test_smooth_motion_on_a_textured_image_is_kept():
    rng = np.random.default_rng(1)
    guide = cv2.GaussianBlur(rng.random((180, 320)).astype(np.float32), (0, 0), 1.0)
    yy, xx = np.mgrid[0:45, 0:80].astype(np.float32)
    field = np.stack([np.sin(xx / 9) * 3, np.cos(yy / 7) * 2]).astype(np.float32)
    up = GuidedUpsampler(guide, (80, 45))(field)
    ref = np.stack([cv2.resize(f, (320, 180), interpolation=cv2.INTER_LINEAR) for f in field])
    assert np.abs(up - ref)[:, 8:-8, 8:-8].mean() < 0.1  # texture barely leaks into smooth motion (3 px peak)
    const = GuidedUpsampler(guide, (80, 45))(np.full((1, 45, 80), 2.5, np.float32))
    np.testing.assert_allclose(const, 2.5, atol=1e-4)
    with pytest.raises(ValueError, match="built for"):
        GuidedUpsampler(guide, (80, 45))(field[:, :40])


def test_proxy_render_uses_it_and_stays_anchored():
    rng = np.random.default_rng(2)
    pixels = cv2.GaussianBlur(rng.random((288, 512, 3)).astype(np.float32), (0, 0), 1.5)
    image = from_array(pixels)
    coeffs = np.zeros((16, 4, 36, 64), np.float32)
    coeffs[1, 0, :, 32:] = 1.5  # the right half sways, the left half is still
    sv = SpectralVolume(coeffs)
    splat = make_splatter("onnx", "cpu")
    kw = dict(timing=Timing(frames=4), fit="stretch", splat_resolution="proxy")
    guided = list(render_frames(image, sv, splat, motion_upsample="guided", **kw))
    bilinear = list(render_frames(image, sv, splat, motion_upsample="bilinear", **kw))
    assert np.abs(guided[0] - pixels).max() < 1e-5  # frame 0 is the still
    assert 0 < np.abs(guided[2] - bilinear[2]).mean() < 0.02  # same motion, refined edges
    assert luma(pixels).shape == (288, 512)
