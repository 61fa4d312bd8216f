"""Predicting a spectral volume from one image with the learned motion prior (paper §4).

The one entry point for callers (the engine, the CLI, the Blender add-on): ``predict_motion``.
Backends:

* ``onnx``: ``OnnxPriorPipeline`` on numpy + onnxruntime (what Blender has), reading the ONNX
  export of the weights, the sibling folder ``assets/motion_prior_onnx``; seamless loops come from
  a projection (``motion/loop_constraint.py``) instead of self-guidance;
* ``torch``: the reference pipeline on the torch weights, added by the development tooling
  (``gid_tools.torch_backend``) where it and torch are installed;
* ``auto`` (default): torch when that backend is installed and the torch weights are there, else onnx.

Without the files a backend needs it raises ``MissingWeightsError``, a clear one-line
``GidError``; a corrupt folder gives a one-line ``FormatError``. The sampled volume is at the
model's resolution (256x160, K=16, 30 fps x 150 frames), anchored, and comes back in the image's
aspect.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .. import arguments
from ..assets import PRIOR_DIR
from ..backends import backend as added_backend
from ..devices import onnx_device
from ..budget import check_memory, motion_bytes
from ..errors import InputError, MissingWeightsError
from ..media.imaging import LoadedImage
from .eulerian_init import check_strength
from ..progress import Job
from ..motion.spectral_volume import SpectralVolume

WEIGHTS_DIR = PRIOR_DIR
ONNX_SUFFIX = "_onnx"  # the ONNX export of weights folder NAME is its sibling NAME_onnx
BACKENDS = ("auto", "torch", "onnx")
ASPECT_TOLERANCE = 0.02  # the renderer's: closer aspects than this are used as they are
# DDIM steps when none are asked for and the sampler runs on the CPU (on a GPU: the model's 50):
# half the time of 50 with the same motion metrics on the shipped model (MODEL_CARD.md, "Steps").
CPU_DEFAULT_STEPS = 25
# Eulerian-initialised sampling (prediction/eulerian_init.py): start from the static-flow field's
# motion and run this share of the steps; 1 = plain sampling from noise (the paper's). The choice
# and its measurements are in MODEL_CARD.md, "Eulerian-initialised sampling"; the Blender panel's
# "Variation" defaults to the same.
DEFAULT_INIT_STRENGTH = 0.5
_ONNX_INDEX = "prior_onnx.json"  # motion_prior.onnx_pipeline.ONNX_INDEX_NAME (not imported: keeps this light)


def onnx_dir_for(weights_dir: Path) -> Path:
    """Where the ONNX export of ``weights_dir`` lives: the folder itself when it is an ONNX
    export, else its sibling ``NAME_onnx`` (``assets/motion_prior`` -> ``assets/motion_prior_onnx``)."""
    weights_dir = Path(weights_dir)
    if (weights_dir / _ONNX_INDEX).is_file():
        return weights_dir
    return weights_dir.with_name(weights_dir.name + ONNX_SUFFIX)


def weights_available(weights_dir: Optional[Path] = None) -> bool:
    """The torch weights or their ONNX export are installed (what each backend needs is checked
    when predicting)."""
    weights_dir = Path(weights_dir or WEIGHTS_DIR)
    return (weights_dir / "model_index.json").is_file() or (onnx_dir_for(weights_dir) / _ONNX_INDEX).is_file()


def predict_motion(image: LoadedImage, *, seed: int = 0, steps: Optional[int] = None, device: str = "auto",
                   weights_dir: Optional[Path] = None, job: Optional[Job] = None, backend: str = "auto",
                   log: Optional[Callable[[str], None]] = None, loop: bool = True,
                   init_strength: Optional[float] = None,
                   before_sampling: Optional[Callable[[int, int, int], None]] = None,
                   prior: Optional[LoadedPrior] = None) -> SpectralVolume:
    """A spectral volume for ``image`` sampled from the learned prior (paper §4).

    The same seed gives the same volume on the same device and backend (the backends draw their
    initial noise differently, so their volumes differ).

    Args:
        image: the still (``media.imaging.load_image``).
        seed: the sampler's seed, 0 .. 2**63-1.
        steps: DDIM steps (default: the model's, 50 for the shipped model, on a GPU; at most
            ``CPU_DEFAULT_STEPS`` on the CPU; the paper uses 250).
        device: "auto" (CUDA when available), "gpu"/"cuda" or "cpu".
        weights_dir: the weights folder (default: the shipped one; its ONNX export is the sibling
            ``NAME_onnx``).
        job: progress and cancellation.
        backend: "auto", "torch" or "onnx" (module doc).
        log: hears about provider fallbacks (a GPU asked for but not usable).
        loop: project the volume onto the seamless-loop constraints (``motion/loop_constraint.py``)
            on both backends, so a loop never snaps back at its seam.
        init_strength: below 1, start from the static-flow field's motion and run that share of
            the steps (``prediction/eulerian_init.py``); default ``DEFAULT_INIT_STRENGTH``.
        before_sampling: ``(K, width, height)`` of the volume about to be sampled, called after the
            model loads and before the costly part, so a caller can refuse what it would do with it
            (``Engine.animate`` checks the render's memory budget).
        prior: a prior the caller loaded and keeps (``load_prior``; ``Engine`` does); without one,
            the prior of ``weights_dir``, ``backend`` and ``device`` is loaded here (once per
            folder, device and index version, shared by such calls).

    Returns:
        The volume in the image's aspect (the model's rows), anchored.

    Raises:
        MissingWeightsError: the model (or the backend's files) is not installed.
        FormatError: the weights folder is damaged.
        ArgumentError: an argument is out of range.
        Cancelled: ``job`` was cancelled.
    """
    arguments.instance(image, "image", LoadedImage, "gid_engine.media.imaging.load_image(path)")
    seed = arguments.seed(seed)
    steps = arguments.optional(steps, arguments.integer, "steps", 1, 10_000)
    asked = None if init_strength is None else check_strength(init_strength)
    if prior is None:
        prior = load_prior(weights_dir, backend=backend, device=device, log=log)
    elif prior.backend == "onnx":
        prior.pipeline.use_log(log)
    chosen, pipe = prior.backend, prior.pipeline
    pixels = _display_rgb(image)
    if chosen == "torch":
        _check_output_budget(image, pipe.config.num_frequencies, pipe.config.width, pipe.config.height)
        if before_sampling is not None:
            before_sampling(pipe.config.num_frequencies, *output_size(image, pipe.config.width, pipe.config.height))
        steps = steps or default_steps(pipe.config.default_steps, on_gpu=pipe.device.type == "cuda")
        vol = pipe(pixels, steps=steps, seed=int(seed), job=job, init_strength=init_strength_for(pipe, asked))
        if loop:
            vol = _seamless(vol)
    else:
        _check_output_budget(image, pipe.K, pipe.width, pipe.height)
        if before_sampling is not None:
            before_sampling(pipe.K, *output_size(image, pipe.width, pipe.height))
        steps = steps or default_steps(pipe.default_steps, on_gpu=pipe.provider == "CUDAExecutionProvider")
        vol = pipe(pixels, steps=steps, seed=int(seed), job=job, loop=loop,
                   init_strength=init_strength_for(pipe, asked))
    extra = dict(vol.extra)
    extra.setdefault("backend", chosen)
    extra["image_size"] = [image.width, image.height]
    extra["model_size"] = [vol.width, vol.height]
    if image.path:
        extra["image"] = Path(image.path).name
    vol = vol.replace(extra=extra)
    # The model sees the image stretched to its 256x160; give the motion back in the image's
    # aspect (same 160 rows, displacements rescaled) so it renders on the image as is.
    size = output_size(image, vol.width, vol.height)
    if size != (vol.width, vol.height):
        vol = vol.resized(*size)
    return vol


@dataclass(frozen=True)
class LoadedPrior:
    """A prior ready to sample: the backend chosen ("torch" or "onnx") and its pipeline, which holds
    the onnxruntime sessions or the torch modules."""

    backend: str
    pipeline: Any
    weights_dir: Path


def load_prior(weights_dir: Optional[Path] = None, *, backend: str = "auto", device: str = "auto",
               log: Optional[Callable[[str], None]] = None, shared: bool = True) -> LoadedPrior:
    """Choose the backend for ``weights_dir`` and load its pipeline, checksums verified.

    Args:
        weights_dir: the weights folder (default: the shipped one).
        backend: "auto", "torch" or "onnx" (module doc).
        device: "auto", "gpu"/"cuda" or "cpu".
        log: hears about provider fallbacks (a GPU asked for but not usable).
        shared: reuse the process-wide pipeline of this folder and device (what plain
            ``predict_motion`` calls share); False loads one of the caller's own (an ``Engine``'s).

    Returns:
        The loaded prior.

    Raises:
        MissingWeightsError: the model (or the backend's files) is not installed.
        FormatError: the weights folder is damaged.
    """
    weights_dir = Path(weights_dir or WEIGHTS_DIR)  # looked up per call: tests and add-ons may repoint it
    chosen = _choose_backend(backend, weights_dir)
    if chosen == "torch":
        return LoadedPrior(chosen, added_backend("torch").prior_pipeline(weights_dir, device), weights_dir)
    onnx_dir = onnx_dir_for(weights_dir)
    if shared:
        return LoadedPrior(chosen, _onnx_pipeline(onnx_dir, onnx_device(device), log), weights_dir)
    from .onnx_pipeline import OnnxPriorPipeline

    return LoadedPrior(chosen, OnnxPriorPipeline.load(onnx_dir, device=onnx_device(device), log=log), weights_dir)


def output_size(image: LoadedImage, width: int, height: int) -> tuple[int, int]:
    """The size of the motion ``predict_motion`` returns for ``image`` from a ``width`` x ``height``
    model: the model's rows, in the image's aspect (the model's own size when they are close)."""
    a_img, a_vol = image.width / image.height, width / height
    if abs(a_img / a_vol - 1.0) > ASPECT_TOLERANCE:
        return max(1, round(height * a_img)), height
    return width, height


def _check_output_budget(image: LoadedImage, k: int, width: int, height: int) -> None:
    """Before sampling: refuse an image so wide (or tall) that its motion is over the memory budget
    (a 2000x10 panorama would give a 32000x160 volume of 1.2 GiB)."""
    w, h = output_size(image, width, height)
    check_memory(motion_bytes(k, w, h), f"predicting motion for a {image.width}x{image.height} image "
                                        f"(a {w}x{h} volume in its aspect)",
                 f"crop the image nearer the model's {width}x{height} aspect")


def init_strength_for(pipe, asked: Optional[float]) -> float:
    """``asked`` when given (a model that cannot start from the field then says so); otherwise the
    default where the model (torch or ONNX pipeline) can start from the field, plain sampling where
    it cannot (models without the static-flow condition, exports without the "eulerian_start" capability)."""
    if asked is not None:
        return asked
    return DEFAULT_INIT_STRENGTH if getattr(pipe, "supports_eulerian_start", False) else 1.0


def default_steps(model_default: int, *, on_gpu: bool) -> int:
    """The DDIM steps of a prediction that asked for none: the model's own on a GPU, at most
    ``CPU_DEFAULT_STEPS`` on the CPU (a model whose default is lower keeps it)."""
    return int(model_default) if on_gpu else min(int(model_default), CPU_DEFAULT_STEPS)


def _seamless(vol: SpectralVolume) -> SpectralVolume:
    """The torch path's volume made seamless exactly as the ONNX pipeline does it."""
    from ..motion.loop_constraint import make_seamless, relative_change, seam_error

    seamless = make_seamless(vol).anchored()
    extra = dict(vol.extra, loop=True, seam_error_raw_px=round(seam_error(vol), 6),
                 loop_correction=round(relative_change(vol.coeffs, seamless.coeffs), 6))
    extra["seam_error_px"] = round(seam_error(seamless), 6)
    return seamless.replace(extra=extra)


def _torch_importable() -> bool:
    """The tooling's torch backend is installed and torch and diffusers import."""
    return added_backend("torch") is not None


def _choose_backend(backend: str, weights_dir: Path) -> str:
    """"torch" or "onnx" for ``backend``, or a ``MissingWeightsError`` saying what is missing."""
    b = (backend or "auto").lower()
    if b not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose {', '.join(BACKENDS)}")
    torch_weights = (weights_dir / "model_index.json").is_file()
    onnx_dir = onnx_dir_for(weights_dir)
    onnx_files = (onnx_dir / _ONNX_INDEX).is_file()
    if b == "onnx" and not onnx_files:
        raise MissingWeightsError(
            f"the learned motion model's ONNX export is not installed (no {_ONNX_INDEX} in {onnx_dir}); "
            "run 'gid export-onnx --prior' or use the torch backend"
        )
    if b == "onnx" or (b == "auto" and onnx_files and not (torch_weights and _torch_importable())):
        return "onnx"
    if not torch_weights:
        raise MissingWeightsError(
            f"the learned motion model is not installed (no weights in {weights_dir}); "
            "use 'Extract motion from video' (gid extract) until it ships"
        )
    if not _torch_importable():
        raise MissingWeightsError(
            "the learned motion model is not installed in this Python: it needs torch and diffusers "
            "(pip install 'gid[torch]') or its ONNX export; use 'Extract motion from video' (gid extract) instead"
        )
    return "torch"


_ONNX_CACHE: dict = {}


def _onnx_pipeline(onnx_dir: Path, device: str, log: Optional[Callable[[str], None]]):
    """Load (once per folder, device and index file version) the ONNX pipeline; checksums are
    verified on load."""
    from .onnx_pipeline import ONNX_INDEX_NAME, OnnxPriorPipeline

    st = (onnx_dir / ONNX_INDEX_NAME).stat()
    key = (str(onnx_dir.resolve()), device, st.st_mtime_ns, st.st_size)
    if _ONNX_CACHE.get("key") != key:
        _ONNX_CACHE.clear()
        _ONNX_CACHE["pipe"] = OnnxPriorPipeline.load(onnx_dir, device=device)
        _ONNX_CACHE["key"] = key
    pipe = _ONNX_CACHE["pipe"]
    pipe.use_log(log)  # the cache is keyed without the logger: every caller hears the fallback
    return pipe


def _display_rgb(image: LoadedImage):
    """(H, W, 3) float32 display-referred RGB in [0, 1] (the model's training images are sRGB)."""
    import numpy as np

    px = np.asarray(image.pixels, dtype=np.float32)[:, :, :3]
    if image.linear:
        px = np.clip(px, 0.0, None)
        px = np.where(px <= 0.0031308, 12.92 * px, 1.055 * np.power(px, 1.0 / 2.4) - 0.055)
    return np.clip(px, 0.0, 1.0).astype(np.float32)
