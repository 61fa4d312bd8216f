"""Synthetic pairs written to ``.npz`` shards by a process pool, for training from files.

Each shard ``shard_NNNNN.npz`` holds ``images`` (N, H, W, 3) float16 sRGB in [0, 1], ``volumes``
(N, K, 4, H, W) float16 (pixels; ~5.2 MB a pair at 256x160, K=16: budget the disk) and
``indices`` (N,) int64: pair ``indices[i]`` is exactly ``synthetic_pair(indices[i], seed=seed,
split=split, ...)`` rounded to float16. ``manifest.json`` records the settings and the shards.

Each worker writes its own shards (no arrays cross process boundaries); the output depends only
on the arguments, not on ``workers``.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

import numpy as np

from ....gid_engine.errors import FormatError, InputError
from ....gid_engine.motion.spectral_volume import DEFAULT_FPS, DEFAULT_FRAMES, DEFAULT_K

MANIFEST_FORMAT = "gid.motion_pairs"
MANIFEST_VERSION = 1
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def generate_shards(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    workers: int = 2,
    *,
    split: str = "train",
    width: int = 256,
    height: int = 160,
    k: int = DEFAULT_K,
    shard_size: int = 256,
    start_index: int = 0,
) -> list[Path]:
    """Write pairs ``start_index .. start_index + n - 1`` to shards under ``out_dir``; returns
    the shard paths (in index order). ``workers <= 1`` runs in this process."""
    if n < 0 or shard_size < 1 or workers < 0 or start_index < 0:
        raise InputError(f"bad shard request: n={n}, shard_size={shard_size}, workers={workers}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for number, first in enumerate(range(start_index, start_index + n, shard_size)):
        count = min(shard_size, start_index + n - first)
        jobs.append((str(out / f"shard_{number:05d}.npz"), first, count, seed, split, width, height, k))
    if workers <= 1 or len(jobs) <= 1:
        paths = [_write_shard(*job) for job in jobs]
    else:
        with single_threaded_children(), ProcessPoolExecutor(
            max_workers=min(workers, len(jobs)), mp_context=get_context("spawn"), initializer=_init_worker
        ) as pool:
            paths = list(pool.map(_write_shard, *zip(*jobs)))
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "seed": int(seed),
        "split": split,
        "width": int(width),
        "height": int(height),
        "K": int(k),
        "fps": DEFAULT_FPS,
        "num_frames": DEFAULT_FRAMES,
        "count": int(n),
        "start_index": int(start_index),
        "layout": {"images": "N,H,W,3 float16 sRGB [0,1]",
                   "volumes": "N,K,4,H,W float16 px: Re dx, Im dx, Re dy, Im dy", "indices": "N int64"},
        "shards": [{"file": Path(p).name, "first": job[1], "count": job[2]} for p, job in zip(paths, jobs)],
    }
    tmp = out / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(out / "manifest.json")
    return [Path(p) for p in paths]


def read_shard(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images, volumes, indices)`` of one shard, as stored (float16, float16, int64)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            images, volumes, indices = z["images"], z["volumes"], z["indices"]
    except FileNotFoundError:
        raise InputError(f"shard not found: {path}") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise FormatError(f"cannot read shard {path}: {exc}") from None
    if images.ndim != 4 or volumes.ndim != 5 or len(images) != len(volumes) or len(indices) != len(images):
        raise FormatError(f"{path}: inconsistent shard arrays")
    return images, volumes, indices


# ----------------------------------------------------------------------------- workers
def _write_shard(path: str, first: int, count: int, seed: int, split: str, width: int, height: int,
                 k: int) -> str:
    from .synthetic import synthetic_pair

    images = np.empty((count, height, width, 3), dtype=np.float16)
    volumes = np.empty((count, k, 4, height, width), dtype=np.float16)
    indices = np.arange(first, first + count, dtype=np.int64)
    for i, index in enumerate(indices):
        image, volume = synthetic_pair(int(index), seed=seed, split=split, width=width, height=height, k=k)
        images[i] = image
        volumes[i] = volume.coeffs
    target = Path(path)
    tmp = target.with_name(f".{target.stem}.tmp.npz")
    np.savez(tmp, images=images, volumes=volumes, indices=indices)
    tmp.replace(target)
    return str(target)


def _init_worker() -> None:
    from ....exporters.opencv import cv2

    cv2.setNumThreads(1)  # one process per core: no oversubscription
    exit_with_parent()


def exit_with_parent(poll_s: float = 1.0) -> None:
    """Make this worker process end when the process that started it is gone.

    A pool's workers outlive a parent killed by a signal it cannot clean up after (``kill``, the
    OOM killer, a closed session): they would go on making queued items on every core, unseen, for
    as long as their queue lasts. A daemon thread notices the parent's death (the worker is handed
    to another parent, so ``getppid`` changes) and ends the worker at once."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@contextmanager
def single_threaded_children() -> Iterator[None]:
    """Spawned workers inherit the environment: make their BLAS single-threaded."""
    saved = {name: os.environ.get(name) for name in _THREAD_VARS}
    try:
        for name in _THREAD_VARS:
            os.environ[name] = "1"
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
