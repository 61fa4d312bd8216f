"""Real image–motion pairs from reference clips (paper §7 "Data").

As in the paper: every ``every``-th decoded frame is an input image, and its ground-truth
spectral volume is the motion extracted (``extract_motion``: direct coarse-to-fine flow from
that frame to every later frame of the 5 s window) from it. Only starts with a full window are
used; a clip too short for any full window contributes the starts that ``extract_motion``'s
mirror rule accepts (>= 1 s and >= 8 frames), flagged ``extra["padding"] == "mirror"``.

Extraction costs about a second per pair at 256x160, so results can be cached: one ``.npz``
per (clip content, start, size, method) under ``cache_dir``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

import numpy as np

from ....exporters.opencv import cv2
from ....gid_engine.errors import InputError
from ....gid_engine.motion.extract import DEFAULT_METHOD, MIN_FRAMES, MIN_SECONDS, extract_motion
from ....gid_engine.motion.spectral_volume import DEFAULT_FPS, DEFAULT_FRAMES, DEFAULT_K, SpectralVolume
from ....gid_engine.media.video import open_frames

CACHE_VERSION = 1


def real_pairs(
    clip_paths: Iterable[str | Path],
    every: int = 10,
    width: int = 256,
    height: int = 160,
    max_pairs: int | None = None,
    *,
    k: int = DEFAULT_K,
    method: str = DEFAULT_METHOD,
    allow_mirror: bool = False,
    cache_dir: str | Path | None = None,
) -> list[tuple[np.ndarray, SpectralVolume]]:
    """``(image, volume)`` pairs: image float32 (H, W, 3) sRGB in [0, 1] (the start frame at
    ``width x height``), volume ``extract_motion(clip, start_frame=s, resolution=(width, height))``.

    ``allow_mirror=True`` also keeps the starts near a clip's end whose window is mirrored.
    """
    if every < 1:
        raise InputError(f"every must be >= 1, got {every}")
    if max_pairs is not None and max_pairs < 0:
        raise InputError(f"max_pairs must be >= 0, got {max_pairs}")
    cache = Path(cache_dir) if cache_dir is not None else None
    out: list[tuple[np.ndarray, SpectralVolume]] = []
    for clip_path in clip_paths:
        for start in start_frames(clip_path, every, allow_mirror=allow_mirror):
            if max_pairs is not None and len(out) >= max_pairs:
                return out
            out.append(_pair(Path(clip_path), start, width, height, k, method, cache))
    return out


def start_frames(clip_path: str | Path, every: int = 10, *, allow_mirror: bool = False,
                 num_frames: int = DEFAULT_FRAMES, target_fps: float = DEFAULT_FPS) -> list[int]:
    """Decoded-frame indices 0, every, 2*every, ... that start a usable window (see module doc)."""
    clip = open_frames(clip_path)
    times = np.array([f.time for f in clip.frames(0)], dtype=np.float64)  # decodes once
    if len(times) == 0:
        raise InputError(f"{Path(clip_path).name} has no frames")
    last_sample = (num_frames - 1) / target_fps
    window = num_frames / target_fps
    candidates = list(range(0, len(times), every))
    full = [s for s in candidates
            if times[-1] - times[s] >= last_sample - 1e-6 or times[-1] - times[s] + 1 / clip.fps >= window - 1e-6]
    mirrored = [s for s in candidates if s not in full
                and times[-1] - times[s] + 1 / clip.fps >= MIN_SECONDS - 1e-6 and len(times) - s >= MIN_FRAMES]
    if allow_mirror or not full:
        return sorted(full + mirrored)
    return full


def _pair(path: Path, start: int, width: int, height: int, k: int, method: str,
          cache: Path | None) -> tuple[np.ndarray, SpectralVolume]:
    key_file = None
    if cache is not None:
        stat = path.stat()
        key = json.dumps([CACHE_VERSION, str(path.resolve()), stat.st_size, stat.st_mtime_ns,
                          start, width, height, k, method])
        key_file = cache / f"real_{path.stem}_{start:06d}_{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"
        if key_file.exists():
            try:
                with np.load(key_file, allow_pickle=False) as z:
                    meta = json.loads(str(z["meta"]))
                    vol = SpectralVolume(z["coeffs"], fps=float(meta["fps"]), num_frames=int(meta["num_frames"]),
                                         source=meta["source"], extra=meta["extra"])
                    return z["image"].astype(np.float32), vol
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache entry is recomputed
    volume = extract_motion(path, start_frame=start, resolution=(width, height), k=k, method=method)
    image = _start_image(path, start, width, height)
    if key_file is not None:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"fps": volume.fps, "num_frames": volume.num_frames, "source": volume.source,
                           "extra": volume.extra})
        tmp = key_file.with_name(f".{key_file.stem}.tmp.npz")
        np.savez(tmp, image=image, coeffs=volume.coeffs, meta=np.array(meta))
        tmp.replace(key_file)
    return image, volume


def _start_image(path: Path, start: int, width: int, height: int) -> np.ndarray:
    """Decoded frame ``start`` at ``width x height``, resampled like ``extract_motion`` does."""
    clip = open_frames(path)
    frames = clip.frames(start)
    try:
        frame = next(frames)
    except StopIteration:
        raise InputError(f"{path.name} has no frame {start}") from None
    finally:
        frames.close()
    pixels = frame.pixels[:, :, :3]
    h0, w0 = pixels.shape[:2]
    if (w0, h0) != (width, height):
        shrink = width < w0 and height < h0
        pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.ascontiguousarray(np.clip(pixels, 0.0, 1.0), dtype=np.float32)
