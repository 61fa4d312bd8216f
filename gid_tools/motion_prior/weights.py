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

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

from ...gid_engine.errors import FormatError, InputError
from ...gid_engine.model_folder import (MOTION_PRIOR, first_line, jsonable, list_files, make_index, publish_folder,
                                        read_index as read_model_index, write_index)

INDEX_NAME = MOTION_PRIOR.index_name
NORMALIZATION_NAME = "normalization.json"
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_TOTAL_BYTES = 60 * 1024 * 1024
_SHARD_BUDGET = MAX_FILE_BYTES - 256 * 1024  # room for the safetensors header
_SPLIT_SEP = "@@part"


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
        except Exception as exc:
            raise FormatError(f"weights file {name} is corrupt ({first_line(exc)})") from None
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


# ----------------------------------------------------------------------------- save
def save_weights(folder: Path, vae, denoiser, normalizer, config, *, latent_scale: float,
                 scheduler_config: Optional[dict] = None, training: Optional[dict] = None) -> dict:
    """Write the weights folder atomically; returns the index. Refuses a folder over 60 MiB."""
    import diffusers
    import safetensors
    import torch

    from ...gid_engine import __version__
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
        listing = list_files(tmp, files["vae"] + files["denoiser"] + [NORMALIZATION_NAME], MOTION_PRIOR,
                             MAX_FILE_BYTES)
        total = sum(e["bytes"] for e in listing)
        if total > MAX_TOTAL_BYTES:
            raise InputError(f"weights total {total / 2**20:.1f} MiB, "
                             f"over the {MAX_TOTAL_BYTES / 2**20:.0f} MiB budget")
        sched = dict(scheduler_config or make_scheduler().config)
        static = getattr(denoiser, "has_static_field", False)
        capabilities = ["sample", "torch_weights"] + (["eulerian_start"] if static else [])
        index = make_index(
            MOTION_PRIOR, capabilities, listing,
            gid_version=__version__,
            torch_version=torch.__version__,
            diffusers_version=diffusers.__version__,
            safetensors_version=getattr(safetensors, "__version__", "?"),
            config=config.to_dict(),
            latent_scale=float(latent_scale),
            denoiser_kind="frequency_coordinated" if hasattr(denoiser, "down_attn") else "base",
            scheduler={k: jsonable(v) for k, v in sched.items() if not k.startswith("_")},
            components={"vae": files["vae"], "denoiser": files["denoiser"], "normalization": NORMALIZATION_NAME},
            training=training or {},
        )
        write_index(tmp, MOTION_PRIOR, index)
        publish_folder(tmp, folder)
        return index
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ----------------------------------------------------------------------------- load
def read_index(folder: Path) -> dict:
    """``model_index.json`` of ``folder``, checked for format, version and keys (files not verified)."""
    return read_model_index(Path(folder), MOTION_PRIOR, verify=False)


def verify_weights(folder: Path) -> dict:
    """The index of ``folder`` after checking every listed file's presence, size and SHA-256."""
    return read_model_index(Path(folder), MOTION_PRIOR)


def load_weights(folder: Path, device: str = "cpu"):
    """Verify and load a weights folder into a ready ``MotionPriorPipeline`` on ``device``."""
    from ...gid_engine.motion.normalization import FrequencyNormalizer
    from .models import build_models
    from .models.configs import PriorConfig
    from .pipeline import MotionPriorPipeline, make_scheduler

    folder = Path(folder)
    index = verify_weights(folder)
    try:
        config = PriorConfig.from_dict(index["config"])
    except (TypeError, ValueError) as exc:
        raise FormatError(f"weights file {INDEX_NAME} has an unreadable config ({first_line(exc)})") from None
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
                f"({first_line(exc)[:160]})"
            ) from None
    normalizer = FrequencyNormalizer.load(folder / comps["normalization"])
    sched = make_scheduler()
    try:
        sched = sched.from_config({**dict(sched.config), **index.get("scheduler", {})})
    except (TypeError, ValueError) as exc:
        raise FormatError(f"weights file {INDEX_NAME} has an unreadable scheduler ({first_line(exc)})") from None
    pipe = MotionPriorPipeline(vae, denoiser, sched, normalizer, config, latent_scale=index["latent_scale"])
    return pipe.to(device)
