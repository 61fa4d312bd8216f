"""Reading reference clips: video files and image sequences, as timed float frames.

Why a wrapper around ``cv2.VideoCapture``: it opens a text file "successfully", reports 0 or
1e9 fps, hands back ``None`` frames, and knows nothing about image sequences, 16-bit PNGs or
EXR. Here a source is checked once when opened (it exists, decodes, has two frames and a
usable frame rate) and every user-caused failure is a one-line ``InputError``.

Frames carry their time in seconds. For videos that is the container's presentation time
when it is usable, because real files are often variable-rate: ``samples/tree.avi`` declares
15 fps and 444 frames, but 376 of them are empty "repeat the previous frame" chunks, so
OpenCV decodes 68 frames spread over 29.6 s. Counting decoded frames at 15 fps would squeeze
that motion 6.5x in time. An explicit ``fps`` overrides the container and means "frame i is
at i / fps".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from ...exporters.atomic import protect_input
from ...exporters.opencv import cv2

from ..errors import InputError
from .imaging import HEADER_BYTES, from_array, header_size, load_image  # imports cv2 with EXR reading enabled

MOTION_JPEG_FOURCCS = (b"MJPG", b"AVRN", b"JPEG", b"DMB1")  # each frame a JPEG of its own
MIN_FPS = 0.1  # a frame every 10 s; below it a loop of a few seconds has no frames to hold
MAX_FPS = 1000.0
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".hdr", ".pfm", ".bmp", ".webp",
     ".ppm", ".pgm", ".pnm", ".jp2", ".tga"}
)
_PRINTF = re.compile(r"%(0?\d*)d")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class TimedFrame:
    """One decoded frame: ``index`` counts decoded frames from 0, ``time`` is in seconds."""

    index: int
    time: float
    pixels: np.ndarray  # (H, W, C) float32 in [0, 1] (floats may exceed 1 for EXR/HDR)


@dataclass(frozen=True)
class FrameSource:
    """An opened, validated clip; iterate it (any number of times) for float32 frames.

    ``frame_count`` is what the container or the sequence says, or None when unknown; for
    videos it can overstate what actually decodes (dropped-frame chunks), so readers must
    stop at the end of the stream rather than trust it. ``size`` is ``(width, height)``.
    """

    path: Path
    name: str
    fps: float
    size: tuple[int, int]
    frame_count: int | None
    kind: str  # "video" or "sequence"
    _open: Callable[[int], Iterator[TimedFrame]] = field(repr=False)

    def frames(self, start: int = 0) -> Iterator[TimedFrame]:
        """Timed frames from decoded frame ``start`` on; the file is closed when the loop ends."""
        if start < 0:
            raise InputError(f"start frame must be >= 0, got {start}")
        return self._open(start)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (f.pixels for f in self.frames())


def open_frames(source: str | Path, fps: float | None = None) -> FrameSource:
    """Open a video file, a folder of images, or a ``frame_%04d.png`` / ``frame_*.png`` pattern."""
    override = _check_fps_override(fps)
    path = Path(source)
    if path.is_dir():
        return _open_sequence(path, _natural_sorted(_images_in(path)), override, name=path.name)
    if not path.exists() and (_PRINTF.search(path.name) or _GLOB_CHARS & set(path.name)):
        return _open_sequence(path, _pattern_files(path), override, name=path.name)
    if not path.exists():
        raise InputError(f"clip not found: {source}")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise InputError(
            f"{path.name} is a single image; motion needs a video, a folder of frames or a pattern like frame_%04d.png"
        )
    return _open_video(path, override)


# ----------------------------------------------------------------------------- video files
def _open_video(path: Path, override: float | None) -> FrameSource:
    if path.stat().st_size == 0:
        raise InputError(f"video file is empty: {path}")
    protect_input(path)  # no output of the same job may replace it
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError(f"cannot open video {path.name}: not a video, or a codec OpenCV cannot decode")
        ok, first = cap.read()
        if not ok or first is None:
            raise InputError(f"cannot decode video {path.name}: the file is corrupt or its codec is unsupported")
        if not cap.grab():
            raise InputError(f"video {path.name} has only 1 frame; motion extraction needs at least 2 frames")
        container_fps = float(cap.get(cv2.CAP_PROP_FPS))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC) or 0).to_bytes(4, "little", signed=False)
    finally:
        cap.release()
    h, w = first.shape[:2]
    if fourcc.upper() in MOTION_JPEG_FOURCCS:
        _check_jpeg_frame_sizes(path, (w, h))
    if override is None and not _valid_fps(container_fps):
        raise InputError(f"video {path.name} reports an unusable frame rate ({container_fps:g}); pass --fps")
    rate = override if override is not None else container_fps

    def read(start: int) -> Iterator[TimedFrame]:
        return _video_frames(path, start, rate, use_timestamps=override is None, size=(w, h))

    return FrameSource(path, path.name, rate, (w, h), count if count > 0 else None, "video", read)


def _resolution_changes(name: str, index: int, size: tuple[int, int], first: tuple[int, int]) -> InputError:
    return InputError(f"video {name} changes resolution at frame {index} ({first[0]}x{first[1]} -> "
                      f"{size[0]}x{size[1]}); motion extraction needs one resolution: re-encode the clip at one size")


def _check_jpeg_frame_sizes(path: Path, size: tuple[int, int]) -> None:
    """Refuse a Motion-JPEG clip whose frames are not all ``size``.

    Each frame of such a clip is a JPEG of its own; FFmpeg's reader keeps the first frame's size
    and puts a smaller frame's pixels into it scrambled, which optical flow reads as violent
    motion. The frames' JPEG headers are read without decoding (a few KB per frame).
    """
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened() or not cap.set(cv2.CAP_PROP_FORMAT, -1):  # -1: packets as they are stored
            return
        index = 0
        while True:
            ok, packet = cap.read()
            if not ok or packet is None:
                return
            found = header_size(packet.reshape(-1)[:HEADER_BYTES].tobytes())
            if found is not None and found != size:
                raise _resolution_changes(path.name, index, found, size)
            index += 1
    finally:
        cap.release()


def _video_frames(path: Path, start: int, fps: float, use_timestamps: bool,
                  size: tuple[int, int] | None = None) -> Iterator[TimedFrame]:
    """Decode frames ``start..`` with their times; skipped frames are grabbed, not converted.
    A frame whose size is not ``size`` (the first frame's) is refused, not resized."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError(f"cannot open video {path.name}")
        index, last_time = 0, -math.inf
        while True:
            if index < start:
                if not cap.grab():
                    raise InputError(f"start frame {start} is past the end of {path.name} ({index} frames)")
                last_time = _frame_time(cap, index, fps, last_time, use_timestamps)
                index += 1
                continue
            ok, bgr = cap.read()
            if not ok or bgr is None:
                if index == start:
                    raise InputError(f"start frame {start} is past the end of {path.name} ({index} frames)")
                return
            if size is not None and (bgr.shape[1], bgr.shape[0]) != size:
                raise _resolution_changes(path.name, index, (bgr.shape[1], bgr.shape[0]), size)
            last_time = _frame_time(cap, index, fps, last_time, use_timestamps)
            yield TimedFrame(index, last_time, from_array(bgr, name=path.name, bgr=True).pixels)
            index += 1
    finally:
        cap.release()


def _frame_time(cap: "cv2.VideoCapture", index: int, fps: float, previous: float, use_timestamps: bool) -> float:
    """The container's time of the frame just read, or ``index / fps`` where that is unusable.

    Backends without timestamps return 0 or repeat values; a time that does not increase is
    replaced by the previous one plus one nominal frame, so times are always increasing.
    """
    if use_timestamps:
        t = float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
        if math.isfinite(t) and t > previous:
            return t
        return previous + 1.0 / fps if math.isfinite(previous) else index / fps
    return index / fps


# ----------------------------------------------------------------------------- image sequences
def _open_sequence(path: Path, files: list[Path], override: float | None, name: str) -> FrameSource:
    if not files:
        where = f"folder {path}" if path.is_dir() else f"pattern {path}"
        raise InputError(f"no image files found for {where}")
    if len(files) < 2:
        raise InputError(f"image sequence {name} has only 1 frame; motion extraction needs at least 2 frames")
    for file in files:
        protect_input(file)  # no output of the same job may replace a frame
    if override is None:
        raise InputError(f"image sequence needs --fps (its frame rate): {name}")
    first = load_image(files[0])
    size = (first.width, first.height)

    def read(start: int) -> Iterator[TimedFrame]:
        if start >= len(files):
            raise InputError(f"start frame {start} is past the end of {name} ({len(files)} frames)")
        for index in range(start, len(files)):
            img = load_image(files[index])
            if (img.width, img.height) != size:
                raise InputError(
                    f"image sequence {name} mixes frame sizes: {files[index].name} is {img.width}x{img.height}, "
                    f"{files[0].name} is {size[0]}x{size[1]}"
                )
            yield TimedFrame(index, index / override, img.pixels)

    return FrameSource(path, name, override, size, len(files), "sequence", read)


def _images_in(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]


def _pattern_files(pattern: Path) -> list[Path]:
    """Files matching ``frame_%04d.png`` (sorted by number) or ``frame_*.png`` (natural order)."""
    folder = pattern.parent
    if not folder.is_dir():
        raise InputError(f"folder not found for pattern {pattern}")
    match = _PRINTF.search(pattern.name)
    if match is None:
        return _natural_sorted([p for p in folder.glob(pattern.name) if p.is_file()])
    head, tail = pattern.name[: match.start()], pattern.name[match.end() :]
    regex = re.compile(re.escape(head) + r"(\d+)" + re.escape(tail) + r"\Z")
    numbered = []
    for p in folder.iterdir():
        m = regex.match(p.name)
        if m and p.is_file():
            numbered.append((int(m.group(1)), p))
    return [p for _, p in sorted(numbered)]


def _natural_sorted(paths: list[Path]) -> list[Path]:
    """``f2.png`` before ``f10.png``: digit runs compare as numbers."""

    def key(p: Path) -> list[tuple[int, int | str]]:
        return [(0, int(part)) if part.isdigit() else (1, part.lower()) for part in re.split(r"(\d+)", p.name)]

    return sorted(paths, key=key)


# ----------------------------------------------------------------------------- frame rate
def _valid_fps(fps: float) -> bool:
    return math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS


def _check_fps_override(fps: float | None) -> float | None:
    if fps is None:
        return None
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise InputError(f"--fps must be a number, got {fps!r}") from None
    if not _valid_fps(value):
        raise InputError(f"--fps must be between {MIN_FPS:g} and {MAX_FPS:g}, got {value:.6g}")
    return value
