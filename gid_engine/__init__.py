"""gid engine: spectral volumes, motion extraction and rendering for Generative Image Dynamics.

The core (this package minus ``*_torch`` modules) needs only numpy, OpenCV and onnxruntime, so it
runs inside Blender where torch is not available.
"""

from .errors import Cancelled, FormatError, GidError, InputError
from .progress import Job
from .spectral_volume import SpectralVolume

__all__ = ["Cancelled", "FormatError", "GidError", "InputError", "Job", "SpectralVolume"]
__version__ = "0.1.0"
