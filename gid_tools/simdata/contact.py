"""A contact sheet of simulated views: each still beside its motion-magnitude map (the mean
displacement over the window, the quantity the prior learns to place), so anyone can see what the
model learns from."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...exporters.opencv import cv2
from ...gid_engine.errors import InputError
from .shards import read_shard, shard_paths


def magnitude_image(magnitude: np.ndarray, top: float) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB heat map of ``magnitude`` scaled so ``top`` px is the brightest."""
    u8 = np.clip(magnitude / max(top, 1e-6) * 255.0, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(u8, cv2.COLORMAP_INFERNO)[:, :, ::-1]


def contact_sheet(folder: Path, target: Path, *, split: str = "train", count: int = 24, columns: int = 4) -> Path:
    """Draw up to ``count`` views of ``folder``'s shards (one per scene first, in seed order) into ``target``."""
    tiles = []
    for path in shard_paths(folder, split):
        shard = read_shard(path)
        for i in range(min(len(shard), 1)):
            vol = shard.volume(i)
            mag = vol.mean_magnitude(samples=30)
            still = (shard.image(i) * 255).astype(np.uint8)
            heat = magnitude_image(mag, float(np.percentile(mag, 99.5)))
            tile = np.concatenate([still, heat], axis=1)
            label = f"{shard.meta['kind']} #{shard.meta['seed']}  p99 {np.percentile(mag, 99):.1f}px"
            cv2.putText(tile, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(tile)
        if len(tiles) >= count:
            break
    if not tiles:
        raise InputError(f"no {split} shards in {folder}")
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    sheet = np.zeros((rows * (h + 4), columns * (w + 4), 3), np.uint8)
    for n, tile in enumerate(tiles):
        r, c = divmod(n, columns)
        sheet[r * (h + 4): r * (h + 4) + h, c * (w + 4): c * (w + 4) + w] = tile
    target.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(target.suffix or ".jpg", sheet[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise InputError(f"cannot encode {target.name}")
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data.tobytes())
    tmp.replace(target)
    return target
