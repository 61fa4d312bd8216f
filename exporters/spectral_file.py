"""The spectral volume file (``.gidsv``): an uncompressed ``.npz`` with two members.

* ``coeffs``: float32, shape (K, 4, H, W) (K frequencies; re/im of x and y per frequency).
* ``metadata``: uint8 bytes of UTF-8 JSON: ``{"format": "gid.spectral_volume", "version": 1,
  "shape": [...], "sha256": <hex of coeffs.tobytes()>, ...caller metadata}``.

Plain npz keeps the file readable with numpy alone; ``allow_pickle=False`` everywhere keeps a
downloaded file from running code. Loading checks everything a damaged or foreign file could get
wrong and says which, in one line, so a user knows to re-generate rather than debug. It reads
sizes before data: a path that is not a regular file (a FIFO would block), a compressed member
(gid writes none; a 2 MB "zip bomb" could inflate to GBs) or metadata over ``MAX_METADATA_BYTES``
is refused unread, and the coefficients' declared shape goes to the caller's ``check_shape``
(the engine's memory budget) before the array is read.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .atomic import atomic_write_bytes
from .errors import ExportError, FileFormatError
from .sidecar import dump_json, load_json

SPECTRAL_FORMAT = "gid.spectral_volume"
SPECTRAL_VERSION = 1
_RESERVED = ("format", "version", "shape", "sha256")
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError)
MAX_METADATA_BYTES = 16 * 2**20


def _check_coeffs(coeffs: np.ndarray) -> str | None:
    """The reason ``coeffs`` is not a valid spectral volume array, or None."""
    if coeffs.ndim != 4 or coeffs.shape[1] != 4:
        return f"array has shape {list(coeffs.shape)}, expected (K, 4, H, W)"
    if coeffs.dtype != np.float32:
        return f"array dtype is {coeffs.dtype}, expected float32"
    return None


def save_spectral_file(
    path: str | os.PathLike[str], coeffs: np.ndarray, metadata: dict[str, Any], overwrite: bool = False
) -> Path:
    """Write ``coeffs`` (any float dtype, stored as float32) and ``metadata`` atomically to ``path``."""
    arr = np.asarray(coeffs)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ExportError(f"spectral coefficients must be float, got {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    problem = _check_coeffs(arr)
    if problem:
        raise ExportError(f"cannot save spectral volume: {problem}")
    if not np.isfinite(arr).all():
        raise ExportError("cannot save spectral volume: it contains NaN or infinite values")
    doc = {k: v for k, v in metadata.items() if k not in _RESERVED}
    doc.update(format=SPECTRAL_FORMAT, version=SPECTRAL_VERSION, shape=list(arr.shape),
               sha256=hashlib.sha256(arr.tobytes()).hexdigest())
    meta = np.frombuffer(dump_json(doc, "spectral volume metadata"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, coeffs=arr, metadata=meta)
    return atomic_write_bytes(path, buf.getvalue(), overwrite)


def _read_member(zf: zipfile.ZipFile, name: str, where: str,
                 check_shape: Callable[[tuple[int, ...]], None] | None = None) -> np.ndarray:
    """One .npy member, with zip CRC failures reported as corruption; its header (shape, dtype)
    is read first, and the data only if ``check_shape`` accepts the shape and the member's
    stored size matches what the header declares."""
    if f"{name}.npy" not in zf.namelist():
        raise FileFormatError(f"{where}: member '{name}' is missing; not a gid spectral volume")
    info = zf.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        raise FileFormatError(f"{where}: member '{name}' is compressed; gid writes uncompressed files "
                              "(not a gid spectral volume, or re-saved by another tool)")
    try:
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in readers:
                raise FileFormatError(f"{where}: member '{name}' is a .npy of version {version}; not a gid file")
            shape, _fortran, dtype = readers[version](f)
            declared = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if declared + f.tell() != info.file_size or dtype.hasobject:
                raise FileFormatError(f"{where}: member '{name}' declares {declared} bytes of data "
                                      f"but holds {info.file_size - f.tell()}; the file is corrupt")
            if check_shape is not None:
                check_shape(tuple(int(s) for s in shape))
        with zf.open(info) as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    except zipfile.BadZipFile as exc:
        if "CRC" in str(exc):
            raise FileFormatError(f"{where}: checksum mismatch: file is corrupt") from None
        raise FileFormatError(f"{where}: damaged archive member '{name}' ({exc})") from None
    except _READ_ERRORS as exc:
        raise FileFormatError(f"{where}: cannot read member '{name}' (truncated or corrupt: {exc})") from None


def _read_metadata(zf: zipfile.ZipFile, where: str) -> dict[str, Any]:
    def small(shape: tuple[int, ...]) -> None:
        if int(np.prod(shape, dtype=np.int64)) > MAX_METADATA_BYTES:
            raise FileFormatError(f"{where}: metadata of {int(np.prod(shape))} bytes; gid writes a few KB")

    raw = _read_member(zf, "metadata", where, small)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise FileFormatError(f"{where}: metadata is not a byte array")
    try:
        meta = load_json(raw.tobytes())
    except ValueError as exc:
        raise FileFormatError(f"{where}: metadata is not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(meta, dict) or meta.get("format") != SPECTRAL_FORMAT:
        raise FileFormatError(f"{where}: not a gid spectral volume "
                              f"(format is {meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FileFormatError(f"{where}: invalid version {version!r}")
    if version > SPECTRAL_VERSION:
        raise FileFormatError(
            f"{where}: spectral volume version {version} is newer than this gid supports "
            f"({SPECTRAL_VERSION}); update gid"
        )
    return meta


def load_spectral_file(path: str | os.PathLike[str],
                       check_shape: Callable[[tuple[int, ...]], None] | None = None
                       ) -> tuple[np.ndarray, dict[str, Any]]:
    """Read and fully validate a ``.gidsv`` file; returns ``(coeffs, metadata)``.

    ``check_shape`` sees the coefficients' declared shape before they are read and may raise to
    refuse them (the engine's memory budget)."""
    path = Path(path)
    where = str(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise FileFormatError(f"{where} is not a regular file (a folder, a pipe or a device?)")
        with open(path, "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise FileFormatError(f"spectral volume file not found: {where}") from None
    except OSError as exc:
        raise FileFormatError(f"cannot read {where}: {exc.strerror or exc}") from None
    if not head:
        raise FileFormatError(f"{where} is empty")
    if head != b"PK\x03\x04":
        raise FileFormatError(f"{where} is not a gid spectral volume (not an npz/zip archive)")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise FileFormatError(f"{where} is truncated or damaged (incomplete zip archive)") from None
    with zf:
        meta = _read_metadata(zf, where)
        coeffs = _read_member(zf, "coeffs", where, check_shape)
    problem = _check_coeffs(coeffs)
    if problem:
        raise FileFormatError(f"{where}: {problem}")
    if meta.get("shape") != list(coeffs.shape):
        raise FileFormatError(f"{where}: shape mismatch: metadata says {meta.get('shape')}, "
                              f"array is {list(coeffs.shape)}")
    if meta.get("sha256") != hashlib.sha256(coeffs.tobytes()).hexdigest():
        raise FileFormatError(f"{where}: checksum mismatch: file is corrupt")
    if not np.isfinite(coeffs).all():
        raise FileFormatError(f"{where}: coefficients contain NaN or infinite values")
    return coeffs, meta
