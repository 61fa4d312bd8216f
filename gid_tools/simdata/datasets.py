"""Simulated shards as training and evaluation data (bpy-free): prior pairs (still, exact volume)
and renderer stacks (still, exact forward flow, softmax weights, later frame)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from ...gid_engine.errors import InputError
from ...gid_engine.motion.spectral_volume import SpectralVolume
from .shards import Shard, read_shard, shard_length, shard_paths


class SimViews:
    """Every view of the ``split`` shards in ``folders``, addressable by one index (shards are read
    on demand, a few kept open), so a training cache can draw any of them without holding all."""

    def __init__(self, folders: Sequence[str | Path], split: str = "train") -> None:
        self.entries: list[tuple[Path, int]] = []
        for folder in folders:
            paths = shard_paths(Path(folder), split)
            if not paths:
                raise InputError(f"no simulated {split} shards in {folder} (make them with gid make-data)")
            for path in paths:
                n = shard_length(path)
                self.entries += [(path, i) for i in range(n)]
        if not self.entries:
            raise InputError(f"the simulated {split} shards in {', '.join(map(str, folders))} hold no views")

    def __len__(self) -> int:
        return len(self.entries)

    def pair(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """``(image (H, W, 3) float32 [0, 1], coeffs (K, 4, H, W) float32 px)`` of view ``j``."""
        path, i = self.entries[j]
        shard = _read(path)
        return shard.image(i), shard.coeffs(i)

    def view(self, j: int) -> tuple[np.ndarray, SpectralVolume]:
        """``(image (H, W, 3) float32 [0, 1], exact volume)`` of view ``j``."""
        path, i = self.entries[j]
        shard = _read(path)
        return shard.image(i), shard.volume(i)

    def key(self) -> str:
        """A digest of which shards (by name and size) the views come from."""
        h = hashlib.sha256()
        for path in sorted({p for p, _ in self.entries}):
            h.update(f"{path.name}:{path.stat().st_size};".encode())
        return h.hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _read(path: Path) -> Shard:
    return read_shard(path)


def sim_pairs(folder: str | Path, split: str = "eval", limit: int | None = None
              ) -> list[tuple[np.ndarray, SpectralVolume]]:
    """Up to ``limit`` views of ``folder``'s ``split`` shards as ``(image, volume)`` pairs, spread over
    the scenes: every scene's first view (in seed order), then every scene's second, and so on."""
    shards = [read_shard(path) for path in shard_paths(Path(folder), split)]
    out: list[tuple[np.ndarray, SpectralVolume]] = []
    for rank in range(max((len(s) for s in shards), default=0)):
        for shard in shards:
            if rank < len(shard) and (limit is None or len(out) < limit):
                out.append((shard.image(rank), shard.volume(rank)))
    if not out:
        raise InputError(f"no simulated {split} views in {folder} (make them with gid make-data --split {split})")
    return out


def held_out_label(base: str, folders: Sequence[str | Path], folder: str | Path) -> str:
    """The row name of ``folder``'s held-out scenes in an evaluation over ``folders``: ``base`` alone
    for one folder (the name earlier tables used), ``base: <folder name>`` once there are several."""
    return base if len(folders) == 1 else f"{base}: {Path(folder).name}"


def sim_triple_stacks(folder: str | Path, split: str = "train", limit: int | None = None) -> np.ndarray:
    """``(N, 9, H, W)`` float32 renderer stacks (image, flow, W, target) of the views with a later frame;
    ``W`` is the exact volume's mean displacement, as the engine weights the splat."""
    rows = []
    for path in shard_paths(Path(folder), split):
        shard = read_shard(path)
        for i in shard.triples():
            if limit is not None and len(rows) >= limit:
                break
            z = shard.volume(i).mean_magnitude()[None]
            rows.append(np.concatenate([shard.image(i).transpose(2, 0, 1), shard.flows[i].astype(np.float32), z,
                                        (shard.targets[i].astype(np.float32) / 255.0).transpose(2, 0, 1)]))
    if not rows:
        raise InputError(f"no simulated {split} renderer triples in {folder}")
    return np.stack(rows).astype(np.float32)


def sim_triple_kinds(folder: str | Path, split: str = "train") -> list[str]:
    """The scene kind (tree, grass, water, flag, candle) of each of ``sim_triple_stacks``' rows, in its order."""
    return [shard.meta["kind"] for shard in map(read_shard, shard_paths(Path(folder), split)) for _ in shard.triples()]
