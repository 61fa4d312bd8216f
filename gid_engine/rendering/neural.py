"""Running the neural renderer per frame through onnxruntime, as render.py's splatter.

Two ONNX graphs (exported by ``gid export-onnx --renderer``): ``renderer_encoder.onnx`` (still -> feature pyramid) runs
once per still and is cached; ``renderer_frame.onnx`` (pyramid, motion, weights -> frame) runs
per frame. Both are checked against ``renderer.json`` (size and SHA-256) before a session is made.

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
from ..assets import RENDERER_DIR
from ..model_folder import RENDERER, file_path, read_index
from .neural_config import MULTIPLE

ENCODER_ONNX = "renderer_encoder.onnx"
FRAME_ONNX = "renderer_frame.onnx"


class NeuralFrames:
    """Channel handling, padding and the per-still feature cache; subclasses run the two halves.

    ``batch_size``: how many frames ``render_frames`` hands over at once (``render_batch``). One on
    the CPU and through onnxruntime; a GPU backend batches, since the network is launch-bound one
    frame at a time (README, "Measured": ``gid bench --gpu``)."""

    name = "neural"
    batch_size = 1

    def __init__(self, field_splatter) -> None:
        self.field_splatter = field_splatter
        self._key: tuple | None = None
        self._features: tuple | None = None

    # subclasses
    def _encode(self, rgb: np.ndarray) -> tuple: ...  # (1, 3, H, W) -> pyramid

    def _render(self, features: tuple, flow: np.ndarray, z: np.ndarray) -> np.ndarray: ...  # -> (1, 3, H, W)

    def __call__(self, image: np.ndarray, flow: np.ndarray, z: np.ndarray) -> np.ndarray:
        check_shapes(image, flow, z)
        return self.render_batch(image, flow[None], z)[0]

    def render_batch(self, image: np.ndarray, flows: np.ndarray, z: np.ndarray) -> np.ndarray:
        """``(C, H, W)`` still, ``(B, 2, H, W)`` forward flows, ``(H, W)`` weights -> ``(B, C, H, W)``:
        the frames of one still for several motion times, in one call of the network."""
        if flows.ndim != 4:
            raise InputError(f"flows must be (B, 2, H, W), got {flows.shape}")
        check_shapes(image, flows[0], z)
        c, h, w = image.shape
        b = flows.shape[0]
        if c not in (1, 3, 4):
            return np.stack([self.field_splatter(image, f, z) for f in flows])
        rgb = image[:3] if c >= 3 else np.repeat(image, 3, axis=0)
        pad_h, pad_w = (-h) % MULTIPLE, (-w) % MULTIPLE
        features = self._cached_features(image, rgb, pad_h, pad_w)
        flow_p = np.stack([_pad(f, pad_h, pad_w) for f in flows]) if (pad_h or pad_w) else flows
        z_p = np.repeat(_pad(z[None], pad_h, pad_w)[None], b, axis=0)
        frames = self._render(features, np.ascontiguousarray(flow_p, np.float32), np.ascontiguousarray(z_p, np.float32))
        frames = frames[:, :, :h, :w]
        if c == 1:
            return frames.mean(axis=1, keepdims=True)
        if c == 4:
            alpha = np.stack([self.field_splatter(np.ascontiguousarray(image[3:]), f, z) for f in flows])
            return np.concatenate([frames, alpha], axis=1)
        return frames

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

        folder = Path(folder or RENDERER_DIR)
        doc = read_index(folder, RENDERER, verify=False, needs=["onnx"])
        encoder = file_path(folder, doc, ENCODER_ONNX, RENDERER)
        frame = file_path(folder, doc, FRAME_ONNX, RENDERER)
        super().__init__(OnnxSplatter(device=device, threads=threads))
        self.encoder, self.info = create_session(encoder, device, threads, log)
        self.frame, _ = create_session(frame, device, threads, None)
        self.feature_names = [o.name for o in self.encoder.get_outputs()]

    def _encode(self, rgb: np.ndarray) -> tuple:
        return tuple(self.encoder.run(None, {"image": rgb}))

    def _render(self, features: tuple, flow: np.ndarray, z: np.ndarray) -> np.ndarray:
        feeds = dict(zip(self.feature_names, features))
        out = []
        for i in range(flow.shape[0]):  # the frame graph takes one frame (its pyramid has batch 1)
            feeds.update(flow=flow[i : i + 1], z=z[i : i + 1])
            out.append(self.frame.run(None, feeds)[0])
        return np.concatenate(out)
