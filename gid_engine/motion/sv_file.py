"""Reading and writing ``.gidsv`` spectral volume files.

The byte format (versioned npz + JSON metadata + checksum) lives in ``exporters.spectral_file``;
this module maps it to and from the ``SpectralVolume`` type and checks that the metadata
describes a usable volume (a file from another tool could be a valid npz and still nonsense).
"""

from __future__ import annotations

import math
from pathlib import Path

from ...exporters.atomic import protect_input
from ...exporters.errors import FileFormatError
from ...exporters.spectral_file import load_spectral_file, save_spectral_file

from ..budget import check_memory, motion_bytes
from ..errors import FormatError, InputError
from .spectral_volume import SpectralVolume

EXTENSION = ".gidsv"


def save_spectral_volume(sv: SpectralVolume, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``sv`` as a ``.gidsv`` file, atomically (a reader sees the old file or the new one).

    Args:
        sv: the spectral volume.
        path: the file to write.
        overwrite: replace an existing file (otherwise it is refused).

    Returns:
        ``path``.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        OutputIsInputError: ``path`` is a file the same job reads.
        ExportError: the file cannot be written (one line naming it).
    """
    path = Path(path)
    save_spectral_file(path, sv.coeffs, sv.metadata(), overwrite=overwrite)
    return path


def _check_shape(shape: tuple[int, ...], path: Path) -> None:
    """The memory budget, from the shape a motion file declares (before its data is read)."""
    if len(shape) == 4:
        k, _, h, w = shape
        check_memory(motion_bytes(k, w, h), f"reading motion file {path.name} ({w}x{h}, K={k})",
                     "use a smaller motion file")


def load_spectral_volume(path: str | Path) -> SpectralVolume:
    """Read and validate a ``.gidsv`` file, refusing one over the memory budget before reading it.

    Args:
        path: the motion file.

    Returns:
        The spectral volume it holds.

    Raises:
        FormatError: the file is missing, not a ``.gidsv`` file, damaged or inconsistent (one line).
        BudgetError: its declared size is over the memory budget.
    """
    path = Path(path)
    protect_input(path)  # no output of the same job may replace it
    try:
        coeffs, meta = load_spectral_file(path, lambda shape: _check_shape(shape, path))
    except FileFormatError as exc:
        raise FormatError(str(exc)) from None
    fps = meta.get("fps")
    frames = meta.get("num_frames")
    if not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise FormatError(f"{path.name}: metadata 'fps' must be a positive number, got {fps!r}")
    if not isinstance(frames, int) or frames < 2:
        raise FormatError(f"{path.name}: metadata 'num_frames' must be an integer >= 2, got {frames!r}")
    extra = meta.get("extra") if isinstance(meta.get("extra"), dict) else {}
    try:
        return SpectralVolume(coeffs, fps=float(fps), num_frames=frames, source=str(meta.get("source", "")),
                              extra=extra)
    except InputError as exc:
        raise FormatError(f"{path.name}: {exc}") from None
