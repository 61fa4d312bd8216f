"""From a still and a spectral volume to frames and displacement fields.

The motion is evaluated at the output resolution from the Fourier series (so slow motion and
any frame rate are exact, band-limited interpolation, and loops close), then each frame is
made by a *splatter*: the ONNX runtime (default, no torch) or the torch reference. Frames are
yielded one at a time so a 4K, 150-frame bake never holds more than one frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Protocol

import numpy as np

from .errors import InputError
from .imaging import LoadedImage, resize_channels
from .progress import Job, ensure_job
from .spectral_volume import SpectralVolume

BACKENDS = ("onnx", "torch")
# Motion and image may differ this much in aspect ratio before we call it a mismatch.
ASPECT_TOLERANCE = 0.02


class Splatter(Protocol):
    name: str

    def __call__(self, image: np.ndarray, flow: np.ndarray, z: np.ndarray) -> np.ndarray: ...


def make_splatter(backend: str = "onnx", device: str = "auto", threads: Optional[int] = None,
                  log: Callable[[str], None] | None = None) -> Splatter:
    """The renderer for ``backend``; torch is imported only when asked for."""
    if backend == "onnx":
        from .runtime import OnnxSplatter

        return OnnxSplatter(device=device, threads=threads, log=log)
    if backend == "torch":
        try:
            from .splat_torch import TorchSplatter
        except ImportError:
            raise InputError("backend 'torch' needs PyTorch, which is not installed; use --backend onnx") from None
        return TorchSplatter(threads=threads)
    raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


@dataclass(frozen=True)
class Timing:
    """How output frames map onto motion time.

    ``slowmo`` > 1 plays the motion slower (2 = half speed). With ``loop`` the ``frames`` hold a
    whole number of motion periods, so the last frame flows into the first; without it, frames
    are spaced exactly ``1 / (fps * slowmo)`` seconds of motion apart. ``frames=None`` means one
    full period.
    """

    fps: float = 30.0
    slowmo: float = 1.0
    frames: Optional[int] = None
    loop: bool = True

    def validate(self) -> None:
        if not (math.isfinite(self.fps) and 0 < self.fps <= 1000):
            raise InputError(f"fps must be in (0, 1000], got {self.fps}")
        if not (math.isfinite(self.slowmo) and 0.01 <= self.slowmo <= 100):
            raise InputError(f"slow motion factor must be in [0.01, 100], got {self.slowmo}")
        if self.frames is not None and not (1 <= self.frames <= 100_000):
            raise InputError(f"frames must be in [1, 100000], got {self.frames}")


def frame_times(sv: SpectralVolume, timing: Timing) -> np.ndarray:
    """Times of the output frames, in frames of the spectral volume's clip (``sv.fps`` units)."""
    timing.validate()
    period_out = sv.period_seconds * timing.slowmo * timing.fps  # output frames per motion period
    n = timing.frames if timing.frames is not None else max(1, round(period_out))
    if timing.loop:
        cycles = max(1, round(n / period_out))
        return np.arange(n, dtype=np.float64) * (cycles * sv.num_frames / n)
    return np.arange(n, dtype=np.float64) * (sv.fps / (timing.fps * timing.slowmo))


def check_aspect(sv: SpectralVolume, width: int, height: int) -> None:
    """Refuse motion made for a differently shaped image (it would be stretched)."""
    a_sv, a_img = sv.width / sv.height, width / height
    if abs(a_sv / a_img - 1.0) > ASPECT_TOLERANCE:
        raise InputError(
            f"motion is {sv.width}x{sv.height} (aspect {a_sv:.3f}) but the image is {width}x{height} "
            f"(aspect {a_img:.3f}); use motion made for this image, or --fit stretch"
        )


@dataclass(frozen=True)
class PreparedMotion:
    """Motion at the output size plus the softmax weights derived from it."""

    motion: SpectralVolume  # at output resolution, amplitude applied, anchored
    z: np.ndarray  # (H, W) float32: mean displacement magnitude, in pixels of the source volume


def prepare_motion(sv: SpectralVolume, width: int, height: int, amplitude: float = 1.0,
                   anchor: bool = True, fit: str = "check") -> PreparedMotion:
    """Scale, anchor and resize a spectral volume for rendering at ``width`` x ``height``.

    ``z`` is computed at the volume's own resolution and only then resized, so the splatting
    weights (and thus which pixel wins an overlap) do not change with the output resolution.
    """
    if fit == "check":
        check_aspect(sv, width, height)
    elif fit != "stretch":
        raise InputError(f"fit must be 'check' or 'stretch', got {fit!r}")
    native = sv.scaled(amplitude)
    if anchor:
        native = native.anchored()
    z = native.mean_magnitude()
    if (z.shape[1], z.shape[0]) != (width, height):
        z = resize_channels(z[None], width, height)[0]
    return PreparedMotion(native.resized(width, height), np.ascontiguousarray(z, dtype=np.float32))


def render_frames(image: LoadedImage, sv: SpectralVolume, splatter: Splatter, timing: Timing = Timing(),
                  amplitude: float = 1.0, anchor: bool = True, fit: str = "check",
                  job: Optional[Job] = None) -> Iterator[np.ndarray]:
    """Yield ``(H, W, C)`` float32 frames of the animated still, one at a time."""
    job = ensure_job(job)
    prepared = prepare_motion(sv, image.width, image.height, amplitude, anchor, fit)
    times = frame_times(sv, timing)
    chw = np.ascontiguousarray(image.pixels.transpose(2, 0, 1))
    for i, t in enumerate(times):
        job.check()
        frame = splatter(chw, prepared.motion.displacement_at(t), prepared.z)
        job.step(i + 1, len(times), "rendering")
        yield frame.transpose(1, 2, 0)


def displacement_frames(sv: SpectralVolume, width: int, height: int, timing: Timing = Timing(),
                        amplitude: float = 1.0, anchor: bool = True, fit: str = "check",
                        splatter: Optional[Splatter] = None, job: Optional[Job] = None) -> Iterator[np.ndarray]:
    """Yield per-frame ``(2, H, W)`` displacement fields in pixels (x right, y down).

    Without a splatter the fields are *forward*: pixel ``p`` of the still moves to ``p + d(p)``.
    With one, they are *backward* (what a sampling warp such as Blender's Displace node needs,
    ``out(q) = I0(q - d(q))``): the forward field splatted to where each pixel lands.
    """
    job = ensure_job(job)
    prepared = prepare_motion(sv, width, height, amplitude, anchor, fit)
    times = frame_times(sv, timing)
    for i, t in enumerate(times):
        job.check()
        field = prepared.motion.displacement_at(t)
        if splatter is not None:
            field = splatter(field, field, prepared.z)
        job.step(i + 1, len(times), "displacement maps")
        yield field


def frame_count(sv: SpectralVolume, timing: Timing) -> int:
    return len(frame_times(sv, timing))
