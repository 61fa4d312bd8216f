"""OpenCV, configured once for gid: import ``cv2`` from here, never directly.

Three environment switches only work if set before the first ``import cv2`` anywhere in the
process: OpenEXR support (off by default in OpenCV's wheels), the log level (OpenCV prints
warnings such as "PNG input buffer is incomplete" to stderr, which would break our one-line
error messages; we report every failure ourselves) and the largest image OpenCV decodes (16K x 16K,
gid's own limit, for the formats whose header gid does not read itself: TIFF, EXR). A user's own
settings win.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(16384 * 16384))

import cv2

__all__ = ["cv2"]
