"""Predicting a spectral volume from one image with the learned motion prior (paper §4).

The one entry point for callers (CLI, Blender add-on): ``predict_motion``. It needs torch +
diffusers (the ``torch`` extra) and the weights folder ``assets/motion_prior`` (see
``motion_prior/weights.py``); without the weights it raises ``MissingWeightsError``, a clear
one-line ``GidError``, and a corrupt weights folder gives a one-line ``FormatError``.
The sampled volume is at the model's resolution (256x160, K=16, 30 fps x 150 frames), anchored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .errors import GidError, InputError
from .imaging import LoadedImage
from .progress import Job
from .spectral_volume import SpectralVolume

WEIGHTS_DIR = Path(__file__).resolve().parent / "assets" / "motion_prior"
ASPECT_TOLERANCE = 0.02  # the renderer's: closer aspects than this are used as they are


class MissingWeightsError(GidError):
    """The learned motion model's weight files are not installed."""


def weights_available(weights_dir: Optional[Path] = None) -> bool:
    return (Path(weights_dir or WEIGHTS_DIR) / "model_index.json").is_file()


def predict_motion(image: LoadedImage, *, seed: int = 0, steps: Optional[int] = None, device: str = "auto",
                   weights_dir: Optional[Path] = None, job: Optional[Job] = None) -> SpectralVolume:
    """A spectral volume for ``image`` sampled from the learned prior (needs the shipped weights).

    ``steps``: DDIM steps (default: the model's, 50 for the shipped model; the paper uses 250).
    ``device``: "auto" (CUDA when available), "gpu"/"cuda" or "cpu". The same seed gives the same
    volume on the same device.
    """
    weights_dir = Path(weights_dir or WEIGHTS_DIR)  # looked up per call: tests and add-ons may repoint it
    if not weights_available(weights_dir):
        raise MissingWeightsError(
            f"the learned motion model is not installed (no weights in {weights_dir}); "
            "use 'Extract motion from video' (gid extract) until it ships"
        )
    try:
        import torch  # noqa: F401
        import diffusers  # noqa: F401
    except ImportError:
        raise MissingWeightsError(
            "the learned motion model is not installed in this Python: it needs torch and diffusers "
            "(pip install 'gid[torch]'); use 'Extract motion from video' (gid extract) instead"
        ) from None
    if steps is not None and int(steps) < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    pipe = _pipeline(Path(weights_dir), _torch_device(device))
    pixels = _display_rgb(image)
    vol = pipe(pixels, steps=steps, seed=int(seed), job=job)
    extra = dict(vol.extra)
    extra["image_size"] = [image.width, image.height]
    extra["model_size"] = [vol.width, vol.height]
    if image.path:
        extra["image"] = Path(image.path).name
    vol = vol.replace(extra=extra)
    # The model sees the image stretched to its 256x160; give the motion back in the image's
    # aspect (same 160 rows, displacements rescaled) so it renders on the image as is.
    a_img, a_vol = image.width / image.height, vol.width / vol.height
    if abs(a_img / a_vol - 1.0) > ASPECT_TOLERANCE:
        vol = vol.resized(max(1, round(vol.height * a_img)), vol.height)
    return vol


_CACHE: dict = {}


def _pipeline(weights_dir: Path, device: str):
    """Load (once per weights folder, device and index file version) the sampling pipeline."""
    from .motion_prior.weights import INDEX_NAME, load_weights

    index = weights_dir / INDEX_NAME
    st = index.stat()
    key = (str(weights_dir.resolve()), device, st.st_mtime_ns, st.st_size)
    if _CACHE.get("key") != key:
        _CACHE.clear()
        _CACHE["pipe"] = load_weights(weights_dir, device=device)
        _CACHE["key"] = key
    return _CACHE["pipe"]


def _torch_device(device: str) -> str:
    import torch

    d = (device or "auto").lower()
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if d in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise InputError("no CUDA GPU is available to torch; use --device cpu")
        return "cuda"
    if d == "cpu":
        return "cpu"
    raise InputError(f"unknown device {device!r}; choose auto, gpu or cpu")


def _display_rgb(image: LoadedImage):
    """(H, W, 3) float32 display-referred RGB in [0, 1] (the model's training images are sRGB)."""
    import numpy as np

    px = np.asarray(image.pixels, dtype=np.float32)[:, :, :3]
    if image.linear:
        px = np.clip(px, 0.0, None)
        px = np.where(px <= 0.0031308, 12.92 * px, 1.055 * np.power(px, 1.0 / 2.4) - 0.055)
    return np.clip(px, 0.0, 1.0).astype(np.float32)
