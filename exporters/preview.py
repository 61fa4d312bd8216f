"""Preview videos: MP4 (OpenCV, 'mp4v') and GIF (Pillow), both sRGB, both all-or-nothing.

The MP4 is encoded into a hidden temp file next to the target (``VideoWriter`` needs a path, and
the same folder keeps ``os.replace`` atomic) and moved in at the end. Odd sizes are padded by edge
replication because many codecs need even width and height. The GIF is downscaled to
``max_width`` (GIFs are for quick looks, and full-size ones get huge) and built in memory.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from .opencv import cv2
import numpy as np

from .atomic import (
    atomic_write_bytes, check_overwrite, ensure_folder, os_error_to_export, remove_created_folders, remove_quietly,
    temp_sibling,
)
from .errors import ExportError
from .frames import as_image, quantize

ProgressFn = Callable[[int, int], None]


def _check_args(fps: float, count: int) -> None:
    if not fps > 0:
        raise ExportError(f"fps must be positive, got {fps!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ExportError(f"frame count must be a positive integer, got {count!r}")


def _rgb8(frame: np.ndarray, index: int, shape: tuple[int, ...] | None) -> np.ndarray:
    """Validate an HxWx3 float sRGB frame (same shape as the first) and quantise it to uint8."""
    img = as_image(frame, (3,))
    if shape is not None and img.shape != shape:
        raise ExportError(f"frame {index + 1} has shape {img.shape}, frame 1 had {shape}")
    return quantize(img, 8)


def _counted(frames: Iterable[np.ndarray], count: int, on_frame: ProgressFn | None) -> Iterable[tuple[int, np.ndarray]]:
    """Yield (index, frame), enforce exactly ``count`` frames, report progress after each."""
    done = 0
    for frame in frames:
        if done == count:
            raise ExportError(f"got more frames than the declared count of {count}")
        yield done, frame
        done += 1
        if on_frame is not None:
            on_frame(done, count)
    if done != count:
        raise ExportError(f"got {done} frames, expected {count}")


def write_mp4(
    frames: Iterable[np.ndarray], path: str | os.PathLike[str], fps: float, count: int,
    overwrite: bool = False, on_frame: ProgressFn | None = None,
) -> Path:
    """Encode ``count`` HxWx3 float [0, 1] sRGB frames into an MP4 (mp4v) at ``path``."""
    path = Path(path)
    _check_args(fps, count)
    check_overwrite(path, overwrite)
    created = ensure_folder(path.parent)
    tmp = temp_sibling(path, ".mp4")  # the suffix tells OpenCV which container to write
    writer: cv2.VideoWriter | None = None
    shape: tuple[int, ...] | None = None
    try:
        for i, frame in _counted(frames, count, on_frame):
            img = _rgb8(frame, i, shape)
            if writer is None:
                # an unwritable folder fails here with its reason; OpenCV only says "not opened"
                open(tmp, "xb").close()
                shape = img.shape
                h, w = img.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w + w % 2, h + h % 2))
                if not writer.isOpened():
                    raise ExportError(f"OpenCV could not open an MP4 (mp4v) encoder for {path}")
            img = np.pad(img, ((0, img.shape[0] % 2), (0, img.shape[1] % 2), (0, 0)), mode="edge")
            writer.write(np.ascontiguousarray(img[:, :, ::-1]))
        assert writer is not None  # count >= 1 guarantees one frame
        writer.release()
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise ExportError(f"the MP4 encoder wrote nothing for {path} (disk full?)")
        check_overwrite(path, overwrite)
        os.replace(tmp, path)
    except BaseException as exc:
        if writer is not None:
            writer.release()  # close the file before removing it
        remove_quietly(tmp)
        remove_created_folders(created)
        if isinstance(exc, OSError):
            raise os_error_to_export(exc, path) from None
        raise
    return path


def write_gif(
    frames: Iterable[np.ndarray], path: str | os.PathLike[str], fps: float, count: int,
    overwrite: bool = False, on_frame: ProgressFn | None = None, max_width: int = 480,
) -> Path:
    """Encode ``count`` HxWx3 float [0, 1] sRGB frames into a looping GIF, at most ``max_width`` wide.

    Note: Pillow merges consecutive identical frames into one longer frame (timing is kept).
    Pillow is imported here, not at module level: inside Blender (no Pillow) only GIFs need it.
    """
    from PIL import Image

    path = Path(path)
    _check_args(fps, count)
    check_overwrite(path, overwrite)  # fail before rendering anything
    images: list["Image.Image"] = []
    shape: tuple[int, ...] | None = None
    for i, frame in _counted(frames, count, on_frame):
        img = _rgb8(frame, i, shape)
        shape = img.shape
        pil = Image.fromarray(img, "RGB")
        if pil.width > max_width:
            pil = pil.resize((max_width, max(1, round(pil.height * max_width / pil.width))), Image.LANCZOS)
        images.append(pil)
    buf = io.BytesIO()
    try:
        images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], loop=0,
                       duration=max(10, round(1000 / fps)))
    except (OSError, ValueError) as exc:
        raise ExportError(f"Pillow could not encode the GIF: {exc}") from None
    return atomic_write_bytes(path, buf.getvalue(), overwrite)
