"""Predicting a spectral volume from one image with the learned motion prior (paper §4).

The latent diffusion model and its shipped weights are built in the motion-prior issue. Until
they land, this entry point exists so callers (CLI, Blender add-on) have one place to ask, and
get a clear, actionable error instead of a traceback when the weights are absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .errors import GidError
from .imaging import LoadedImage
from .progress import Job
from .spectral_volume import SpectralVolume

WEIGHTS_DIR = Path(__file__).resolve().parent / "assets" / "motion_prior"


class MissingWeightsError(GidError):
    """The learned motion model's weight files are not installed."""


def weights_available(weights_dir: Path = WEIGHTS_DIR) -> bool:
    return (weights_dir / "model_index.json").is_file()


def predict_motion(image: LoadedImage, *, seed: int = 0, steps: Optional[int] = None, device: str = "auto",
                   weights_dir: Path = WEIGHTS_DIR, job: Optional[Job] = None) -> SpectralVolume:
    """A spectral volume for ``image`` sampled from the learned prior (needs the shipped weights)."""
    if not weights_available(weights_dir):
        raise MissingWeightsError(
            f"the learned motion model is not installed (no weights in {weights_dir}); "
            "use 'Extract motion from video' (gid extract) until it ships"
        )
    raise MissingWeightsError(f"weights in {weights_dir} need a newer gid to load")  # pragma: no cover
