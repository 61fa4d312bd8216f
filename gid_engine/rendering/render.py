"""From a still and a spectral volume to frames and displacement fields.

The motion is evaluated at the output resolution from the Fourier series (so slow motion and
any frame rate are exact, band-limited interpolation, and loops close), then each frame is
made by a *splatter*: the ONNX runtime (default, no torch) or the torch reference. Frames are
yielded one at a time so a 4K, 150-frame bake never holds more than one frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Protocol

import numpy as np

from .. import arguments
from ..media.video import MAX_FPS, MIN_FPS
from ..backends import backend as added_backend
from ..budget import MAX_FRAMES, check_frames, check_memory, render_bytes
from ..errors import GidError, InputError
from ..media.imaging import LoadedImage, resize_channels
from ..progress import Job
from ..motion.spectral_volume import SpectralVolume

BACKENDS = ("onnx", "torch")
RENDERERS = ("auto", "neural", "splat")
SPLAT_RESOLUTIONS = ("auto", "full", "proxy")
MOTION_UPSAMPLING = ("guided", "bilinear")  # how the proxy's field reaches full size (guided_upsample)
# "auto" splats every output pixel while the output is at most this many times the motion's
# size per side; beyond, the motion carries no finer detail, so a proxy splat plus a full-size
# backward warp gives the same picture (mean difference ~0.005 at 1080p) ~20x faster.
PROXY_FACTOR = 2
# Motion and image may differ this much in aspect ratio before we call it a mismatch.
ASPECT_TOLERANCE = 0.02


class Splatter(Protocol):
    name: str

    def __call__(self, image: np.ndarray, flow: np.ndarray, z: np.ndarray) -> np.ndarray: ...


def make_splatter(backend: str = "onnx", device: str = "auto", threads: Optional[int] = None,
                  log: Callable[[str], None] | None = None, renderer: str = "splat") -> Splatter:
    """The frame renderer: ``renderer`` "splat" (softmax splat + push-pull fill), "neural" (feature
    pyramid + synthesis network, paper §5) or "auto" (neural when the installed weights are marked as
    the default), run by ``backend``; torch is imported only when asked for."""
    if renderer not in RENDERERS:
        raise InputError(f"renderer must be one of {', '.join(RENDERERS)}, got {renderer!r}")
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if renderer == "auto":
        renderer = "neural" if neural_renderer_installed() else "splat"
    if renderer == "neural":
        if backend == "onnx":
            from .neural import OnnxNeuralRenderer

            return OnnxNeuralRenderer(device=device, threads=threads, log=log)
        return _torch_backend().neural_renderer(threads, device)
    if backend == "onnx":
        from ..runtime import OnnxSplatter

        return OnnxSplatter(device=device, threads=threads, log=log)
    return _torch_backend().splatter(threads, device)


def _torch_backend():
    """The tooling's torch backend, or the one-line error of a Python without it."""
    torch = added_backend("torch")
    if torch is None:
        raise InputError("backend 'torch' needs PyTorch, which is not installed; use --backend onnx")
    return torch


def neural_renderer_installed() -> bool:
    """Whether the shipped neural renderer is there (its files are checked on load) and its index
    says it is the default: ``"default": true`` is set only for weights that measurably beat the
    splat renderer (MODEL_CARD.md), since the neural renderer costs several times more per frame."""
    from ..assets import RENDERER_DIR
    from ..model_folder import RENDERER, read_index

    try:
        index = read_index(RENDERER_DIR, RENDERER, verify=False)
    except GidError:
        return False
    return bool(index.get("default", False)) and "onnx" in index["capabilities"]


def field_splatter(splatter: Splatter) -> Splatter:
    """The splatter for displacement fields: a neural renderer draws pictures, not fields."""
    return getattr(splatter, "field_splatter", splatter)


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

    def __post_init__(self) -> None:
        # Checked when made: Timing(frames=2.5) is refused, not rounded to 3 frames later.
        object.__setattr__(self, "fps", arguments.number(self.fps, "fps", MIN_FPS, MAX_FPS))
        object.__setattr__(self, "slowmo", arguments.number(self.slowmo, "slow motion factor", 0.01, 100))
        object.__setattr__(self, "frames", arguments.optional(self.frames, arguments.integer, "frames", 1, MAX_FRAMES))
        object.__setattr__(self, "loop", arguments.boolean(self.loop, "loop"))

    def validate(self) -> None:
        """Kept for callers that check a Timing before expensive work; a Timing is checked when made."""


