"""JSON sidecar files that describe an export (``prefix.json`` next to the frames).

The add-on reads them to rebuild node setups (e.g. the Displace node scale), so they carry a
format tag and a version: an old add-on must refuse a newer file instead of misreading it.
Output is deterministic (sorted keys, indent 2) and strict JSON (NaN/Infinity rejected).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .errors import ExportError, FileFormatError

SIDECAR_FORMAT = "gid.sidecar"
SIDECAR_VERSION = 1


def _numpy_to_json(obj: Any) -> Any:
    """Let callers pass numpy scalars/arrays in metadata without converting them first."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dump_json(obj: Any, what: str = "metadata") -> bytes:
    """Strict, deterministic UTF-8 JSON; a one-line ExportError when ``obj`` is not plain JSON."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False, default=_numpy_to_json)
    except (TypeError, ValueError) as exc:
        raise ExportError(f"{what} is not plain JSON: {exc}") from None
    # A file name the system could not decode holds surrogates (PEP 383); written as JSON escapes
    # ("\\udce9") the file stays valid UTF-8 and reads back to the same name.
    return (text + "\n").encode("utf-8", "backslashreplace")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_json(data: bytes) -> Any:
    """Parse strict UTF-8 JSON (NaN/Infinity rejected); raises ValueError on any problem."""
    return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)


def sidecar_document(kind: str, params: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
    """Wrap export parameters and file info with the format tag, version and creation time."""
    return {
        "format": SIDECAR_FORMAT,
        "version": SIDECAR_VERSION,
        "kind": kind,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "params": dict(params),
        "files": dict(files),
    }


def encode_sidecar(doc: dict[str, Any]) -> bytes:
    """Serialise a sidecar document (see :func:`dump_json`)."""
    return dump_json(doc, "sidecar")


def read_sidecar(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a sidecar; FileFormatError if broken, foreign or from a newer gid."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FileFormatError(f"sidecar not found: {path}") from None
    except OSError as exc:
        raise FileFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        doc = load_json(data)
    except ValueError as exc:
        raise FileFormatError(f"{path} is not valid JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict) or doc.get("format") != SIDECAR_FORMAT:
        raise FileFormatError(f"{path} is not a gid sidecar")
    version = doc.get("version")
    if not isinstance(version, int) or version < 1:
        raise FileFormatError(f"{path} has an invalid sidecar version {version!r}")
    if version > SIDECAR_VERSION:
        raise FileFormatError(f"{path} is sidecar version {version}; this gid reads up to {SIDECAR_VERSION}")
    return doc
