"""Reading still images of every kind artists have, and resampling channel stacks.

Why not just ``cv2.imread``: it silently drops alpha, returns BGR, refuses non-ASCII paths
on some platforms and returns ``None`` instead of saying what is wrong. Here every failure is
an ``InputError`` with one line, and the result always has the same shape and dtype.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ...exporters.atomic import protect_input
from ...exporters.opencv import cv2

from ..budget import check_memory, decode_bytes
from ..errors import InputError

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
    """Read an image file into a ``LoadedImage`` (pixels, colour space, bit depth).

    The header is read first, so an image over ``max_pixels`` or the memory budget is refused
    before it is decoded.

    Args:
        path: the image file (PNG, JPEG, EXR, TIFF, WebP, BMP, GIF: its first frame).
        max_pixels: the largest image accepted.

    Returns:
        The decoded image.

    Raises:
        InputError: missing, empty, not a regular file, not an image or too large (one line).
    """
    p = Path(path)
    size = regular_file_size(p, "image")
    if size == 0:
        raise InputError(f"image file is empty: {p}")
    protect_input(p)  # no output of the same job may replace it
    with open(p, "rb") as f:  # the header first: a huge image is refused before it is read whole
        dims = header_size(f.read(HEADER_BYTES))
    _check_dimensions(dims, str(p), max_pixels, size)
    data = np.fromfile(str(p), dtype=np.uint8)
    return decode_image(data, name=str(p), max_pixels=max_pixels)


def regular_file_size(p: Path, what: str) -> int:
    """The size of ``p``, a regular file; one-line InputError for a missing path, a folder or a
    FIFO/device (reading a FIFO would block forever)."""
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"{what} not found: {p}") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"expected an {what} file, got a folder: {p}")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what} {p} is not a regular file (a pipe or a device?)")
    return st.st_size


def decode_image(data: np.ndarray | bytes, name: str = "image", max_pixels: int = MAX_IMAGE_PIXELS) -> LoadedImage:
    """Decode encoded image bytes (PNG, JPEG, TIFF, EXR, ...) into a ``LoadedImage``."""
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else data
    _check_header_size(buf, name, max_pixels)
    if bytes(buf[:4]) == b"GIF8":
        return from_array(_first_gif_frame(buf, name), name=name, bgr=True, linear=False)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # OpenCV raises for over-limit sizes and some corrupt files
        raise InputError(f"cannot decode image {name}: {str(exc).strip().splitlines()[-1]}") from None
    if img is None or img.size == 0:
        raise InputError(f"cannot decode image {name}: not an image or the file is corrupt/truncated")
    return from_array(img, name=name, bgr=True, linear=Path(name).suffix.lower() in _FLOAT_EXTENSIONS)


def _first_gif_frame(buf: np.ndarray, name: str) -> np.ndarray:
    """The first frame of a GIF (animated or not) as 8-bit BGR.

    OpenCV's image decoders are built without GIF; its video reader (FFmpeg) reads GIFs, so the
    bytes go through a temporary file. Transparency is dropped: a backdrop is opaque.
    """
    import tempfile

    fd, tmp = tempfile.mkstemp(suffix=".gif", prefix="gid-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.tobytes())
        cap = cv2.VideoCapture(tmp, cv2.CAP_FFMPEG)
        try:
            ok, frame = cap.read() if cap.isOpened() else (False, None)
        finally:
            cap.release()
    finally:
        os.unlink(tmp)
    if not ok or frame is None or frame.size == 0:
        raise InputError(f"cannot decode image {name}: a GIF that is corrupt/truncated")
    return frame


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


HEADER_BYTES = 1 << 20  # enough for the size of every format header_size reads (JPEG: after EXIF)


def header_size(head: bytes) -> Optional[tuple[int, int]]:
    """(width, height) an image file's header declares, for PNG, JPEG, GIF, BMP and WebP; None
    for other formats or a header too short to tell. Read without decoding, and without Pillow
    (Blender's Python has none), so a 1 KB file that claims 20000x20000 costs nothing."""
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    if head[:2] == b"BM" and len(head) >= 26:
        return abs(int.from_bytes(head[18:22], "little", signed=True)), abs(
            int.from_bytes(head[22:26], "little", signed=True))
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
        chunk = head[12:16]
        if chunk == b"VP8X":
            return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
        if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
            return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
        if chunk == b"VP8L" and head[20:21] == b"\x2f":
            bits = int.from_bytes(head[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return None
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(head)
    return None


def _jpeg_size(head: bytes) -> Optional[tuple[int, int]]:
    """Width and height from a JPEG's first start-of-frame marker (SOF0-SOF15 but DHT/JPG/DAC)."""
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        length = int.from_bytes(head[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(head[i + 7:i + 9], "big"), int.from_bytes(head[i + 5:i + 7], "big")
        if marker == 0xDA or length < 2:  # image data before any frame header: not a JPEG we read
            return None
        i += 2 + length
    return None


def _check_dimensions(dims: Optional[tuple[int, int]], name: str, max_pixels: int, file_bytes: int) -> None:
    """Refuse an image whose declared size is over ``max_pixels`` or whose reading and decoding
    would exceed the memory budget; with no declared size, the file's own bytes are budgeted."""
    width, height = dims or (0, 0)
    if width * height > max_pixels:
        raise InputError(f"image {name} is {width}x{height}; gid accepts at most {max_pixels} pixels")
    check_memory(decode_bytes(width, height, file_bytes), f"reading image {name}"
                 + (f" ({width}x{height})" if dims else f" ({file_bytes / 2**20:.0f} MiB file)"),
                 "use a smaller image")


def _check_header_size(buf: np.ndarray, name: str, max_pixels: int) -> None:
    """Refuse huge images before decoding them (a 16K x 16K PNG would take GiBs to decode)."""
    dims = header_size(bytes(buf[:HEADER_BYTES]))
    if dims is None:
        return  # a format without a size we read (EXR, TIFF...): OpenCV's own pixel limit applies
    _check_dimensions(dims, name, max_pixels, int(buf.nbytes))


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