def frame_times(sv: SpectralVolume, timing: Timing) -> np.ndarray:
    """Times of the output frames, in frames of the spectral volume's clip (``sv.fps`` units)."""
    timing.validate()
    period_out = sv.period_seconds * timing.slowmo * timing.fps  # output frames per motion period
    if timing.frames is None:  # one loop: counted before any array is made (a 1e-7 fps file)
        check_frames(period_out, f"one loop of this motion ({sv.period_seconds:.4g} s) at {timing.fps:g} fps "
                                 f"x {timing.slowmo:g} slow motion", "lower --slowmo or --fps, or set --frames")
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
    """Motion ready to render at ``width`` x ``height``, plus the softmax weights derived from it.

    The volume stays at its own resolution: resizing is linear, so resizing each evaluated
    field gives exactly what evaluating a resized volume would, without holding K x 4 full-size
    planes (530 MB at 1080p, 2 GB at 4K) and their cached basis.
    """

    native: SpectralVolume  # amplitude applied, anchored, at the volume's own resolution
    width: int
    height: int
    z: np.ndarray  # (height, width) float32: mean displacement magnitude, in pixels of the volume

    def displacement_at(self, t: float) -> np.ndarray:
        """``(2, height, width)`` float32 displacement in output pixels at motion time ``t``."""
        field = self.native.displacement_at(t)
        if (self.native.width, self.native.height) == (self.width, self.height):
            return field
        out = resize_channels(field, self.width, self.height)
        out[0] *= np.float32(self.width / self.native.width)
        out[1] *= np.float32(self.height / self.native.height)
        return out


def prepare_motion(sv: SpectralVolume, width: int, height: int, amplitude: float = 1.0,
                   anchor: bool = True, fit: str = "check") -> PreparedMotion:
    """Scale, anchor and size a spectral volume for rendering at ``width`` x ``height``.

    ``z`` is computed at the volume's own resolution and only then resized, so the splatting
    weights (and thus which pixel wins an overlap) do not change with the output resolution.
    """
    check_fit(sv, width, height, fit)
    native = sv.scaled(amplitude)
    if anchor:
        native = native.anchored()
    z = native.mean_magnitude()
    if (z.shape[1], z.shape[0]) != (width, height):
        z = resize_channels(z[None], width, height)[0]
    return PreparedMotion(native, width, height, np.ascontiguousarray(z, dtype=np.float32))


def check_fit(sv: SpectralVolume, width: int, height: int, fit: str = "check") -> None:
    """Validate ``fit``; with "check", refuse motion made for another aspect ratio."""
    if fit == "check":
        check_aspect(sv, width, height)
    elif fit != "stretch":
        raise InputError(f"fit must be 'check' or 'stretch', got {fit!r}")


@dataclass(frozen=True)
class MotionShape:
    """The size of a spectral volume not made yet (what the budget checks need of one)."""

    K: int
    width: int
    height: int


def proxy_size(sv: SpectralVolume | MotionShape, width: int, height: int,
               splat_resolution: str = "auto") -> Optional[tuple[int, int]]:
    """The size to splat at, or ``None`` to splat every output pixel (see ``PROXY_FACTOR``)."""
    if splat_resolution not in SPLAT_RESOLUTIONS:
        raise InputError(f"splat resolution must be one of {', '.join(SPLAT_RESOLUTIONS)}, got {splat_resolution!r}")
    pw, ph = min(width, PROXY_FACTOR * sv.width), min(height, PROXY_FACTOR * sv.height)
    if splat_resolution == "full" or (splat_resolution == "auto" and (pw, ph) == (width, height)):
        return None
    return pw, ph


def check_render_budget(sv: SpectralVolume | MotionShape, width: int, height: int, splat_resolution: str = "auto",
                        what: str = "rendering") -> None:
    """Refuse, before any work, frames of ``width`` x ``height`` whose estimated peak memory (the
    frames, and the motion prepared at the size it is splatted at) is over the budget. ``sv`` may
    be a ``MotionShape``, so a job can check before it predicts the motion."""
    work = proxy_size(sv, width, height, splat_resolution) or (width, height)
    check_memory(render_bytes(width, height, sv.K, (sv.width, sv.height), work),
                 f"{what} {width}x{height} frames with a {sv.width}x{sv.height} motion",
                 "use a smaller image or --size, or a smaller motion file")


