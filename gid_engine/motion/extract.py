"""Motion extraction: a reference clip -> per-pixel trajectories -> a spectral volume.

This is the paper's ground-truth path (§7 "Data"): a coarse-to-fine optical flow from the
starting frame to *every* later frame of a 5 s window gives each reference pixel's
trajectory; its temporal FFT, truncated to K bins, is the spectral volume.

Why flow from frame 0 to each frame ("direct") and not chained frame-to-frame flows: chaining
adds every step's error and drifts, while a direct flow's error does not grow with time.
Both are available (``method``), with Farneback for comparison; DIS is the default because
it is the most accurate and fast enough (see ``METHODS``).

The source is resampled to the target rate (30 fps) by linear interpolation in time of the
trajectories, using each frame's real time (variable-rate videos exist, see ``video``).

Short clips, the rule: a clip covers the window when its frames reach the last sample time
``(num_frames - 1) / target_fps`` or last the whole window (``frames / fps >= 5 s``). A clip
that does not, but lasts at least 1 s and has at least 8 frames, is played forwards then
backwards (ping-pong, so the trajectory stays continuous) until the window is full, and is
flagged with ``extra["padding"] = "mirror"`` and ``extra["source_seconds"]``. Anything
shorter is an ``InputError``: the spectrum of a fraction of one sway says nothing.
"""

from __future__ import annotations

import math
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from ...exporters.opencv import cv2

from ..budget import check_memory, extract_bytes
from ..errors import InputError
from ..media.imaging import to_gray_u8
from ..progress import Job, ensure_job
from .spectral_volume import DEFAULT_FPS, DEFAULT_FRAMES, DEFAULT_K, SpectralVolume
from ..media.video import FrameSource, open_frames

MIN_SECONDS = 1.0
MIN_FRAMES = 8
MAX_WORKING_SIDE = 8192
MIN_WORKING_SIDE = 12  # DIS optical flow fails on frames of 11 px or less a side


@dataclass(frozen=True)
class FlowMethod:
    """How trajectories are computed: which flow, and direct (0 -> j) or chained (j-1 -> j)."""

    flow: str  # "dis" or "farneback"
    chained: bool = False
    preset: int = cv2.DISOPTICAL_FLOW_PRESET_FAST
    finest_scale: int | None = None  # None: the preset's (FAST/ULTRAFAST stop at 1/4 resolution)


# Measured on a 150-frame 256x160 synthetic clip with exact ground truth, 2 CPU cores:
# relative error of the dominant spectral coefficients / flow time for 149 flows.
#   dis-direct (FAST preset at full resolution)  0.7%  0.73 s
#   dis-direct-medium                            2.2%  0.24 s
#   dis-direct-fast                              9.5%  0.09 s
#   dis-direct-ultrafast                        10.9%  0.04 s
#   farneback                                    1.2%  0.62 s (single-threaded)
#   dis-chained                                  7.9%  0.84 s (step errors accumulate)
# The default keeps the whole extraction (read + flow + FFT) near 1 s on 2 cores.
METHODS: dict[str, FlowMethod] = {
    "dis-direct": FlowMethod("dis", finest_scale=0),
    "dis-direct-medium": FlowMethod("dis", preset=cv2.DISOPTICAL_FLOW_PRESET_MEDIUM),
    "dis-direct-fast": FlowMethod("dis", preset=cv2.DISOPTICAL_FLOW_PRESET_FAST),
    "dis-direct-ultrafast": FlowMethod("dis", preset=cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST),
    "dis-chained": FlowMethod("dis", chained=True, finest_scale=0),
    "farneback": FlowMethod("farneback"),
}
DEFAULT_METHOD = "dis-direct"


