"""Reading still images of every kind artists have, and resampling channel stacks.

Why not just ``cv2.imread``: it silently drops alpha, returns BGR, refuses non-ASCII paths
on some platforms and returns ``None`` instead of saying what is wrong. Here every failure is
an ``InputError`` with one line, and the result always has the same shape and dtype.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..exporters.atomic import protect_input
from ..exporters.opencv import cv2

from .errors import InputError  # noqa: E402

# A 16K x 16K image is 268 Mpixels; float32 RGBA of that is 4 GiB. Refuse above this many pixels.
MAX_IMAGE_PIXELS = 16384 * 16384
_FLOAT_EXTENSIONS = {".exr", ".hdr", ".pfm"}


@dataclass(frozen=True)
class LoadedImage:
    """Pixels as ``(H, W, C)`` float32, C = 3 (RGB) or 4 (RGBA), channels in RGB order.

    ``linear`` is True for scene-linear sources (EXR/HDR), False for display-encoded (sRGB)
    ones; exporters convert when the target file expects the other. ``bit_depth`` is 8, 16 or
    32 (float) and is kept so outputs can match the input's precision.
    """

    pixels: np.ndarray
    linear: bool
    bit_depth: int
    path: str = ""

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def has_alpha(self) -> bool:
        return self.pixels.shape[2] == 4


def load_image(path: str | os.PathLike[str], max_pixels: int = MAX_IMAGE_PIXELS) -> LoadedImage:
    """Read an image file into a ``LoadedImage``; every failure is a one-line ``InputError``."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"image not found: {p}")
    if p.is_dir():
        raise InputError(f"expected an image file, got a folder: {p}")
    size = p.stat().st_size
    if size == 0:
        raise InputError(f"image file is empty: {p}")
    protect_input(p)  # no output of the same job may replace it
    data = np.fromfile(str(p), dtype=np.uint8)
    return decode_image(data, name=str(p), max_pixels=max_pixels)


def decode_image(data: np.ndarray | bytes, name: str = "image", max_pixels: int = MAX_IMAGE_PIXELS) -> LoadedImage:
    """Decode encoded image bytes (PNG, JPEG, TIFF, EXR, ...) into a ``LoadedImage``."""
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else data
    _check_header_size(buf, name, max_pixels)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # OpenCV raises for over-limit sizes and some corrupt files
        raise InputError(f"cannot decode image {name}: {str(exc).strip().splitlines()[-1]}") from None
    if img is None or img.size == 0:
        raise InputError(f"cannot decode image {name}: not an image or the file is corrupt/truncated")
    return from_array(img, name=name, bgr=True, linear=Path(name).suffix.lower() in _FLOAT_EXTENSIONS)


def from_array(
    img: np.ndarray, name: str = "array", bgr: bool = False, linear: bool | None = None
) -> LoadedImage:
    """Normalise any ``(H, W)`` / ``(H, W, C)`` uint8/uint16/float array into a ``LoadedImage``."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise InputError(f"{name}: expected an (H, W[, C]) image, got shape {img.shape}")
    if img.shape[0] * img.shape[1] > MAX_IMAGE_PIXELS:
        raise InputError(f"{name}: {img.shape[1]}x{img.shape[0]} is larger than gid accepts")
    if img.dtype == np.uint8:
        pixels, depth = img.astype(np.float32) / 255.0, 8
    elif img.dtype == np.uint16:
        pixels, depth = img.astype(np.float32) / 65535.0, 16
    elif img.dtype in (np.float16, np.float32, np.float64):
        pixels, depth = img.astype(np.float32), 32
        if not np.isfinite(pixels).all():
            raise InputError(f"{name}: image contains NaN or infinite values")
    else:
        raise InputError(f"{name}: unsupported pixel type {img.dtype}")
    channels = pixels.shape[2]
    if channels == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    elif channels == 2:  # gray + alpha
        pixels = np.concatenate([np.repeat(pixels[:, :, :1], 3, axis=2), pixels[:, :, 1:]], axis=2)
    elif channels in (3, 4):
        if bgr:
            pixels = pixels[:, :, [2, 1, 0, 3][:channels]]
    else:
        raise InputError(f"{name}: unsupported number of channels {channels}")
    is_linear = (depth == 32) if linear is None else linear
    return LoadedImage(np.ascontiguousarray(pixels), linear=bool(is_linear), bit_depth=depth, path=name)


def _check_header_size(buf: np.ndarray, name: str, max_pixels: int) -> None:
    """Refuse huge images before decoding them (a 16K x 16K PNG would take GiBs to decode)."""
    head = bytes(buf[:32])
    width = height = None
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if width is None:
        try:
            from PIL import Image  # Pillow reads only the header here

            import io

            with Image.open(io.BytesIO(bytes(buf[: 1 << 20]))) as im:
                width, height = im.size
        except Exception:  # not a format Pillow knows (EXR) or a truncated header: cv2 decides
            return
    if width * height > max_pixels:
        raise InputError(f"image {name} is {width}x{height}; gid accepts at most {max_pixels} pixels")


def resize_channels(planes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a ``(C, H, W)`` float stack: area-averaging when shrinking, bilinear when growing."""
    c, h, w = planes.shape
    interp = cv2.INTER_AREA if (width < w and height < h) else cv2.INTER_LINEAR
    out = np.empty((c, height, width), dtype=np.float32)
    hwc = np.ascontiguousarray(planes.transpose(1, 2, 0), dtype=np.float32)
    for start in range(0, c, 256):  # cv2.resize takes at most 512 channels
        chunk = cv2.resize(hwc[:, :, start : start + 256], (width, height), interpolation=interp)
        out[start : start + 256] = chunk.reshape(height, width, -1).transpose(2, 0, 1)
    return out


def luma(pixels: np.ndarray) -> np.ndarray:
    """(H, W) float32 Rec. 601 luma of an (H, W), (H, W, 1) or (H, W, 3+) image (alpha ignored)."""
    if pixels.ndim == 3 and pixels.shape[2] >= 3:
        return pixels[:, :, :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.asarray(pixels if pixels.ndim == 2 else pixels[:, :, 0], dtype=np.float32)


def to_gray_u8(pixels: np.ndarray) -> np.ndarray:
    """Luma as uint8, for optical flow (DIS takes 8-bit single-channel images)."""
    return np.clip(luma(pixels) * 255.0 + 0.5, 0, 255).astype(np.uint8)
