"""Checksummed model folders: one index format for every model the engine or its tooling loads.

A model folder holds its files and one JSON index that says what the folder is and lists every
file with its size and SHA-256::

    {"format": "gid.model", "version": 2, "kind": "renderer",
     "capabilities": ["onnx", "torch_weights"],
     "files": [{"name": "renderer_frame.onnx", "bytes": 1441792, "sha256": "..."}, ...],
     ...the model's own keys (config, scheduler, training summary)...}

``kind`` names the model (``ModelKind``: the prior's torch weights, their ONNX export, the neural
renderer, the learned Eulerian baseline) and fixes the index's file name and required keys;
``capabilities`` says what the folder can do, so a reader asks for what it needs (the ONNX prior's
Eulerian start, the renderer's ONNX graphs) instead of guessing from which keys are present.
Reading checks the index and every listed file (present, its size, its hash) before anything is
loaded: a corrupt, truncated or missing file is a one-line ``FormatError`` naming the file, a
folder without its index is a ``MissingWeightsError`` (the product works without the model).
Writing publishes a finished temporary folder in one rename (``publish_folder``) or replaces the
index atomically (``write_index``), so a reader never sees a half-written folder.

Indexes written before this format (version 1 of the prior's two indexes and the baseline's, and
the renderer's unversioned one) are read through ``_upgrade_v1``. This module needs no torch: the
runtime (onnxruntime) and the tooling (training, export) share it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .errors import FormatError, InputError, MissingWeightsError

INDEX_FORMAT = "gid.model"
INDEX_VERSION = 2


@dataclass(frozen=True)
class ModelKind:
    """What a kind of model folder is called, where its index lives and what the index must hold.

    ``title``: the model in messages ("the neural renderer"); ``file_label``: one of its files
    ("renderer file"); ``required``: keys beyond the common ones; ``missing_hint``: what to do
    when the folder is not installed."""

    name: str
    index_name: str
    title: str
    file_label: str
    required: tuple[str, ...] = ()
    missing_hint: str = ""


MOTION_PRIOR = ModelKind("motion_prior", "model_index.json", "the learned motion model", "weights file",
                         ("config", "components", "latent_scale"),
                         "use 'Extract motion from video' (gid extract) until it ships")
MOTION_PRIOR_ONNX = ModelKind("motion_prior_onnx", "prior_onnx.json", "the learned motion model (ONNX)",
                              "ONNX prior file", ("config", "models", "normalization", "scheduler", "latent_scale"),
                              "run 'gid export-onnx --prior' or use the torch backend")
RENDERER = ModelKind("renderer", "renderer.json", "the neural renderer", "renderer file", ("config",),
                     "use --renderer splat")
STATIC_FLOW = ModelKind("static_flow", "static_flow.json", "the learned Eulerian baseline", "static-flow file",
                        missing_hint="train it with 'gid train static-flow'")
KINDS = (MOTION_PRIOR, MOTION_PRIOR_ONNX, RENDERER, STATIC_FLOW)


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


# ----------------------------------------------------------------------------- writing
def list_files(folder: Path, names: Iterable[str], kind: ModelKind, max_bytes: int | None = None) -> list[dict]:
    """The index's ``files`` entries for ``names`` in ``folder`` (size and SHA-256), refusing a
    file over ``max_bytes`` (what fits in the repository and the extension)."""
    listing = []
    for name in names:
        path = Path(folder) / name
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise InputError(f"{kind.file_label} {name} is {size} bytes, over the {max_bytes} byte limit")
        listing.append({"name": name, "bytes": size, "sha256": sha256_file(path)})
    return listing


def make_index(kind: ModelKind, capabilities: Iterable[str], files: list[dict], **fields: Any) -> dict:
    """An index of ``kind`` with the common keys first, then the model's own ``fields``."""
    return {"format": INDEX_FORMAT, "version": INDEX_VERSION, "kind": kind.name,
            "capabilities": sorted(set(capabilities)), "files": files,
            "total_bytes": sum(int(e["bytes"]) for e in files), **fields}