# ----------------------------------------------------------------------------- public API
def extract_motion(
    source: str | Path,
    *,
    fps: float | None = None,
    start_frame: int = 0,
    num_frames: int = DEFAULT_FRAMES,
    target_fps: float = DEFAULT_FPS,
    k: int = DEFAULT_K,
    max_side: int = 512,
    resolution: tuple[int, int] | None = None,
    method: str = DEFAULT_METHOD,
    job: Job | None = None,
) -> SpectralVolume:
    """The spectral volume of a reference clip: optical-flow trajectories, then their first ``k``
    temporal Fourier coefficients (paper §3).

    The window is read in source time, so any source rate works; coefficients are in pixels of
    the working resolution.

    Args:
        source: a video file or an image sequence (a folder or a ``%04d`` pattern).
        fps: the source's frame rate, overriding what the file says (required for image sequences).
        start_frame: the first frame of the window, counted in decoded frames (sequences: files in order).
        num_frames: frames of the window at ``target_fps``.
        target_fps: the rate the trajectories are sampled at.
        k: Fourier coefficients kept (frequencies 0 .. k-1 of the window).
        max_side: the working size's long side, never upscaled (ignored with ``resolution``).
        resolution: ``(w, h)``, a fixed working size.
        method: the optical flow, a key of ``METHODS``.
        job: progress and cancellation.

    Returns:
        The clip's spectral volume at the working size.

    Raises:
        InputError: the clip cannot be read, is too short or too small, or the timing is impossible.
        BudgetError: the work is over the frame or memory budget.
        Cancelled: ``job`` was cancelled.
    """
    job = ensure_job(job)
    _method(method)  # fail on a bad name before decoding anything
    if not (2 <= 2 * k <= num_frames and 0 < target_fps <= 1000):
        raise InputError(f"bad clip timing: num_frames={num_frames}, target_fps={target_fps}, k={k}")
    clip = open_frames(source, fps=fps)
    work_size = working_size(clip.size, max_side, resolution)
    if min(work_size) < MIN_WORKING_SIDE:
        raise InputError(f"working resolution {work_size[0]}x{work_size[1]} (clip {clip.size[0]}x{clip.size[1]}) is "
                         f"below optical flow's minimum of {MIN_WORKING_SIDE} px a side: use a larger --max-side "
                         "or --size, or a larger clip")
    # Before any frame is decoded: what holding the window's frames and their flow will cost.
    window_frames = max(num_frames, math.ceil(num_frames / target_fps * clip.fps))
    check_memory(extract_bytes(*work_size, window_frames),
                 f"extracting {work_size[0]}x{work_size[1]} motion from {window_frames} frames",
                 "lower --max-side or --size")
    last_sample = (num_frames - 1) / target_fps
    times, grays = _read_window(clip, start_frame, work_size, last_sample, job)
    seconds, short = _coverage(clip, times, num_frames / target_fps, last_sample, start_frame)

    targets = _ping_pong(np.arange(num_frames) / target_fps, times[-1])  # mirrors short clips
    keep = _frames_needed(times, targets)
    traj = flow_trajectories([grays[i] for i in keep], method, job=job)
    texture = resample_trajectories(times[keep], traj, targets)

    extra: dict[str, Any] = {
        "source_fps": clip.fps,
        "start_frame": int(start_frame),
        "frames_used": len(times),
        "method": method,
        "working_resolution": list(work_size),
        "original_resolution": list(clip.size),
        "timing": "timestamps" if clip.kind == "video" and fps is None else "uniform",
    }
    if short:
        extra["padding"] = "mirror"
        extra["source_seconds"] = round(seconds, 4)
    return SpectralVolume.from_motion_texture(texture, fps=target_fps, k=k, source=clip.name, extra=extra)


def flow_trajectories(gray_frames: Sequence[np.ndarray], method: str = DEFAULT_METHOD,
                      job: Job | None = None) -> np.ndarray:
    """``(N, 2, h, w)`` float32: where each pixel of ``gray_frames[0]`` is in every frame, minus
    where it started (so ``[0] == 0``). Frames are ``(h, w)`` uint8 of one size."""
    job = ensure_job(job)
    spec = _method(method)
    frames = [np.ascontiguousarray(f) for f in gray_frames]
    if len(frames) < 2 or any(f.dtype != np.uint8 or f.ndim != 2 or f.shape != frames[0].shape for f in frames):
        raise InputError("flow_trajectories needs at least 2 uint8 (h, w) frames of one size")
    h, w = frames[0].shape
    out = np.zeros((len(frames), 2, h, w), dtype=np.float32)
    flow = _make_flow(spec)
    total = len(frames) - 1
    if spec.chained:
        _chained(frames, flow, out, job)
    else:
        for j in range(1, len(frames)):
            out[j] = flow(frames[0], frames[j]).transpose(2, 0, 1)
            job.step(j, total, "extracting motion")
    return out