def render_frames(image: LoadedImage, sv: SpectralVolume, splatter: Splatter, timing: Timing = Timing(),
                  amplitude: float = 1.0, anchor: bool = True, fit: str = "check",
                  job: Optional[Job] = None, splat_resolution: str = "auto",
                  motion_upsample: str = "guided") -> Iterator[np.ndarray]:
    """Yield ``(H, W, C)`` float32 frames of the animated still, one at a time.

    ``splat_resolution="full"`` softmax-splats the image itself at output size. ``"proxy"``
    softmax-splats the *motion* at a proxy size (which keeps the paper's z-ordering by ``W``),
    upsamples that backward field and warps the full-size image with it: the same frames for
    smooth natural motion, at a cost that does not grow with the splat (1080p: ~25 ms vs ~450 ms).
    ``motion_upsample="guided"`` brings that field to full size edge-aware, guided by the still
    (motion stops at the edges of leaves against the sky instead of smearing across them).
    Every check (arguments, fit, frame count, memory budget) happens here, before the first frame.
    """
    _check_common(sv, timing, amplitude, anchor, fit)
    arguments.instance(image, "image", LoadedImage, "gid_engine.media.imaging.load_image(path)")
    job = arguments.job(job)
    if motion_upsample not in MOTION_UPSAMPLING:
        raise InputError(f"motion upsampling must be one of {', '.join(MOTION_UPSAMPLING)}, got {motion_upsample!r}")
    proxy = proxy_size(sv, image.width, image.height, splat_resolution)
    check_fit(sv, image.width, image.height, fit)
    times = frame_times(sv, timing)
    check_render_budget(sv, image.width, image.height, splat_resolution)
    return _frames(image, sv, splatter, times, amplitude, anchor, fit, job, proxy, motion_upsample)


def _check_common(sv: SpectralVolume, timing: Timing, amplitude: float, anchor: bool, fit: str) -> None:
    """The arguments ``render_frames`` and ``displacement_frames`` share, checked at the door."""
    arguments.instance(sv, "volume", SpectralVolume, "gid_engine.motion.sv_file.load_spectral_volume(path)")
    arguments.instance(timing, "timing", Timing, "e.g. Timing(fps=30)")
    arguments.number(amplitude, "amplitude", 0)
    arguments.boolean(anchor, "anchor")
    arguments.choice(fit, "fit", ("check", "stretch"))


def _frames(image: LoadedImage, sv: SpectralVolume, splatter: Splatter, times: np.ndarray, amplitude: float,
            anchor: bool, fit: str, job: Job, proxy: Optional[tuple[int, int]],
            motion_upsample: str) -> Iterator[np.ndarray]:
    batch = 1  # frames per draw call: a GPU renderer takes several (its batch_size)
    if proxy is None:
        prepared = prepare_motion(sv, image.width, image.height, amplitude, anchor, fit)
        batch = max(1, int(getattr(splatter, "batch_size", 1)))
        if batch > 1:
            draw_many = _full_batch_drawer(image, prepared, splatter)
        else:
            draw_many = _one_at_a_time(_full_drawer(image, prepared, splatter))
    else:
        draw_many = _one_at_a_time(_proxy_warper(image.pixels, sv, proxy, splatter, amplitude, anchor,
                                                 motion_upsample == "guided"))
    for s in range(0, len(times), batch):
        job.check()
        for i, frame in enumerate(draw_many(times[s : s + batch]), start=s):
            job.step(i + 1, len(times), "rendering")
            yield frame


def _one_at_a_time(draw: Callable[[float], np.ndarray]) -> Callable[[np.ndarray], list[np.ndarray]]:
    return lambda times: [draw(float(t)) for t in times]


def _display_converters(image: LoadedImage, splatter: Splatter):
    """(still as the splatter sees it (C, H, W), frame -> output colours). The neural renderer
    learnt on display-referred (sRGB) pictures, so a linear image is shown to it as sRGB and its
    frames converted back."""
    from ...exporters.colors import linear_to_srgb, srgb_to_linear

    to_display = image.linear and getattr(splatter, "name", "") == "neural"
    pixels = image.pixels
    if to_display:
        pixels = np.concatenate([linear_to_srgb(pixels[:, :, :3]), pixels[:, :, 3:]], axis=2)
    chw = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)

    def back(frame: np.ndarray) -> np.ndarray:  # (H, W, C)
        if to_display:
            return np.concatenate([srgb_to_linear(frame[:, :, :3]), frame[:, :, 3:]], axis=2)
        return frame

    return chw, back


