"""Motion extraction against clips with exact ground truth.

The synthetic clips move a texture by known sinusoids at 0.4, 1.0 and 2.0 Hz (bins 2, 5, 10
of a 5 s / 30 fps window) with spatially smooth amplitude and phase maps. Frame t is rendered
by backward warping: for every output pixel q solve p = q - F(p, t) by fixed-point iteration
and sample the reference at p, so the reference pixel p really is at p + F(p, t). The true
spectral volume is the FFT of F sampled at the target frame times.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gid.gid_engine.errors import Cancelled, InputError
from gid.gid_engine.motion.extract import (METHODS, extract_motion, flow_trajectories, resample_trajectories,
                                           working_size)
from gid.gid_engine.progress import Job
from gid.gid_engine.motion.spectral_volume import SpectralVolume

from gid.exporters.opencv import cv2

from conftest import REPO, textured_image

# (frequency Hz, amplitude px, direction): bins 2, 5, 10 of the 5 s window
COMPONENTS = ((0.4, 3.0, (1.0, 0.0)), (1.0, 2.0, (0.0, 1.0)), (2.0, 1.0, (0.7071, 0.7071)))
DOMINANT_BINS = [2, 5, 10]
BORDER = 8


def motion(x: np.ndarray, y: np.ndarray, t: float, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Forward displacement of the reference pixel at (x, y) at ``t`` seconds; zero at t = 0."""
    u, v = x / w, y / h
    amplitude = (0.6 + 0.4 * np.cos(2 * np.pi * u) * np.sin(np.pi * v), 0.5 + 0.5 * v,
                 0.8 + 0.2 * np.sin(2 * np.pi * (u + v)))
    phase = (0.0, 1.5 * u, 0.0)  # the 1 Hz sway travels across the image
    dx, dy = np.zeros_like(x), np.zeros_like(x)
    for (freq, a, (ex, ey)), m, ph in zip(COMPONENTS, amplitude, phase):
        s = a * m * (np.sin(2 * np.pi * freq * t + ph) - np.sin(ph))
        dx, dy = dx + ex * s, dy + ey * s
    return dx, dy


