"""Running the neural renderer per frame, torch-free (numpy + onnxruntime), as render.py's splatter.

Two ONNX graphs (see ``onnx_export``): ``renderer_encoder.onnx`` (still -> feature pyramid) runs
once per still and is cached; ``renderer_frame.onnx`` (pyramid, motion, weights -> frame) runs
per frame. Both are SHA-256 checked against ``renderer.json`` before a session is made.

The object has the call signature of the plain splatters (``(C, H, W)`` image, ``(2, H, W)``
forward flow, ``(H, W)`` weights -> ``(C, H, W)``), so ``render_frames`` takes either. The network
draws RGB: a grey image goes through it as RGB and comes back as its mean; an alpha channel and
anything that is not a picture (displacement fields, in the proxy path) go through the plain
splatter, ``field_splatter``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import InputError
from .checkpoint import WEIGHTS_DIR, read_index, verify_file
from .configs import MULTIPLE

ENCODER_ONNX = "renderer_encoder.onnx"
FRAME_ONNX = "renderer_frame.onnx"


class NeuralFrames:
    """Channel handling, padding and the per-still feature cache; subclasses run the two halves."""

    name = "neural"

    def __init__(self, field_splatter) -> None:
        self.field_splatter = field_splatter
        self._key: tuple | None = None
        self._features: tuple | None = None

    # subclasses
    def _encode(self, rgb: np.ndarray) -> tuple: ...  # (1, 3, H, W) -> pyramid

    def _render(self, features: tuple, flow: np.ndarray, z: np.ndarray) -> np.ndarray: ...  # -> (1, 3, H, W)

    def __call__(self, image: np.ndarray, flow: np.ndarray, z: np.ndarray) -> np.ndarray:
        check_shapes(image, flow, z)
        c, h, w = image.shape
        if c not in (1, 3, 4):
            return self.field_splatter(image, flow, z)
        rgb = image[:3] if c >= 3 else np.repeat(image, 3, axis=0)
        pad_h, pad_w = (-h) % MULTIPLE, (-w) % MULTIPLE
        features = self._cached_features(image, rgb, pad_h, pad_w)
        flow_p = _pad(flow, pad_h, pad_w)[None]
        z_p = _pad(z[None], pad_h, pad_w)[None]
        frame = self._render(features, np.ascontiguousarray(flow_p, np.float32), np.ascontiguousarray(z_p, np.float32))
        frame = frame[0, :, :h, :w]
        if c == 1:
            return frame.mean(axis=0, keepdims=True)
        if c == 4:
            alpha = self.field_splatter(np.ascontiguousarray(image[3:]), flow, z)
            return np.concatenate([frame, alpha], axis=0)
        return frame

    def _cached_features(self, image: np.ndarray, rgb: np.ndarray, pad_h: int, pad_w: int) -> tuple:
        """The pyramid of this still; render_frames passes the same array for every frame."""
        key = (image.__array_interface__["data"][0], image.shape, float(image[:, ::31, ::29].sum()))
        if key != self._key:
            padded = np.ascontiguousarray(_pad(rgb, pad_h, pad_w)[None], dtype=np.float32)
            self._features = self._encode(padded)
            self._key = key
        return self._features  # type: ignore[return-value]


def check_shapes(image: np.ndarray, flow: np.ndarray, z: np.ndarray) -> None:
    """One clear error for inputs the graphs would reject with an onnxruntime traceback."""
    if image.ndim != 3 or flow.shape != (2,) + image.shape[1:] or z.shape != image.shape[1:]:
        raise InputError(f"renderer inputs must be image (C, H, W), flow (2, H, W) and weights (H, W) of one size; "
                         f"got {image.shape}, {flow.shape} and {z.shape}")
    if min(image.shape[1:]) < 1:
        raise InputError(f"cannot render an empty {image.shape[2]}x{image.shape[1]} image")


def _pad(x: np.ndarray, pad_h: int, pad_w: int) -> np.ndarray:
    if not (pad_h or pad_w):
        return x
    return np.pad(x, ((0, 0), (0, pad_h), (0, pad_w)), mode="edge")


class OnnxNeuralRenderer(NeuralFrames):
    """The shipped renderer through onnxruntime (CUDA provider when present, else CPU)."""

    def __init__(self, folder: Optional[Path] = None, device: str = "auto", threads: Optional[int] = None,
                 log: Callable[[str], None] | None = None) -> None:
        from ..runtime import OnnxSplatter, create_session

        folder = Path(folder or WEIGHTS_DIR)
        doc = read_index(folder)
        encoder = verify_file(folder, ENCODER_ONNX, doc)
        frame = verify_file(folder, FRAME_ONNX, doc)
        super().__init__(OnnxSplatter(device=device, threads=threads))
        self.encoder, self.info = create_session(encoder, device, threads, log)
        self.frame, _ = create_session(frame, device, threads, None)
        self.feature_names = [o.name for o in self.encoder.get_outputs()]

    def _encode(self, rgb: np.ndarray) -> tuple:
        return tuple(self.encoder.run(None, {"image": rgb}))

    def _render(self, features: tuple, flow: np.ndarray, z: np.ndarray) -> np.ndarray:
        feeds = dict(zip(self.feature_names, features))
        feeds.update(flow=flow, z=z)
        return self.frame.run(None, feeds)[0]
