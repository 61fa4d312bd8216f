"""The shipped motion-prior weights: one folder, checksummed, every file small enough to ship.

Layout of ``gid_engine/assets/motion_prior/`` (or any weights folder)::

    model_index.json      what the folder is: configs, versions, latent scale, scheduler,
                          and every file with its size and SHA-256
    vae.safetensors       SpectralVAE state dict (fp32)
    denoiser.safetensors  frequency-coordinated denoiser (base U-Net + frequency attention);
                          split into denoiser-00001-of-0000N.safetensors when over the file limit
    normalization.json    the FrequencyNormalizer the models were trained with

Every file is at most ``MAX_FILE_BYTES`` (16 MiB) and the folder at most ``MAX_TOTAL_BYTES``
(60 MiB): a state dict is sharded across files (a tensor larger than a shard is split into
flat chunks). Loading verifies sizes and checksums first, so a corrupt, truncated, missing or
mismatched file is a one-line ``FormatError`` (a ``GidError``) naming the file, never a traceback.
The folder is written to a temporary sibling and swapped in, so it is never half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

from ..errors import FormatError, InputError

INDEX_NAME = "model_index.json"
INDEX_FORMAT = "gid.motion_prior"
INDEX_VERSION = 1
NORMALIZATION_NAME = "normalization.json"
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_TOTAL_BYTES = 60 * 1024 * 1024
_SHARD_BUDGET = MAX_FILE_BYTES - 256 * 1024  # room for the safetensors header
_SPLIT_SEP = "@@part"


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


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- sharded state dicts
def save_state_dict(state: dict, folder: Path, stem: str, max_bytes: int = _SHARD_BUDGET) -> list[str]:
    """Write ``state`` as ``stem.safetensors`` or ``stem-0000i-of-0000N.safetensors`` shards of at
    most ``max_bytes`` of tensor data each; returns the file names. Tensors bigger than a shard are
    stored as flat chunks ``name@@partI`` (with their shape in the shard metadata)."""
    from safetensors.torch import save_file

    pieces: list[tuple[str, Any]] = []
    shapes: dict[str, list[int]] = {}
    for name, t in state.items():
        t = t.detach().contiguous().cpu()
        nbytes = t.numel() * t.element_size()
        if nbytes <= max_bytes:
            pieces.append((name, t))
            continue
        flat = t.reshape(-1)
        per = max(1, max_bytes // t.element_size())
        shapes[name] = list(t.shape)
        for i, start in enumerate(range(0, flat.numel(), per)):
            pieces.append((f"{name}{_SPLIT_SEP}{i}", flat[start : start + per].clone()))
    shards: list[dict[str, Any]] = [{}]
    used = 0
    for name, t in pieces:
        nbytes = t.numel() * t.element_size()
        if used + nbytes > max_bytes and shards[-1]:
            shards.append({})
            used = 0
        shards[-1][name] = t
        used += nbytes
    n = len(shards)
    names = [f"{stem}.safetensors"] if n == 1 else [f"{stem}-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
    meta = {"format": "pt", "split_shapes": json.dumps(shapes)}
    for name, shard in zip(names, shards):
        save_file(shard, str(folder / name), metadata=meta)
    return names


def load_state_dict(folder: Path, names: list[str]) -> dict:
    import torch
    from safetensors import safe_open

    pieces: dict[str, Any] = {}
    shapes: dict[str, list[int]] = {}
    for name in names:
        try:
            with safe_open(str(folder / name), framework="pt") as fh:
                meta = fh.metadata() or {}
                shapes.update(json.loads(meta.get("split_shapes", "{}")))
                for key in fh.keys():
                    pieces[key] = fh.get_tensor(key)
        except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError, ValueError alike
            raise FormatError(f"weights file {name} is corrupt ({_first_line(exc)})") from None
    state: dict[str, Any] = {}
    parts: dict[str, list[tuple[int, Any]]] = {}
    for key, t in pieces.items():
        if _SPLIT_SEP in key:
            base, idx = key.rsplit(_SPLIT_SEP, 1)
            parts.setdefault(base, []).append((int(idx), t))
        else:
            state[key] = t
    for base, chunks in parts.items():
        flat = torch.cat([t for _, t in sorted(chunks, key=lambda c: c[0])])
        state[base] = flat.reshape(shapes[base])
    return state


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# ----------------------------------------------------------------------------- save
def save_weights(folder: Path, vae, denoiser, normalizer, config, *, latent_scale: float,
                 scheduler_config: Optional[dict] = None, training: Optional[dict] = None) -> dict:
    """Write the weights folder atomically; returns the index. Refuses a folder over 60 MiB."""
    import diffusers
    import safetensors
    import torch

    from .. import __version__
    from .pipeline import make_scheduler

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        files = {
            "vae": save_state_dict(vae.state_dict(), tmp, "vae"),
            "denoiser": save_state_dict(denoiser.state_dict(), tmp, "denoiser"),
        }
        normalizer.save(tmp / NORMALIZATION_NAME)
        listing = []
        total = 0
        for name in files["vae"] + files["denoiser"] + [NORMALIZATION_NAME]:
            size = (tmp / name).stat().st_size
            if size > MAX_FILE_BYTES:
                raise InputError(f"weights file {name} is {size} bytes, over the {MAX_FILE_BYTES} byte limit")
            total += size
            listing.append({"name": name, "bytes": size, "sha256": sha256_file(tmp / name)})
        if total > MAX_TOTAL_BYTES:
            raise InputError(f"weights total {total / 2**20:.1f} MiB, over the {MAX_TOTAL_BYTES / 2**20:.0f} MiB budget")
        sched = dict(scheduler_config or make_scheduler().config)
        index = {
            "format": INDEX_FORMAT,
            "version": INDEX_VERSION,
            "gid_version": __version__,
            "torch_version": torch.__version__,
            "diffusers_version": diffusers.__version__,
            "safetensors_version": getattr(safetensors, "__version__", "?"),
            "config": config.to_dict(),
            "latent_scale": float(latent_scale),
            "denoiser_kind": "frequency_coordinated" if hasattr(denoiser, "down_attn") else "base",
            "scheduler": {k: _jsonable(v) for k, v in sched.items() if not k.startswith("_")},
            "components": {"vae": files["vae"], "denoiser": files["denoiser"], "normalization": NORMALIZATION_NAME},
            "files": listing,
            "total_bytes": total,
            "training": training or {},
        }
        (tmp / INDEX_NAME).write_text(json.dumps(index, indent=2))
        publish_folder(tmp, folder)
        return index
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _publish_modes(folder: Path) -> None:
    """mkdtemp makes a private (0700) folder: give the shipped files the usual modes, minus umask."""
    mask = os.umask(0)
    os.umask(mask)
    folder.chmod(0o777 & ~mask)
    for f in folder.iterdir():
        f.chmod(0o666 & ~mask)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


# ----------------------------------------------------------------------------- load
def read_index(folder: Path) -> dict:
    return read_index_file(Path(folder), INDEX_NAME, INDEX_FORMAT, INDEX_VERSION,
                           ("config", "components", "files", "latent_scale"),
                           kind="motion-prior", label="weights file", model="the learned motion model",
                           versioned=f"weights in {folder} have")


def read_index_file(folder: Path, name: str, fmt: str, version: int, required: tuple[str, ...], *,
                    kind: str, label: str, model: str, versioned: str) -> dict:
    """The JSON index ``name`` of a model folder, checked for format, version and ``required``
    keys, with one-line errors: missing -> ``MissingWeightsError`` (the product works without
    the model), anything else -> ``FormatError`` naming the file. Files are verified separately.
    ``versioned``: subject and verb of the version error ("weights in DIR have")."""
    from ..predict import MissingWeightsError

    path = folder / name
    if not path.is_file():
        raise MissingWeightsError(f"{model} is not installed (no {name} in {folder})")
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FormatError(f"{label} {name} is corrupt ({_first_line(exc)})") from None
    if not isinstance(index, dict) or index.get("format") != fmt:
        raise FormatError(f"{path} is not a gid {kind} index")
    if index.get("version") != version:
        raise FormatError(f"{versioned} index version {index.get('version')}; this gid reads {version}")
    for key in required:
        if key not in index:
            raise FormatError(f"{label} {name} is corrupt (no '{key}')")
    return index


def verify_weights(folder: Path) -> dict:
    """Check every listed file's presence, size and SHA-256; returns the index."""
    folder = Path(folder)
    index = read_index(folder)
    verify_listing(folder, index["files"], "weights file")
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