def write_index(folder: Path, kind: ModelKind, index: dict) -> Path:
    """Write ``index`` as ``folder``'s index file, replacing the old one in one rename."""
    path = Path(folder) / kind.index_name
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(index, indent=2, sort_keys=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def update_index(folder: Path, kind: ModelKind, names: Iterable[str], capabilities: Iterable[str] = (),
                 **fields: Any) -> dict:
    """Add (or refresh) the files ``names`` of ``folder`` in its index, with ``capabilities`` and
    ``fields``, keeping what the index already lists for its other files: for folders written in
    steps (the renderer's weights, then its ONNX graphs). Returns the index written."""
    folder = Path(folder)
    try:
        old = read_index(folder, kind, verify=False)
    except (MissingWeightsError, FormatError):
        old = {}
    names = list(names)
    kept = [e for e in old.get("files", []) if e["name"] not in names and (folder / e["name"]).is_file()]
    files = sorted(kept + list_files(folder, names, kind), key=lambda e: e["name"])
    own = {k: v for k, v in old.items() if k not in ("format", "version", "kind", "capabilities", "files",
                                                      "total_bytes")}
    index = make_index(kind, [*old.get("capabilities", []), *capabilities], files, **{**own, **fields})
    write_index(folder, kind, index)
    return index


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


# ----------------------------------------------------------------------------- reading
def index_exists(folder: Path, kind: ModelKind) -> bool:
    """Whether ``folder`` holds an index of ``kind`` (its files are checked when it is read)."""
    return (Path(folder) / kind.index_name).is_file()


def read_index(folder: Path, kind: ModelKind, *, verify: bool = True, needs: Iterable[str] = ()) -> dict:
    """The index of the model folder ``folder``, checked, with one-line errors.

    Missing index: ``MissingWeightsError``. Unreadable JSON, another format, kind or version, a
    required key or a capability in ``needs`` absent: ``FormatError`` naming the file. With
    ``verify`` every listed file is checked too (``verify_files``)."""
    folder = Path(folder)
    path = folder / kind.index_name
    if not path.is_file():
        hint = f"; {kind.missing_hint}" if kind.missing_hint else ""
        raise MissingWeightsError(f"{kind.title} is not installed (no {kind.index_name} in {folder}){hint}")
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise _corrupt(kind, first_line(exc)) from None
    if not isinstance(index, dict):
        raise _corrupt(kind, "not a JSON object")
    if index.get("format") != INDEX_FORMAT:
        index = _upgrade_v1(index, kind, path)
    if index.get("kind") != kind.name:
        raise FormatError(f"{path} is not a gid {kind.name} index (it is {index.get('kind')!r})")
    if index.get("version") != INDEX_VERSION:
        raise FormatError(f"{kind.title} in {folder} has index version {index.get('version')}; "
                          f"this gid reads {INDEX_VERSION}")
    for key in ("capabilities", "files", *kind.required):
        if key not in index:
            raise _corrupt(kind, f"no '{key}'")
    if not isinstance(index["files"], list) or not all(isinstance(e, dict) and "name" in e for e in index["files"]):
        raise _corrupt(kind, "its file list")
    missing = [c for c in needs if c not in index["capabilities"]]
    if missing:
        raise FormatError(f"{kind.title} in {folder} cannot {', '.join(missing)} (it can: "
                          f"{', '.join(index['capabilities']) or 'nothing'}); export it again with this gid")
    if verify:
        verify_files(folder, index, kind)
    return index


def _corrupt(kind: ModelKind, why: str) -> FormatError:
    return FormatError(f"{kind.file_label} {kind.index_name} is corrupt ({why}); reinstall gid or export the model "
                       "again")


def verify_files(folder: Path, index: dict, kind: ModelKind, names: Iterable[str] | None = None) -> None:
    """Each listed file (or only ``names``) is present in ``folder`` with its size and hash, else a
    one-line ``FormatError`` that says which file ("renderer file X is truncated ...")."""
    wanted = None if names is None else set(names)
    listed = {e["name"] for e in index["files"]}
    for name in wanted or ():
        if name not in listed:
            raise FormatError(f"{kind.file_label} {name} is not listed in {kind.index_name}")
    for entry in index["files"]:
        name = entry["name"]
        if wanted is not None and name not in wanted:
            continue
        path = Path(folder) / name
        if not path.is_file():
            raise FormatError(f"{kind.file_label} {name} is missing from {folder}")
        size = path.stat().st_size
        expected = entry.get("bytes")
        if expected is not None and size != expected:
            what = "truncated" if size < expected else "corrupt"
            raise FormatError(f"{kind.file_label} {name} is {what} ({size} bytes, expected {expected})")
        if sha256_file(path) != entry.get("sha256"):
            raise FormatError(f"{kind.file_label} {name} is corrupt (checksum mismatch)")


def file_path(folder: Path, index: dict, name: str, kind: ModelKind) -> Path:
    """The path of the listed file ``name``, verified (size and SHA-256)."""
    verify_files(folder, index, kind, [name])
    return Path(folder) / name


# ----------------------------------------------------------------------------- older indexes
_V1_FORMATS = {"gid.motion_prior": "motion_prior", "gid.motion_prior_onnx": "motion_prior_onnx",
               "gid.static_flow": "static_flow"}


def _upgrade_v1(index: dict, kind: ModelKind, path: Path) -> dict:
    """An index written before ``gid.model`` in the current form: the prior's weights and ONNX
    export (``format`` gid.motion_prior[_onnx], version 1), the baseline's (gid.static_flow, version
    1, files as name -> SHA-256) and the renderer's (no format, files as name -> SHA-256)."""
    fmt = index.get("format")
    if fmt is None and kind is RENDERER and "config" in index:
        name = RENDERER.name
    elif fmt in _V1_FORMATS:
        name = _V1_FORMATS[fmt]
        if "version" not in index:
            raise _corrupt(kind, "no 'version'")
        if index["version"] != 1:
            raise FormatError(f"{kind.title} in {path.parent} has index version {index['version']}; "
                              f"this gid reads {INDEX_VERSION}")
    else:
        raise FormatError(f"{path} is not a gid {kind.name} index")
    if not isinstance(index.get("files"), (dict, list)):
        raise _corrupt(kind, "no 'files'")
    out = dict(index, format=INDEX_FORMAT, version=INDEX_VERSION, kind=name)
    files = index.get("files")
    if isinstance(files, dict):
        out["files"] = [{"name": n, "bytes": None, "sha256": s} for n, s in files.items()]
    out["capabilities"] = _v1_capabilities(name, out)
    return out


def _v1_capabilities(name: str, index: dict) -> list[str]:
    """What a version-1 folder can do, read from the keys its format had."""
    names = {e.get("name") for e in index.get("files") or [] if isinstance(e, dict)}
    if name == "motion_prior":
        static = (index.get("config") or {}).get("denoiser", {}).get("static_flow_width", 0)
        return ["sample", "torch_weights"] + (["eulerian_start"] if static else [])
    if name == "motion_prior_onnx":
        models = index.get("models") or {}
        field = "flow" in (models.get("encoder") or {}).get("outputs", [])
        return ["onnx", "sample"] + (["eulerian_start"] if field and "vae_encoder" in models else [])
    if name == "renderer":
        caps = ["torch_weights"] if "renderer.safetensors" in names else []
        return caps + (["onnx"] if {"renderer_encoder.onnx", "renderer_frame.onnx"} <= names else [])
    return ["static_field", "torch_weights"]
