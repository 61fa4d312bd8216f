"""The engine's small public API: one still in, a spectral volume and frames out (no torch, no bpy).

    from gid.gid_engine.engine import Engine
    engine = Engine(device="auto")                  # onnxruntime: CUDA provider when present
    volume = engine.predict("backdrop.png", seed=3)  # SpectralVolume, loop-constrained
    for frame in engine.render_frames("backdrop.png", volume, job=job):  # (H, W, C) float32
        ...
    engine.animate("backdrop.png", "out/loop")      # predict -> render -> files, all or nothing

Why a class: it holds what is costly to make once (onnxruntime sessions for the prior and the
renderer) and the choices that apply to every call (device, backend, threads). Every method takes
an optional ``Job`` for progress and cancellation (``job.cancel()`` from any thread; the work stops
at its next step with ``Cancelled``). Images may be paths, ``LoadedImage`` or arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import numpy as np

from ..exporters.atomic import AllOrNothing, protected_inputs
from . import arguments
from .errors import ArgumentTypeError
from .media.imaging import LoadedImage, from_array, load_image
from .progress import Job
from .rendering.pipeline import FORMATS
from .rendering.render import RENDERERS, Timing, make_splatter, render_frames
from .motion.spectral_volume import SpectralVolume

ImageLike = Union[str, Path, LoadedImage, np.ndarray]
VolumeLike = Union[str, Path, SpectralVolume]
DEVICES = ("auto", "gpu", "cuda", "cpu")
BACKENDS = ("auto", "onnx", "torch")
PREVIEWS = ("gif", "mp4")


def as_image(image: ImageLike, name: str = "image") -> LoadedImage:
    """``image`` as a LoadedImage: a path is read, an array is taken as pixels."""
    if isinstance(image, LoadedImage):
        return image
    if isinstance(image, np.ndarray):
        return from_array(image)
    if isinstance(image, (str, Path)):
        return load_image(arguments.path(image, name))
    raise ArgumentTypeError(f"{name} must be a path, a LoadedImage or an (H, W, C) array, got {type(image).__name__}")


def as_volume(volume: VolumeLike, name: str = "volume") -> SpectralVolume:
    """``volume`` as a SpectralVolume: a path names a .gidsv motion file."""
    if isinstance(volume, SpectralVolume):
        return volume
    if isinstance(volume, (str, Path)):
        from .motion.sv_file import load_spectral_volume

        return load_spectral_volume(arguments.path(volume, name))
    raise ArgumentTypeError(f"{name} must be a SpectralVolume or the path of a .gidsv file, "
                            f"got {type(volume).__name__}")


@dataclass
class AnimateResult:
    out_dir: Path
    files: list[Path]
    motion_file: Path
    frames: int
    seconds: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


class Engine:
    """``device``: auto | gpu | cpu. ``backend``: auto (torch for the prior when it is installed,
    onnxruntime otherwise), onnx or torch. ``renderer``: auto (neural when installed) | neural | splat."""

    def __init__(self, device: str = "auto", backend: str = "auto", renderer: str = "auto",
                 threads: Optional[int] = None, log: Callable[[str], None] | None = None) -> None:
        self.device = arguments.choice(device, "device", DEVICES)
        self.backend = arguments.choice(backend, "backend", BACKENDS)
        self.renderer = arguments.choice(renderer, "renderer", RENDERERS)
        self.threads = arguments.optional(threads, arguments.integer, "threads", 1, 1024)
        self.log = arguments.callable_or_none(log, "log") or (lambda _m: None)
        self._renderers: dict[tuple[str, str], object] = {}

    # ------------------------------------------------------------------ motion
    def predict(self, image: ImageLike, *, seed: int = 0, steps: Optional[int] = None,
                job: Optional[Job] = None, init_strength: Optional[float] = None) -> SpectralVolume:
        """A spectral volume for ``image`` from the learned prior (in the image's aspect)."""
        from .prediction.predict import predict_motion

        _check_prediction(seed, steps, init_strength)
        job = arguments.job(job)
        return predict_motion(as_image(image), seed=seed, steps=steps, device=self.device,
                              backend=self.backend, job=job, init_strength=init_strength, log=self.log)

    # ------------------------------------------------------------------ frames
    def frame_renderer(self, renderer: Optional[str] = None):
        """The (cached) per-frame renderer; onnx unless the backend is torch."""
        kind = arguments.optional(renderer, arguments.choice, "renderer", RENDERERS) or self.renderer
        backend = "torch" if self.backend == "torch" else "onnx"
        key = (kind, backend)
        if key not in self._renderers:
            self._renderers[key] = make_splatter(backend, self.device, self.threads, log=self.log, renderer=kind)
        return self._renderers[key]

    def render_frames(self, image: ImageLike, volume: VolumeLike, *, timing: Timing = Timing(),
                      amplitude: float = 1.0, renderer: Optional[str] = None, fit: str = "stretch",
                      job: Optional[Job] = None) -> Iterator[np.ndarray]:
        """``(H, W, C)`` float32 frames, one at a time (a 4K loop never holds two). ``volume`` may be
        a SpectralVolume or the path of a .gidsv file. Every argument is checked before any work."""
        arguments.instance(timing, "timing", Timing, "e.g. Timing(fps=30)")
        arguments.number(amplitude, "amplitude", 0)
        arguments.choice(fit, "fit", ("check", "stretch"))
        job = arguments.job(job)
        return render_frames(as_image(image), as_volume(volume), self.frame_renderer(renderer), timing, amplitude,
                             fit=fit, job=job)

    # ------------------------------------------------------------------ the main job
    @protected_inputs()  # the still it reads cannot be among its outputs
    def animate(self, image_path: Union[str, Path], out_dir: Union[str, Path], *, seed: int = 0,
                steps: Optional[int] = None, frames: Optional[int] = None, fps: float = 30.0,
                amplitude: float = 1.0, slowmo: float = 1.0, fmt: str = "png", preview: Optional[str] = "gif",
                renderer: Optional[str] = None, overwrite: bool = False, job: Optional[Job] = None,
                init_strength: Optional[float] = None) -> AnimateResult:
        """Predict, render and write a seamless loop into ``out_dir``: the frames (or one video), a
        JSON sidecar, a preview and ``motion.gidsv``. All or nothing: a failure or a cancel at any
        point leaves none of these files behind, and existing files are never replaced unless
        ``overwrite``."""
        import time

        from ..exporters.errors import OutputExistsError
        from .rendering.pipeline import RenderOptions, render_to_dir
        from .motion.sv_file import save_spectral_volume

        image_path = arguments.path(image_path, "image_path")
        out = arguments.path(out_dir, "out_dir")
        _check_prediction(seed, steps, init_strength)
        Timing(fps=fps, slowmo=slowmo, frames=frames)  # checks the three, naming the one that is wrong
        arguments.number(amplitude, "amplitude", 0)
        arguments.choice(fmt, "fmt", FORMATS)
        arguments.optional(preview, arguments.choice, "preview", PREVIEWS)
        arguments.optional(renderer, arguments.choice, "renderer", RENDERERS)
        arguments.boolean(overwrite, "overwrite")
        job = arguments.job(job)
        motion_file = out / "motion.gidsv"
        if motion_file.exists() and not overwrite:
            raise OutputExistsError(f"{motion_file} already exists; pass --overwrite to replace it")
        image = load_image(image_path)
        options = RenderOptions(frames=frames, fps=fps, slowmo=slowmo, amplitude=amplitude, fit="stretch",
                                backend="torch" if self.backend == "torch" else "onnx",
                                renderer=renderer or self.renderer, device=self.device, threads=self.threads)
        options.timing.validate()  # fail before the expensive part
        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        from .prediction.predict import predict_motion
        from .rendering.render import MotionShape, check_render_budget

        def render_fits(k: int, width: int, height: int) -> None:  # before sampling: refused in seconds
            check_render_budget(MotionShape(k, width, height), image.width, image.height)

        volume = predict_motion(image, seed=seed, steps=steps, device=self.device, backend=self.backend, job=job,
                                init_strength=init_strength, before_sampling=render_fits, log=self.log)
        seconds["predict"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        result = render_to_dir(image, volume, out, options, fmt=fmt, preview=preview if fmt in ("png", "exr") else None,
                               overwrite=overwrite, job=job, log=self.log, splatter=self.frame_renderer(renderer))
        seconds["render"] = time.perf_counter() - t1
        with AllOrNothing() as outputs:  # the frames and the motion they show are one output
            outputs.add(result.files)
            save_spectral_volume(volume, motion_file, overwrite=overwrite)
        seconds["total"] = time.perf_counter() - t0
        return AnimateResult(out, list(result.files) + [motion_file], motion_file, result.frames, seconds,
                             result.messages)


def _check_prediction(seed: int, steps: Optional[int], init_strength: Optional[float]) -> None:
    """The prediction arguments ``predict`` and ``animate`` share."""
    arguments.seed(seed)
    arguments.optional(steps, arguments.integer, "steps", 1, 10_000)
    arguments.optional(init_strength, arguments.number, "init_strength", 0, 1, lo_open=True)