def load_weights(folder: Path, device: str = "cpu"):
    """Verify and load a weights folder into a ready ``MotionPriorPipeline`` on ``device``."""
    from ..normalization import FrequencyNormalizer
    from .models import build_models
    from .models.configs import PriorConfig
    from .pipeline import MotionPriorPipeline, make_scheduler

    folder = Path(folder)
    index = verify_weights(folder)
    try:
        config = PriorConfig.from_dict(index["config"])
    except (TypeError, ValueError) as exc:
        raise FormatError(f"weights file {INDEX_NAME} has an unreadable config ({_first_line(exc)})") from None
    vae, denoiser = build_models(config, coordinated=index.get("denoiser_kind", "frequency_coordinated") != "base")
    comps = index["components"]
    for module, key in ((vae, "vae"), (denoiser, "denoiser")):
        names = comps[key]
        state = load_state_dict(folder, names)
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise FormatError(
                f"weights file {names[0]} does not match the model config in {INDEX_NAME} "
                f"({_first_line(exc)[:160]})"
            ) from None
    normalizer = FrequencyNormalizer.load(folder / comps["normalization"])
    sched = make_scheduler()
    try:
        sched = sched.from_config({**dict(sched.config), **index.get("scheduler", {})})
    except (TypeError, ValueError) as exc:
        raise FormatError(f"weights file {INDEX_NAME} has an unreadable scheduler ({_first_line(exc)})") from None
    pipe = MotionPriorPipeline(vae, denoiser, sched, normalizer, config, latent_scale=index["latent_scale"])
    return pipe.to(device)