def render(image: np.ndarray, t: float) -> np.ndarray:
    """Frame at ``t``: backward warp with the inverse of the forward field (6 fixed-point steps)."""
    h, w = image.shape[:2]
    qy, qx = np.mgrid[0:h, 0:w].astype(np.float32)
    px, py = qx, qy
    for _ in range(6):
        dx, dy = motion(px, py, t, w, h)
        px, py = qx - dx, qy - dy
    return cv2.remap(image, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def true_volume(w: int, h: int, times: np.ndarray) -> SpectralVolume:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    texture = np.stack([np.stack(motion(x, y, t, w, h)) for t in times]).astype(np.float32)
    return SpectralVolume.from_motion_texture(texture, fps=30.0, k=16)


def clip_frames(w: int, h: int, fps: float, n: int) -> list[np.ndarray]:
    image = textured_image(h, w, seed=3)
    return [render(image, i / fps) for i in range(n)]


def to_int(frame: np.ndarray, depth: int = 8) -> np.ndarray:
    top, dtype = (255, np.uint8) if depth == 8 else (65535, np.uint16)
    return (np.clip(frame, 0, 1) * top + 0.5).astype(dtype)


def write_pngs(folder: Path, frames: list[np.ndarray], depth: int = 8, gray: bool = False) -> Path:
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        if gray:
            frame = frame @ np.array([0.114, 0.587, 0.299], np.float32)  # BGR order, as written
        assert cv2.imwrite(str(folder / f"f_{i:04d}.png"), to_int(frame, depth))
    return folder


def relative_error(est: SpectralVolume, true: SpectralVolume) -> float:
    """||S_est - S_true|| / ||S_true|| over the dominant bins and the interior."""
    inner = (DOMINANT_BINS, slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    a, b = est.complex_coeffs()[inner], true.complex_coeffs()[inner]
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


WINDOW = np.arange(150) / 30.0


def ping_pong(t: np.ndarray, length: float) -> np.ndarray:
    """Times played forwards to ``length`` seconds, then backwards, and so on."""
    u = np.mod(t, 2 * length)
    return np.where(u > length, 2 * length - u, u)


@pytest.fixture(scope="module")
def png_clip(tmp_path_factory) -> Path:
    """5 s at 30 fps, 128x80, lossless: the accuracy reference."""
    return write_pngs(tmp_path_factory.mktemp("clip") / "png", clip_frames(128, 80, 30.0, 150))


# ----------------------------------------------------------------------------- accuracy
def test_png_sequence_matches_the_true_spectral_volume(png_clip):
    sv = extract_motion(png_clip, fps=30)
    assert sv.coeffs.shape == (16, 4, 80, 128) and (sv.fps, sv.num_frames) == (30.0, 150)
    err = relative_error(sv, true_volume(128, 80, WINDOW))
    assert err < 0.05  # measured 1.6% (0.7% at 256x160)
    energy = (sv.coeffs[1:, :, BORDER:-BORDER, BORDER:-BORDER] ** 2).sum(axis=(1, 2, 3))
    assert set(np.argsort(energy)[-3:] + 1) == set(DOMINANT_BINS)
    assert sv.source == "png" and "padding" not in sv.extra
    assert sv.extra["source_fps"] == 30.0 and sv.extra["frames_used"] == 150
    assert sv.extra["method"] == "dis-direct" and sv.extra["working_resolution"] == [128, 80]


def test_15fps_source_is_resampled_to_30fps(tmp_path):
    frames = clip_frames(128, 80, 15.0, 76)  # frame 75 is at 5.0 s
    sv = extract_motion(write_pngs(tmp_path / "png", frames), fps=15)
    assert sv.fps == 30.0 and sv.num_frames == 150
    np.testing.assert_allclose(sv.frequencies_hz[DOMINANT_BINS], [0.4, 1.0, 2.0])
    assert relative_error(sv, true_volume(128, 80, WINDOW)) < 0.05  # measured 2.4%
    energy = (sv.coeffs[1:, :, BORDER:-BORDER, BORDER:-BORDER] ** 2).sum(axis=(1, 2, 3))
    assert set(np.argsort(energy)[-3:] + 1) == set(DOMINANT_BINS)  # 15 fps read as 30 would double them
    assert "padding" not in sv.extra and sv.extra["frames_used"] == 76


def test_60fps_source_flows_only_the_frames_it_samples(tmp_path):
    frames = clip_frames(96, 64, 60.0, 90)  # 1.5 s: mirrored
    steps: list[int] = []
    sv = extract_motion(write_pngs(tmp_path / "png", frames), fps=60, job=Job(lambda d, n, what: steps.append(n)))
    assert steps[-1] == 44  # frames 0, 2, ..., 88 at the 30 fps sample times, not 89 pairs
    times = ping_pong(WINDOW, 89 / 60)
    assert relative_error(sv, true_volume(96, 64, times)) < 0.05  # measured 2.1%


def test_video_container_path(tmp_path):
    """MJPEG is lossy, so this checks the container timing path more than accuracy."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (128, 80))
    for frame in clip_frames(128, 80, 30.0, 150):
        writer.write(to_int(frame[:, :, ::-1]))
    writer.release()
    sv = extract_motion(path)
    assert sv.source == "clip.avi" and sv.extra["timing"] == "timestamps"
    assert sv.extra["source_fps"] == pytest.approx(30.0) and sv.extra["frames_used"] == 150
    assert relative_error(sv, true_volume(128, 80, WINDOW)) < 0.08  # measured 1.9%


# ----------------------------------------------------------------------------- short clips
def test_two_second_clip_is_mirrored_and_flagged(tmp_path):
    frames = clip_frames(96, 64, 30.0, 60)
    sv = extract_motion(write_pngs(tmp_path / "png", frames), fps=30)
    assert sv.extra["padding"] == "mirror" and sv.extra["source_seconds"] == pytest.approx(2.0)
    # the truth is the real motion played forwards to the last frame (59/30 s), then backwards
    truth = true_volume(96, 64, ping_pong(WINDOW, 59 / 30))
    assert relative_error(sv, truth) < 0.05  # measured 2.4%


def test_half_second_clip_is_refused(tmp_path):
    folder = write_pngs(tmp_path / "png", clip_frames(64, 40, 30.0, 15))
    with pytest.raises(InputError, match=r"0\.50 s \(15 frames\).*at least 1 s and 8 frames"):
        extract_motion(folder, fps=30)
    with pytest.raises(InputError, match=r"1\.40 s \(7 frames\)"):  # long enough, too few frames
        extract_motion(folder / "f_%04d.png", fps=5, start_frame=8)


def test_exactly_five_seconds_is_not_padded(tmp_path):
    """75 frames at 15 fps last 5 s; the last 30 fps sample (4.967 s) is inside the last frame."""
    sv = extract_motion(write_pngs(tmp_path / "png", clip_frames(32, 20, 15.0, 75)), fps=15)
    assert "padding" not in sv.extra and sv.extra["frames_used"] == 75


# ----------------------------------------------------------------------------- pixel types, sizes
def test_gray_and_16bit_sequences_give_the_same_motion_as_8bit_rgb(tmp_path):
    frames = clip_frames(96, 64, 30.0, 40)
    results = {
        name: extract_motion(write_pngs(tmp_path / name, frames, **kw), fps=30).complex_coeffs()
        for name, kw in {"rgb8": {}, "gray8": {"gray": True}, "rgb16": {"depth": 16}}.items()
    }
    inner = (slice(1, None), slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    ref = results["rgb8"][inner]
    for name in ("gray8", "rgb16"):
        diff = np.linalg.norm(results[name][inner] - ref) / np.linalg.norm(ref)
        assert diff < 0.02, name  # measured 0.5%: all become near-identical 8-bit luma


def test_odd_sizes_and_working_resolution(tmp_path):
    folder = write_pngs(tmp_path / "png", clip_frames(161, 97, 30.0, 30))
    sv = extract_motion(folder, fps=30)
    assert sv.coeffs.shape == (16, 4, 97, 161) and np.isfinite(sv.coeffs).all()
    small = extract_motion(folder, fps=30, max_side=81)
    assert (small.width, small.height) == (81, 49)
    assert small.extra["original_resolution"] == [161, 97]
    exact = extract_motion(folder, fps=30, resolution=(33, 21), method="farneback")
    assert (exact.width, exact.height) == (33, 21) and exact.extra["working_resolution"] == [33, 21]
    # motion is in working pixels: halving the size halves the amplitude
    ratio = np.abs(small.coeffs[1:]).mean() / np.abs(sv.coeffs[1:]).mean()
    assert ratio == pytest.approx(81 / 161, rel=0.1)


def test_working_size_rule():
    assert working_size((1920, 1080), 512, None) == (512, 288)
    assert working_size((320, 240), 512, None) == (320, 240)  # never upscaled
    assert working_size((320, 240), 512, (100, 50)) == (100, 50)
    for bad in [(0, 10), (10, -1), (10**5, 10)]:
        with pytest.raises(InputError, match="working resolution"):
            working_size((320, 240), 512, bad)


# ----------------------------------------------------------------------------- flow and resampling
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_tracks_a_known_shift(method):
    image = textured_image(96, 144, seed=5)
    shifts = [(0.0, 0.0), (1.5, -0.5), (3.0, 1.0), (-2.0, 2.5)]
    frames = [cv2.cvtColor(to_int(render_shift(image, s)), cv2.COLOR_RGB2GRAY) for s in shifts]
    traj = flow_trajectories(frames, method)
    assert traj.shape == (4, 2, 96, 144) and traj.dtype == np.float32 and not traj[0].any()
    got = np.median(traj[:, :, 16:-16, 16:-16], axis=(2, 3))
    # measured worst error: 0.002 px (default, chained, farneback), 0.045 (medium preset),
    # 0.23 / 0.36 (fast / ultrafast presets: their finest scale is 1/4 resolution)
    tol = {"dis-direct-medium": 0.1, "dis-direct-fast": 0.5, "dis-direct-ultrafast": 0.5}.get(method, 0.02)
    np.testing.assert_allclose(got, np.array(shifts), atol=tol)


def render_shift(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    matrix = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    return cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def test_resample_trajectories_is_linear_in_time():
    traj = np.arange(3, dtype=np.float32)[:, None, None, None] * np.ones((3, 2, 2, 2), np.float32)
    out = resample_trajectories(np.array([0.0, 1.0, 3.0]), traj, np.array([0.0, 0.5, 2.0, 3.0, 4.0]))
    np.testing.assert_allclose(out[:, 0, 0, 0], [0.0, 0.5, 1.5, 2.0, 2.0])


def test_flow_trajectories_rejects_bad_frames():
    with pytest.raises(InputError):
        flow_trajectories([np.zeros((8, 8), np.uint8)])
    with pytest.raises(InputError):
        flow_trajectories([np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8)])


# ----------------------------------------------------------------------------- the shipped clip
def test_shipped_tree_clip_extracts():
    sv = extract_motion(REPO / "samples" / "tree.avi", max_side=160)
    assert sv.coeffs.shape == (16, 4, 120, 160) and np.isfinite(sv.coeffs).all()
    sway = sv.mean_magnitude()
    assert np.percentile(sway, 90) > 0.15 and sway.max() > 0.5  # measured 0.29 and 1.34 px
    assert sv.extra["source_fps"] == pytest.approx(15.0, rel=1e-3)
    assert sv.extra["frames_used"] == 13  # variable-rate: 13 stored frames span the first 5 s
    assert "padding" not in sv.extra and sv.source == "tree.avi"


# ----------------------------------------------------------------------------- errors, progress
def test_user_errors(tmp_path, png_clip):
    with pytest.raises(InputError, match="clip not found"):
        extract_motion(tmp_path / "missing.mp4")
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        extract_motion(tmp_path / "empty.avi")
    (tmp_path / "text.avi").write_text("not a video\n" * 100)
    with pytest.raises(InputError, match="cannot (open|decode) video"):
        extract_motion(tmp_path / "text.avi")
    one = tmp_path / "one.avi"
    writer = cv2.VideoWriter(str(one), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (32, 24))
    writer.write(np.zeros((24, 32, 3), np.uint8))
    writer.release()
    with pytest.raises(InputError, match="needs at least 2 frames"):
        extract_motion(one)
    with pytest.raises(InputError, match="image sequence needs --fps"):
        extract_motion(png_clip)
    with pytest.raises(InputError, match="unknown flow method 'raft'"):
        extract_motion(png_clip, fps=30, method="raft")
    with pytest.raises(InputError, match="past the end"):
        extract_motion(png_clip, fps=30, start_frame=150)
    with pytest.raises(InputError, match="0.50 s"):  # 15 frames left after frame 135
        extract_motion(png_clip, fps=30, start_frame=135)


def test_progress_reports_every_pair_and_cancel_stops(png_clip):
    calls: list[tuple[int, int, str]] = []
    extract_motion(png_clip, fps=30, resolution=(32, 20), job=Job(lambda *a: calls.append(a)))
    assert calls[0] == (1, 149, "extracting motion") and calls[-1] == (149, 149, "extracting motion")
    job = Job(lambda done, total, what: job.cancel() if done == 3 else None)
    with pytest.raises(Cancelled):
        extract_motion(png_clip, fps=30, resolution=(32, 20), job=job)