def resample_trajectories(times: np.ndarray, traj: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Linear interpolation in time of ``traj`` (frames at increasing ``times``, seconds) at
    ``targets``; a target outside the frames' times takes the nearest end frame."""
    times = np.asarray(times, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    hi = np.clip(np.searchsorted(times, t, side="right"), 1, len(times) - 1)
    lo = hi - 1
    weight = np.clip((t - times[lo]) / (times[hi] - times[lo]), 0.0, 1.0).astype(np.float32)
    out = np.empty((len(t),) + traj.shape[1:], dtype=np.float32)
    for n in range(len(t)):  # one target frame at a time: no (T, 2, h, w) temporaries
        out[n] = traj[lo[n]] + weight[n] * (traj[hi[n]] - traj[lo[n]])
    return out


def working_size(size: tuple[int, int], max_side: int, resolution: tuple[int, int] | None) -> tuple[int, int]:
    """``resolution`` if given, else ``size`` shrunk (aspect kept) so its long side <= max_side."""
    if resolution is not None:
        w, h = (int(v) for v in resolution)
        if not (0 < w <= MAX_WORKING_SIDE and 0 < h <= MAX_WORKING_SIDE):
            raise InputError(f"working resolution must be 1..{MAX_WORKING_SIDE} per side, got {w}x{h}")
        return w, h
    if not 0 < max_side <= MAX_WORKING_SIDE:
        raise InputError(f"max side must be 1..{MAX_WORKING_SIDE}, got {max_side}")
    w, h = size
    scale = min(1.0, max_side / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


# ----------------------------------------------------------------------------- reading
def _read_window(clip: FrameSource, start: int, size: tuple[int, int], last_target: float,
                 job: Job) -> tuple[np.ndarray, list[np.ndarray]]:
    """Working-size 8-bit gray frames from ``start`` until one is at or past ``last_target``
    seconds after the first (or the clip ends), with their times relative to the first."""
    times: list[float] = []
    grays: list[np.ndarray] = []
    with closing(clip.frames(start)) as frames:  # closes the video file when we stop early
        for frame in frames:
            job.check()
            times.append(frame.time)
            grays.append(to_gray_u8(_resize(frame.pixels, size)))
            if frame.time - times[0] >= last_target - 1e-6:
                break
    return np.asarray(times, dtype=np.float64) - times[0], grays


def _resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    if (pixels.shape[1], pixels.shape[0]) == (w, h):
        return pixels
    shrink = w < pixels.shape[1] and h < pixels.shape[0]
    return cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _coverage(clip: FrameSource, times: np.ndarray, window: float, last_sample: float,
              start: int) -> tuple[float, bool]:
    """Seconds the frames last (each lasts ``1/fps``) and whether they fall short of the
    window (then they get mirrored); too short even for that -> InputError."""
    seconds = float(times[-1]) + 1.0 / clip.fps
    if seconds < MIN_SECONDS - 1e-6 or len(times) < MIN_FRAMES:
        raise InputError(
            f"{clip.name} has {seconds:.2f} s ({len(times)} frames) from frame {start}; motion extraction "
            f"needs at least {MIN_SECONDS:g} s and {MIN_FRAMES} frames ({window:g} s for a full loop)"
        )
    short = seconds < window - 1e-6 and times[-1] < last_sample - 1e-6
    return seconds, short


def _ping_pong(t: np.ndarray, length: float) -> np.ndarray:
    """Map times onto ``[0, length]`` playing forwards then backwards: continuous, no jumps."""
    if length <= 0:
        return np.zeros_like(t)
    u = np.mod(t, 2.0 * length)
    return np.where(u > length, 2.0 * length - u, u)


def _frames_needed(times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Indices of the frames that bracket the sample times, or the one frame a sample falls
    on: a 60 fps clip resampled to 30 fps needs only every second frame's flow."""
    hi = np.clip(np.searchsorted(times, t), 1, len(times) - 1)
    lo = hi - 1
    on_lo = np.isclose(times[lo], t, rtol=0, atol=1e-6)
    on_hi = np.isclose(times[hi], t, rtol=0, atol=1e-6)
    return np.union1d([0], np.union1d(lo[~on_hi], hi[~on_lo])).astype(np.int64)


# ----------------------------------------------------------------------------- optical flow
def flow_function(method: str = DEFAULT_METHOD) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``flow(gray_a, gray_b) -> (h, w, 2)`` float32 forward flow, for one named method."""
    return _make_flow(_method(method))


def _method(name: str) -> FlowMethod:
    try:
        return METHODS[name]
    except KeyError:
        raise InputError(f"unknown flow method {name!r}; choose one of {', '.join(METHODS)}") from None


def _make_flow(spec: FlowMethod) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A ``flow(a, b) -> (h, w, 2)`` float32 with ``a(p) ~ b(p + flow(p))``."""
    if spec.flow == "farneback":
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 11, 2, 5, 1.1, 0)
    dis = cv2.DISOpticalFlow_create(spec.preset)
    if spec.finest_scale is not None:
        dis.setFinestScale(spec.finest_scale)
    return lambda a, b: dis.calc(a, b, None)


def _chained(frames: list[np.ndarray], flow: Callable[[np.ndarray, np.ndarray], np.ndarray],
             out: np.ndarray, job: Job) -> None:
    """``out[j](p) = out[j-1](p) + flow_{j-1->j}(p + out[j-1](p))``, sampled bilinearly."""
    h, w = frames[0].shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for j in range(1, len(frames)):
        step = flow(frames[j - 1], frames[j])
        moved = cv2.remap(step, xs + out[j - 1, 0], ys + out[j - 1, 1], cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
        out[j] = out[j - 1] + moved.transpose(2, 0, 1)
        job.step(j, len(frames) - 1, "extracting motion")
