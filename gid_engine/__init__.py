"""gid engine: the runtime that ships in the Blender extension (numpy, OpenCV, onnxruntime; no torch).

Grouped by idea: ``motion`` (the spectral volume, its file, loops, masks, extraction from a clip),
``prediction`` (the learned prior through onnxruntime), ``rendering`` (frames, loops and
displacement maps), ``dynamics`` (interactive dynamics), ``media`` (images and clips in), and at
the top the front door (``engine``, ``cli``) with what every part shares: errors, argument checks,
budgets, signals, progress, devices, onnxruntime sessions and checksummed model folders.
Training, evaluation, export and the other development tools live in ``gid_tools``, which
builds on this package and adds its commands and a torch backend through ``backends``.
"""

from .errors import Cancelled, FormatError, GidError, InputError
from .progress import Job
from .motion.spectral_volume import SpectralVolume

__all__ = ["Cancelled", "FormatError", "GidError", "InputError", "Job", "SpectralVolume"]
__version__ = "0.1.0"