def _full_batch_drawer(image: LoadedImage, prepared: PreparedMotion,
                       splatter: Splatter) -> Callable[[np.ndarray], list[np.ndarray]]:
    """Like ``_full_drawer`` for several times per call (``splatter.render_batch``): the same
    frames, fewer network launches."""
    chw, back = _display_converters(image, splatter)

    def draw_many(times: np.ndarray) -> list[np.ndarray]:
        flows = np.stack([prepared.displacement_at(float(t)) for t in times])
        frames = splatter.render_batch(chw, flows, prepared.z)  # type: ignore[attr-defined]
        return [back(f.transpose(1, 2, 0)) for f in frames]

    return draw_many


def _full_drawer(image: LoadedImage, prepared: PreparedMotion, splatter: Splatter) -> Callable[[float], np.ndarray]:
    """A frame function that splats every output pixel (see ``_display_converters`` for colours)."""
    chw, back = _display_converters(image, splatter)

    def draw(t: float) -> np.ndarray:
        return back(splatter(chw, prepared.displacement_at(t), prepared.z).transpose(1, 2, 0))

    return draw


def _proxy_warper(pixels: np.ndarray, sv: SpectralVolume, proxy: tuple[int, int], splatter: Splatter,
                  amplitude: float, anchor: bool, guided: bool = True) -> Callable[[float], np.ndarray]:
    """A frame function: softmax-splat the motion at ``proxy`` size, backward-warp at full size."""
    from ...exporters.opencv import cv2
    from .guided_upsample import GuidedUpsampler, luma

    height, width = pixels.shape[:2]
    fields = field_splatter(splatter)
    prepared = prepare_motion(sv, proxy[0], proxy[1], amplitude, anchor, fit="stretch")
    sx, sy = width / proxy[0], height / proxy[1]
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    upsample = GuidedUpsampler(luma(pixels), proxy) if guided else None

    def draw(t: float) -> np.ndarray:
        forward = prepared.displacement_at(t)
        backward = fields(forward, forward, prepared.z)
        if upsample is not None:
            bx, by = upsample(backward)
        else:
            bx = cv2.resize(backward[0], (width, height), interpolation=cv2.INTER_LINEAR)
            by = cv2.resize(backward[1], (width, height), interpolation=cv2.INTER_LINEAR)
        map_x = xs - bx * np.float32(sx)
        map_y = ys - by * np.float32(sy)
        out = cv2.remap(pixels, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return out if out.ndim == 3 else out[:, :, None]

    return draw


def displacement_frames(sv: SpectralVolume, width: int, height: int, timing: Timing = Timing(),
                        amplitude: float = 1.0, anchor: bool = True, fit: str = "check",
                        splatter: Optional[Splatter] = None, job: Optional[Job] = None,
                        splat_resolution: str = "auto") -> Iterator[np.ndarray]:
    """Yield per-frame ``(2, H, W)`` displacement fields in pixels (x right, y down).

    Without a splatter the fields are *forward*: pixel ``p`` of the still moves to ``p + d(p)``.
    With one, they are *backward* (what a sampling warp such as Blender's Displace node needs,
    ``out(q) = I0(q - d(q))``): the forward field splatted to where each pixel lands, at the
    proxy size when the output is much larger than the motion (see ``render_frames``).
    """
    _check_common(sv, timing, amplitude, anchor, fit)
    width, height = arguments.integer(width, "width", 1), arguments.integer(height, "height", 1)
    job = arguments.job(job)
    check_fit(sv, width, height, fit)
    proxy = proxy_size(sv, width, height, splat_resolution) if splatter is not None else None
    times = frame_times(sv, timing)
    check_render_budget(sv, width, height, splat_resolution if splatter is not None else "full", "displacing")
    return _fields(sv, width, height, times, amplitude, anchor, splatter, job, proxy)


def _fields(sv: SpectralVolume, width: int, height: int, times: np.ndarray, amplitude: float, anchor: bool,
            splatter: Optional[Splatter], job: Job, proxy: Optional[tuple[int, int]]) -> Iterator[np.ndarray]:
    size = proxy or (width, height)
    prepared = prepare_motion(sv, size[0], size[1], amplitude, anchor, fit="stretch")
    for i, t in enumerate(times):
        job.check()
        field = prepared.displacement_at(t)
        if splatter is not None:
            field = field_splatter(splatter)(field, field, prepared.z)
        if proxy is not None:
            field = resize_channels(field, width, height)
            field[0] *= np.float32(width / proxy[0])
            field[1] *= np.float32(height / proxy[1])
        job.step(i + 1, len(times), "displacement maps")
        yield field


def frame_count(sv: SpectralVolume, timing: Timing) -> int:
    return len(frame_times(sv, timing))
