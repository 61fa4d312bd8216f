"""The engine's small public API: one still in, a spectral volume and frames out (no torch, no bpy).

    from gid.gid_engine.engine import Engine
    engine = Engine(device="auto")                  # onnxruntime: CUDA provider when present
    volume = engine.predict("backdrop.png", seed=3)  # SpectralVolume, loop-constrained
    for frame in engine.render_frames("backdrop.png", volume, job=job):  # (H, W, C) float32
        ...
    engine.animate("backdrop.png", "out/loop")      # predict -> render -> files, all or nothing

Why a class: it holds what is costly to make once (its own onnxruntime sessions for the prior and
the renderers) and the choices that apply to every call (device, backend, threads), and it says what
happens (a GPU that fell back to the CPU) to one ``log``. Every method takes an optional ``Job``
for progress and cancellation (``job.cancel()`` from any thread; the work stops at its next step
with ``Cancelled``). Images may be paths, ``LoadedImage`` or arrays.

The front door of the command line and the Blender add-on alike: besides ``predict``,
``render_frames`` and ``animate``, it extracts motion from a clip (``extract``), writes motion
files (``save_motion``), loops (``render_to_dir``), displacement maps (``displace_to_dir``) and
the interactive dynamics' frames (``bake_interaction``), each with the engine's device, backend
and cached renderers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from ..exporters.atomic import AllOrNothing, protected_inputs
from . import arguments
from .errors import ArgumentTypeError
from .media.imaging import LoadedImage, from_array, load_image
from .progress import Job
from .rendering.pipeline import FORMATS, RenderOptions, RenderResult
from .rendering.live import LiveVolume
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
    """The front door: one engine owns its prior's sessions, its frame renderers, its device and its
    log; the CLI and the Blender add-on both work through it.

    ``device``: auto | gpu | cpu. ``backend``: auto (torch for the prior when that backend is
    installed, onnxruntime otherwise), onnx or torch. ``renderer``: auto (neural when installed) |
    neural | splat. ``log``: hears what the engine has to say (a GPU that fell back to the CPU).
    ``weights_dir``: the prior's weights folder (default: the shipped one)."""

    def __init__(self, device: str = "auto", backend: str = "auto", renderer: str = "auto",
                 threads: Optional[int] = None, log: Callable[[str], None] | None = None,
                 weights_dir: Union[str, Path, None] = None) -> None:
        self.device = arguments.choice(device, "device", DEVICES)
        self.backend = arguments.choice(backend, "backend", BACKENDS)
        self.renderer = arguments.choice(renderer, "renderer", RENDERERS)
        self.threads = arguments.optional(threads, arguments.integer, "threads", 1, 1024)
        self.log = arguments.callable_or_none(log, "log") or (lambda _m: None)
        self._renderers: dict[tuple[str, str], object] = {}
        self._renderer_said: dict[tuple[str, str], list[str]] = {}  # what making each renderer said
        self.weights_dir = None if weights_dir is None else arguments.path(weights_dir, "weights_dir")
        self._prior: Optional[tuple[str, Any]] = None  # (weights folder, its LoadedPrior): this engine's own

    # ------------------------------------------------------------------ motion
    def predict(self, image: ImageLike, *, seed: int = 0, steps: Optional[int] = None,
                job: Optional[Job] = None, init_strength: Optional[float] = None) -> SpectralVolume:
        """A spectral volume for ``image`` from the learned prior, sampled with this engine's prior.

        Args:
            image: a ``LoadedImage``, an ``(H, W, C)`` array or an image file's path.
            seed: the sampler's seed (the same seed gives the same volume on the same backend).
            steps: DDIM steps (default: the model's on a GPU, fewer on the CPU).
            job: progress and cancellation.
            init_strength: below 1, start from the static-flow field's motion (``prediction/eulerian_init.py``).

        Returns:
            The volume in the image's aspect.

        Raises:
            MissingWeightsError: the learned prior is not installed.
            FormatError: its weights folder is damaged.
            ArgumentError: an argument is out of range or of the wrong type.
            Cancelled: ``job`` was cancelled.
        """
        from .prediction.predict import predict_motion

        _check_prediction(seed, steps, init_strength)
        job = arguments.job(job)
        image = as_image(image)
        return predict_motion(image, seed=seed, steps=steps, job=job, init_strength=init_strength, log=self.log,
                              prior=self.prior())

    def prior(self) -> Any:
        """The learned prior this engine samples with (``prediction.predict.LoadedPrior``), loaded on
        first use with the engine's backend and device and kept: its sessions are the engine's, not
        the process-wide ones. The weights are the engine's ``weights_dir``, else the shipped ones
        (``prediction.predict.WEIGHTS_DIR``, looked up per call: loaded again when it names another
        folder). What loading said is told on every prediction."""
        from .prediction import predict as prediction

        weights_dir = Path(self.weights_dir or prediction.WEIGHTS_DIR)
        if self._prior is None or self._prior[0] != str(weights_dir):
            loaded = prediction.load_prior(weights_dir, backend=self.backend, device=self.device, shared=False)
            self._prior = (str(weights_dir), loaded)
        return self._prior[1]

    def extract(self, video: Union[str, Path], *, fps: Optional[float] = None, start_frame: int = 0,
                max_side: int = 512, resolution: Optional[tuple[int, int]] = None, method: Optional[str] = None,
                job: Optional[Job] = None) -> SpectralVolume:
        """The spectral volume of a reference clip by optical flow (``motion.extract.extract_motion``).

        Args:
            video: a video file or an image sequence.
            fps: the clip's frame rate, when the file does not say (image sequences).
            start_frame: the first frame of the window.
            max_side: the working size's long side (ignored with ``resolution``).
            resolution: ``(w, h)``, a fixed working size.
            method: the optical flow (None: the default).
            job: progress and cancellation.

        Returns:
            The clip's spectral volume at the working size.

        Raises:
            InputError: the clip cannot be read, is too short or too small.
            BudgetError: over the frame or memory budget.
            Cancelled: ``job`` was cancelled.
        """
        from .motion.extract import DEFAULT_METHOD, extract_motion

        video = arguments.path(video, "video")
        job = arguments.job(job)
        return extract_motion(video, fps=fps, start_frame=start_frame, max_side=max_side, resolution=resolution,
                              method=method or DEFAULT_METHOD, job=job)

    def save_motion(self, volume: SpectralVolume, path: Union[str, Path], *, overwrite: bool = False,
                    job: Optional[Job] = None) -> Path:
        """Write ``volume`` as a ``.gidsv`` motion file, atomically.

        Args:
            volume: the spectral volume.
            path: the file to write.
            overwrite: replace an existing file (otherwise it is refused).
            job: a job cancelled by now writes nothing.

        Returns:
            ``path``.

        Raises:
            ExportError: the file exists (without ``overwrite``), is an input, or cannot be written.
            Cancelled: ``job`` was cancelled.
        """
        from .motion.sv_file import save_spectral_volume

        arguments.instance(volume, "volume", SpectralVolume, "Engine.predict or Engine.extract makes one")
        path = arguments.path(path, "path")
        arguments.boolean(overwrite, "overwrite")
        arguments.job(job).check()  # a cancel during the last step must not write the file
        save_spectral_volume(volume, path, overwrite=overwrite)
        return path

    # ------------------------------------------------------------------ frames
    def frame_renderer(self, renderer: Optional[str] = None):
        """The (cached) per-frame renderer; onnx unless the backend is torch. What making it said
        goes to the log once, when it is made."""
        return self._frame_renderer(renderer)[0]

    def _frame_renderer(self, renderer: Optional[str]) -> tuple[Any, list[str], bool]:
        """(renderer, what making it said, whether it was made by this call)."""
        kind = arguments.optional(renderer, arguments.choice, "renderer", RENDERERS) or self.renderer
        key = (kind, self._frames_backend())
        made = key not in self._renderers
        if made:
            said: list[str] = []
            self._renderers[key] = make_splatter(key[1], self.device, self.threads, log=said.append, renderer=kind)
            self._renderer_said[key] = said
            for message in said:
                self.log(message)
        return self._renderers[key], list(self._renderer_said[key]), made

    def _frames_backend(self) -> str:
        return "torch" if self.backend == "torch" else "onnx"

    def _renderer_for_call(self, renderer: Optional[str]) -> tuple[Any, list[str]]:
        """The cached renderer for one call that writes files, and what making it said, told to the
        log on every such call (as the prior's cached sessions are): each caller hears it."""
        splatter, said, made = self._frame_renderer(renderer)
        if not made:
            for message in said:
                self.log(message)
        return splatter, said

    def render_options(self, **fields: Any) -> RenderOptions:
        """``RenderOptions`` (``frames``, ``fps``, ``slowmo``, ``amplitude``, ``fit``...) for this
        engine: its backend, device, threads and renderer."""
        fields.setdefault("renderer", self.renderer)
        return RenderOptions(**fields, backend=self._frames_backend(), device=self.device, threads=self.threads)

    def _own_options(self, options: Optional[RenderOptions]) -> RenderOptions:
        """``options`` with this engine's backend, device and threads: what runs is what the
        sidecar records."""
        if options is None:
            return self.render_options()
        arguments.instance(options, "options", RenderOptions, "Engine.render_options(...) makes one")
        return replace(options, backend=self._frames_backend(), device=self.device, threads=self.threads)

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

    # ------------------------------------------------------------------ files
    def live_volume(self, volume: VolumeLike, *, amplitude: float = 1.0, tolerance_px: Optional[float] = None,
                    job: Optional[Job] = None) -> LiveVolume:
        """The backward spectral volume Blender's "GID Live Motion" node group evaluates at any frame
        (``rendering/live.py``), its fields made by this engine's splatter.

        Args:
            volume: the spectral volume, or the path of a .gidsv file.
            amplitude: the motion's amplitude the fields are made at.
            tolerance_px: the 99.9th-percentile error allowed, in motion pixels (default 0.05).
            job: progress and cancellation.

        Returns:
            The live volume, with its measured error.

        Raises:
            InputError: a bad argument or motion file.
            Cancelled: ``job`` was cancelled.
        """
        from .rendering.live import DEFAULT_TOLERANCE_PX, backward_volume

        arguments.number(amplitude, "amplitude", 0)
        tolerance = DEFAULT_TOLERANCE_PX if tolerance_px is None else tolerance_px
        splatter, _ = self._renderer_for_call("splat")
        return backward_volume(as_volume(volume), splatter, amplitude=amplitude, tolerance_px=tolerance,
                               job=arguments.job(job))

    def render_to_dir(self, image: ImageLike, motion: VolumeLike, out_dir: Union[str, Path],
                      options: Optional[RenderOptions] = None, *, fmt: str = "png", depth: Any = None,
                      prefix: str = "frame", preview: Optional[str] = None, overwrite: bool = False,
                      job: Optional[Job] = None) -> RenderResult:
        """Animate a still into ``out_dir``: a frame sequence (or one video), its sidecar and
        optionally a preview, as one output (``rendering.pipeline.render_to_dir``), with this
        engine's cached renderer (``options.renderer`` names which). ``motion``: a SpectralVolume or
        a ``.gidsv`` path. The result's ``messages`` start with what making the renderer said."""
        from .rendering.pipeline import render_to_dir

        options = self._own_options(options)
        arguments.choice(fmt, "fmt", FORMATS)
        arguments.optional(preview, arguments.choice, "preview", PREVIEWS)
        arguments.boolean(overwrite, "overwrite")
        job = arguments.job(job)
        image = image if isinstance(image, (str, Path)) else as_image(image)
        motion = motion if isinstance(motion, (str, Path)) else as_volume(motion)
        splatter, said = self._renderer_for_call(options.renderer)
        result = render_to_dir(image, motion, Path(out_dir), options, fmt=fmt, depth=depth, prefix=prefix,
                               preview=preview, overwrite=overwrite, job=job, log=self.log, splatter=splatter)
        result.messages[:0] = said
        return result

    def displace_to_dir(self, size: tuple[int, int], motion: VolumeLike, out_dir: Union[str, Path],
                        options: Optional[RenderOptions] = None, *, kind: str = "both", prefix: str = "disp",
                        overwrite: bool = False, job: Optional[Job] = None,
                        source_image: Optional[str] = None) -> list[Path]:
        """Per-frame displacement maps of ``motion`` at ``size`` (width, height) into ``out_dir``:
        ``kind`` pixels (forward, in pixels), displace-node (the compositor's Displace node) or
        both, as one output (``rendering.pipeline.displace_to_dir``). Returns the files."""
        from .rendering.pipeline import displace_to_dir

        options = self._own_options(options)
        arguments.choice(kind, "kind", ("both", "pixels", "displace-node"))
        arguments.boolean(overwrite, "overwrite")
        job = arguments.job(job)
        width, height = size
        size = (arguments.integer(width, "width", 1), arguments.integer(height, "height", 1))
        motion = motion if isinstance(motion, (str, Path)) else as_volume(motion)
        return displace_to_dir(size, motion, Path(out_dir), options, kind=kind, prefix=prefix, overwrite=overwrite,
                               job=job, source_image=source_image)

    def bake_interaction(self, image: ImageLike, simulator: Any, pokes: Sequence[Any], frames: Sequence[float],
                         out_dir: Union[str, Path], *, images: bool = True, displacement: bool = False,
                         overwrite: bool = False, job: Optional[Job] = None, renderer: str = "splat") -> dict:
        """The interactive dynamics' ``frames`` (a ``dynamics.modal.ModalSimulator`` under
        ``pokes``) into ``out_dir``: a PNG sequence (``images``) and/or displacement maps, as one
        output (``dynamics.interactive.bake_to_dir``), drawn by this engine's cached ``renderer``.
        Returns ``{"files", "count", "scale"}``."""
        from .dynamics.interactive import bake_to_dir

        arguments.boolean(images, "images")
        arguments.boolean(displacement, "displacement")
        arguments.boolean(overwrite, "overwrite")
        job = arguments.job(job)
        splatter, _said = self._renderer_for_call(renderer)
        return bake_to_dir(as_image(image), simulator, pokes, frames, Path(out_dir), splatter, images=images,
                           displacement=displacement, overwrite=overwrite, job=job)

    # ------------------------------------------------------------------ the main job
    @protected_inputs()  # the still it reads cannot be among its outputs
    def animate(self, image_path: Union[str, Path], out_dir: Union[str, Path], *, seed: int = 0,
                steps: Optional[int] = None, frames: Optional[int] = None, fps: float = 30.0,
                amplitude: float = 1.0, slowmo: float = 1.0, fmt: str = "png", preview: Optional[str] = "gif",
                renderer: Optional[str] = None, overwrite: bool = False, job: Optional[Job] = None,
                init_strength: Optional[float] = None) -> AnimateResult:
        """Predict, render and write a seamless loop into ``out_dir``: the frames (or one video), a
        JSON sidecar, a preview and ``motion.gidsv``, all or nothing.

        Args:
            image_path: the still.
            out_dir: the output folder.
            seed, steps, init_strength: the prediction's (``predict``).
            frames, fps, slowmo: the loop's timing (default: one loop at 30 fps).
            amplitude: the motion's amplitude.
            fmt: "png", "exr", "mp4" or "gif".
            preview: "gif" or "mp4" beside a sequence, or None.
            renderer: "auto", "neural" or "splat" (default: the engine's).
            overwrite: replace existing outputs (otherwise they are refused before any work).
            job: progress and cancellation.

        Returns:
            The files, the motion file, the frame count, the seconds each part took and the messages.

        Raises:
            MissingWeightsError: the learned prior is not installed.
            InputError: a bad argument or image; BudgetError: over the frame or memory budget.
            ExportError: an output exists, is an input, or cannot be written.
            Cancelled: ``job`` was cancelled (nothing is left behind).
        """
        import time

        from ..exporters.errors import OutputExistsError
        from .rendering.pipeline import render_to_dir
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

        volume = predict_motion(image, seed=seed, steps=steps, job=job, init_strength=init_strength,
                                before_sampling=render_fits, log=self.log, prior=self.prior())
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
