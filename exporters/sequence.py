"""Numbered image sequences (``prefix_0001.png`` ...) written as one all-or-nothing set.

Frames arrive lazily from the renderer and are encoded on one writer thread while the next
frame renders, so memory stays at two frames whatever the length. All names are declared before the
first frame is rendered, so an "already exists" error costs nothing; a cancel or crash midway leaves
the folder untouched.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import OutputTransaction
from .errors import ExportError
from .frames import EXR_PRECISIONS, PNG_DEPTHS, as_image, encode_frame, frame_name
from .sidecar import encode_sidecar, sidecar_document

ProgressFn = Callable[[int, int], None]


def _encode_and_stage(tx: OutputTransaction, name: str, encode: Callable[[np.ndarray], bytes],
                      image: np.ndarray) -> None:
    """Runs on the writer thread: PNG/EXR encoding releases the GIL, so it overlaps rendering."""
    tx.write_bytes(name, encode(image))


def write_frames(
    frames: Iterable[np.ndarray],
    *,
    count: int,
    out_dir: str | os.PathLike[str],
    prefix: str,
    ext: str,
    encode: Callable[[np.ndarray], bytes],
    check: Callable[[np.ndarray], np.ndarray],
    sidecar_kind: str | None,
    sidecar_params: dict[str, Any],
    sidecar_files: dict[str, Any],
    overwrite: bool,
    start: int,
    on_frame: ProgressFn | None,
) -> list[Path]:
    """Shared engine of image and displacement sequences: validate, encode, stage, commit."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ExportError(f"frame count must be a positive integer, got {count!r}")
    if not prefix:
        raise ExportError("file name prefix must not be empty")
    names = [frame_name(prefix, i, ext, start=start) for i in range(count)]
    sidecar_name = f"{prefix}.json" if sidecar_kind else None
    with OutputTransaction(out_dir, overwrite) as tx, ThreadPoolExecutor(max_workers=1) as pool:
        tx.declare(names + ([sidecar_name] if sidecar_name else []))
        first_shape: tuple[int, ...] | None = None
        done = 0
        pending: Future[None] | None = None  # frame i is encoded while frame i+1 is rendered
        try:
            for frame in frames:
                if done == count:
                    raise ExportError(f"got more frames than the declared count of {count}")
                image = check(frame)
                if first_shape is None:
                    first_shape = image.shape
                elif image.shape != first_shape:
                    raise ExportError(f"frame {done + 1} has shape {image.shape}, frame 1 had {first_shape}")
                if pending is not None:
                    pending.result()  # at most one frame in flight: memory stays at two frames
                pending = pool.submit(_encode_and_stage, tx, names[done], encode, image)
                done += 1
                if on_frame is not None:
                    on_frame(done, count)  # may raise to cancel; the transaction then discards everything
            if pending is not None:
                pending.result()
        finally:
            if pending is not None and not pending.done():
                pending.exception()  # let the staged write finish before the transaction cleans up
        if done != count:
            raise ExportError(f"got {done} frames, expected {count}")
        if sidecar_name:
            assert first_shape is not None
            files = {"pattern": f"{prefix}_####.{ext}", "first": names[0], "last": names[-1], "count": count,
                     "start": start, "width": first_shape[1], "height": first_shape[0], **sidecar_files}
            tx.write_bytes(sidecar_name, encode_sidecar(sidecar_document(sidecar_kind, sidecar_params, files)))
    return tx.written


def write_image_sequence(
    frames: Iterable[np.ndarray],
    out_dir: str | os.PathLike[str],
    prefix: str,
    *,
    count: int,
    fmt: str = "png",
    depth: int | str | None = None,
    source_linear: bool = False,
    overwrite: bool = False,
    start: int = 1,
    sidecar: dict[str, Any] | None = None,
    on_frame: ProgressFn | None = None,
) -> list[Path]:
    """Write ``count`` HxWxC float frames as ``prefix_0001.<fmt>`` ... (+ ``prefix.json`` if ``sidecar``).

    ``depth``: 8/16 for PNG (default 8), "half"/"float" for EXR (default "half"). ``source_linear``
    says whether the pixels are linear; PNGs are written sRGB, EXRs linear. ``on_frame(done, count)``
    is called after each frame (done = 1..count). Returns the final paths, sidecar last.
    """
    if fmt not in ("png", "exr"):
        raise ExportError(f"unknown image format {fmt!r}; use 'png' or 'exr'")
    if depth is None:
        depth = 8 if fmt == "png" else "half"
    allowed = PNG_DEPTHS if fmt == "png" else EXR_PRECISIONS
    if depth not in allowed:
        raise ExportError(f"{fmt.upper()} depth must be one of {allowed}, got {depth!r}")
    channels = (1, 3, 4) if fmt == "png" else (1, 2, 3, 4)
    return write_frames(
        frames, count=count, out_dir=out_dir, prefix=prefix, ext=fmt,
        encode=lambda img: encode_frame(img, fmt, depth, source_linear),
        check=lambda frame: as_image(frame, channels),
        sidecar_kind="image_sequence" if sidecar is not None else None,
        sidecar_params=sidecar or {},
        sidecar_files={"format": fmt, "depth": depth, "colorspace": "sRGB" if fmt == "png" else "linear"},
        overwrite=overwrite, start=start, on_frame=on_frame,
    )
