"""Simulated data on disk: one compressed ``.npz`` shard per scene (at most 16 MiB, so shards
travel), named by split and scene seed, written atomically; a folder of them is resumable (a shard
that exists and reads is never made again) and needs no manifest to be read.

A shard holds the scene's usable camera views:

* ``images`` ``(N, H, W, 3)`` uint8 sRGB: frame 0, the still;
* ``volumes`` ``(N, K, 4, H, W)`` int8 and ``scales`` ``(N, K, 4)`` float32: the exact spectral
  volume in pixels is ``volumes * scales[..., None, None]`` (per-bin, per-channel quantisation:
  the error is at most half a step, ``max |S_k| / 254``);
* ``targets`` ``(N, H, W, 3)`` uint8, ``flows`` ``(N, 2, H, W)`` float16 px, ``target_frames``
  ``(N,)`` int16: the renderer triples (frame ``t`` and the exact forward motion from frame 0 to
  it); ``target_frames == -1`` where a view has none;
* ``meta``: JSON (scene kind, seed, split, cameras, gains, the scene's provenance).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ...gid_engine.errors import FormatError, InputError
from ...gid_engine.motion.spectral_volume import SpectralVolume

SHARD_FORMAT = "gid.simdata"
SHARD_VERSION = 1
MAX_SHARD_BYTES = 16 * 1024 * 1024


@dataclass
class View:
    """One camera view of a scene: the still, its exact volume, and optionally a renderer triple."""

    image: np.ndarray  # (H, W, 3) float32 [0, 1]
    volume: SpectralVolume
    target: np.ndarray | None = None  # (H, W, 3) float32 [0, 1]: frame target_frame
    flow: np.ndarray | None = None  # (2, H, W) float32 px: exact motion frame 0 -> target_frame
    target_frame: int = -1
    info: dict[str, Any] | None = None


def shard_name(split: str, seed: int) -> str:
    return f"{split}_{seed:08d}.npz"


def quantize(coeffs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(int8 values, float32 scales (K, 4))`` of a ``(K, 4, H, W)`` volume."""
    peak = np.abs(coeffs).max(axis=(2, 3))
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.rint(coeffs / scales[:, :, None, None])
    return np.clip(q, -127, 127).astype(np.int8), scales


def write_shard(path: Path, views: list[View], meta: dict[str, Any], *, size: tuple[int, int], k: int,
                fps: float, num_frames: int) -> Path:
    """Write ``views`` (possibly none: a scene no camera saw moving is recorded as done) to ``path``
    atomically; ``size`` is ``(width, height)``. Raises ``InputError`` when the shard would pass 16 MiB."""
    w, h = size
    n = len(views)
    vols = np.empty((n, k, 4, h, w), np.int8)
    scales = np.empty((n, k, 4), np.float32)
    targets = np.zeros((n, h, w, 3), np.uint8)
    flows = np.zeros((n, 2, h, w), np.float16)
    frames = np.full(n, -1, np.int16)
    for i, v in enumerate(views):
        vols[i], scales[i] = quantize(v.volume.coeffs)
        if v.target is not None and v.flow is not None:
            targets[i] = _u8(v.target)
            flows[i] = v.flow.astype(np.float16)
            frames[i] = v.target_frame
    images = np.zeros((n, h, w, 3), np.uint8)
    for i, v in enumerate(views):
        images[i] = _u8(v.image)
    doc = dict(meta, format=SHARD_FORMAT, version=SHARD_VERSION, fps=fps, num_frames=num_frames,
               views=[v.info or {} for v in views])
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, images=images, volumes=vols, scales=scales, targets=targets, flows=flows,
                        target_frames=frames, meta=np.array(json.dumps(doc)))
    size = tmp.stat().st_size
    if size > MAX_SHARD_BYTES:
        tmp.unlink()
        raise InputError(f"{path.name}: {size / 2**20:.1f} MiB is over the 16 MiB a shard may hold; use fewer cameras")
    tmp.replace(path)
    return path


def _u8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(image, np.float32) * 255.0), 0, 255).astype(np.uint8)


@dataclass
class Shard:
    """A read shard (see the module doc); ``volume(i)`` de-quantises view ``i``."""

    images: np.ndarray
    volumes: np.ndarray
    scales: np.ndarray
    targets: np.ndarray
    flows: np.ndarray
    target_frames: np.ndarray
    meta: dict[str, Any]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def image(self, i: int) -> np.ndarray:
        return self.images[i].astype(np.float32) / 255.0

    def coeffs(self, i: int) -> np.ndarray:
        return self.volumes[i].astype(np.float32) * self.scales[i][:, :, None, None]

    def volume(self, i: int) -> SpectralVolume:
        return SpectralVolume(self.coeffs(i), fps=float(self.meta["fps"]), num_frames=int(self.meta["num_frames"]),
                              source="simulated", extra={"scene": self.meta.get("seed"), "view": i})

    def triples(self) -> Iterator[int]:
        return iter(np.nonzero(self.target_frames >= 0)[0].tolist())


def _load(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Arrays ``names`` of the shard at ``path`` (an ``.npz`` reads each array only when asked for it);
    a missing, truncated or foreign file is a one-line ``InputError``/``FormatError``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {name: z[name] for name in names}
    except FileNotFoundError:
        raise InputError(f"shard not found: {path}") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise FormatError(f"cannot read shard {path}: {exc}") from None


def read_shard(path: Path) -> Shard:
    """Read one shard; a missing, truncated or foreign file is a one-line ``FormatError``/``InputError``."""
    arrays = _load(path, ("images", "volumes", "scales", "targets", "flows", "target_frames", "meta"))
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except ValueError as exc:
        raise FormatError(f"cannot read shard {path}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != SHARD_FORMAT:
        raise FormatError(f"{path}: not a gid simulated-data shard")
    n = len(arrays["images"])
    if any(len(a) != n for a in arrays.values()):
        raise FormatError(f"{path}: inconsistent shard arrays")
    return Shard(meta=meta, **arrays)


def shard_length(path: Path) -> int:
    """How many views a shard holds, reading only its smallest array (not its images and volumes)."""
    return len(_load(path, ("target_frames",))["target_frames"])


def shard_paths(folder: Path, split: str | None = None) -> list[Path]:
    """The shards in ``folder`` (of ``split`` when given), in seed order."""
    pattern = f"{split}_*.npz" if split else "*_*.npz"
    return sorted(p for p in Path(folder).glob(pattern) if not p.name.startswith("."))
