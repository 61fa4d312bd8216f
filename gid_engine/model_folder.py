"""Checksummed model folders: a JSON index that lists every file with its size and SHA-256.

The motion prior's weights, its ONNX export and the renderer's checkpoints are folders of this
kind. Reading one checks the index (format, version, required keys) and each listed file (present,
its size, its hash) before anything is loaded, so a corrupt, truncated or missing file is a
one-line ``FormatError`` that names the file, and a folder without its index is a
``MissingWeightsError`` (the product works without the model). Writing publishes a finished
temporary folder in one rename, so a reader never sees a half-written one.

This module needs no torch: the runtime (onnxruntime) and the tooling (training, export) share it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from .errors import FormatError, MissingWeightsError


def sha256_file(path: Path) -> str:
    """The SHA-256 of the file at ``path``, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type's name): for one-line errors."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def jsonable(v: Any) -> Any:
    """``v`` as plain JSON: numbers, strings, booleans, None and lists of them; other values as a
    float when they convert, else as their text (scheduler configs hold numpy scalars and enums)."""
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def publish_folder(tmp: Path, folder: Path) -> None:
    """Put the finished ``tmp`` folder in place of ``folder`` (readable modes, old one removed last),
    so a reader sees the old complete folder or the new complete one, never a mix."""
    _publish_modes(tmp)
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        folder.rename(old)
    tmp.rename(folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _publish_modes(folder: Path) -> None:
    """mkdtemp makes a private (0700) folder: give the shipped files the usual modes, minus umask."""
    mask = os.umask(0)
    os.umask(mask)
    folder.chmod(0o777 & ~mask)
    for f in folder.iterdir():
        f.chmod(0o666 & ~mask)


def read_index_file(folder: Path, name: str, fmt: str, version: int, required: tuple[str, ...], *,
                    kind: str, label: str, model: str, versioned: str) -> dict:
    """The JSON index ``name`` of a model folder, checked for format, version and ``required``
    keys, with one-line errors: missing -> ``MissingWeightsError`` (the product works without
    the model), anything else -> ``FormatError`` naming the file. Files are verified separately
    (``verify_listing``). ``versioned``: subject and verb of the version error ("weights in DIR have")."""
    path = folder / name
    if not path.is_file():
        raise MissingWeightsError(f"{model} is not installed (no {name} in {folder})")
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FormatError(f"{label} {name} is corrupt ({first_line(exc)})") from None
    if not isinstance(index, dict) or index.get("format") != fmt:
        raise FormatError(f"{path} is not a gid {kind} index")
    if index.get("version") != version:
        raise FormatError(f"{versioned} index version {index.get('version')}; this gid reads {version}")
    for key in required:
        if key not in index:
            raise FormatError(f"{label} {name} is corrupt (no '{key}')")
    return index


def verify_listing(folder: Path, entries: list, label: str) -> None:
    """Each ``{"name", "bytes", "sha256"}`` entry is present in ``folder`` with that size and hash,
    else a one-line ``FormatError`` that says which file ("``label`` NAME is truncated ...")."""
    for entry in entries:
        name = entry["name"]
        path = Path(folder) / name
        if not path.is_file():
            raise FormatError(f"{label} {name} is missing from {folder}")
        size = path.stat().st_size
        if size != entry["bytes"]:
            what = "truncated" if size < entry["bytes"] else "corrupt"
            raise FormatError(f"{label} {name} is {what} ({size} bytes, expected {entry['bytes']})")
        if sha256_file(path) != entry["sha256"]:
            raise FormatError(f"{label} {name} is corrupt (checksum mismatch)")
