"""onnxruntime sessions for the torch-free path (inside Blender, and `--backend onnx`).

Provider choice is explicit and explained: ``auto`` takes CUDA when onnxruntime-gpu offers it,
otherwise the CPU; ``gpu`` without a usable CUDA provider falls back to the CPU with a message
(never silently); a CUDA session that fails to start (driver/library mismatch) also falls back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .assets import ASSETS_DIR
from .errors import GidError, InputError

SPLAT_ONNX = "softmax_splat.onnx"
DEVICES = ("auto", "gpu", "cpu")


def asset_path(name: str) -> Path:
    """Path of a file shipped in ``gid_engine/assets``."""
    return ASSETS_DIR / name


def default_threads() -> int:
    """Intra-op threads: every core we may use (respects CPU affinity, e.g. in containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS / Windows
        return max(1, os.cpu_count() or 1)


@dataclass
class SessionInfo:
    provider: str
    message: str  # empty unless the user should hear about a fallback


def create_session(
    model: Path, device: str = "auto", threads: Optional[int] = None, log: Callable[[str], None] | None = None
):
    """An ``InferenceSession`` on the best allowed provider, and what was chosen and why."""
    import onnxruntime as ort

    if device not in DEVICES:
        raise InputError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if not model.is_file():
        raise GidError(f"model file missing: {model} (reinstall gid or run `gid export-onnx`)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.log_severity_level = 3
    available = ort.get_available_providers()
    message = ""
    if device in ("auto", "gpu") and "CUDAExecutionProvider" in available:
        try:
            session = _new_session(ort, model, options, ["CUDAExecutionProvider", "CPUExecutionProvider"])
            if session.get_providers()[0] == "CUDAExecutionProvider":
                return session, SessionInfo("CUDAExecutionProvider", "")
            message = "GPU (CUDA) provider did not start; running on the CPU"
        except Exception as exc:  # a broken CUDA install must not stop the user
            message = f"GPU (CUDA) provider failed ({str(exc).splitlines()[0][:120]}); running on the CPU"
    elif device == "gpu":
        message = "no GPU provider in this onnxruntime (install onnxruntime-gpu with CUDA); running on the CPU"
    if message and log is not None:
        log(message)
    try:
        session = _new_session(ort, model, options, ["CPUExecutionProvider"])
    except Exception as exc:
        raise GidError(f"cannot load {model.name}: {str(exc).splitlines()[0][:200]}") from None
    return session, SessionInfo("CPUExecutionProvider", message)


def _new_session(ort, model: Path, options, providers: list[str]):
    """``InferenceSession`` without onnxruntime's creation-time fallback: that prints a four-line
    "EP Error" banner on stdout and retries silently, so a corrupt model or a failing CUDA
    provider would not reach our one-line messages. Its run-time fallback is left as it was."""
    session = ort.InferenceSession(str(model), options, providers=providers, enable_fallback=0)
    if hasattr(session, "enable_fallback"):
        session.enable_fallback()
    return session


class OnnxSplatter:
    """Softmax splatting + hole filling through the shipped ONNX graph."""

    name = "onnx"

    def __init__(self, device: str = "auto", threads: Optional[int] = None, model: Optional[Path] = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.session, self.info = create_session(model or asset_path(SPLAT_ONNX), device, threads, log)

    def __call__(self, image: np.ndarray, flow: np.ndarray, z: np.ndarray) -> np.ndarray:
        """``image`` (C, H, W), ``flow`` (2, H, W), ``z`` (H, W) -> (C, H, W), all float32."""
        feeds = {
            "image": np.ascontiguousarray(image[None], dtype=np.float32),
            "flow": np.ascontiguousarray(flow[None], dtype=np.float32),
            "z": np.ascontiguousarray(z[None, None], dtype=np.float32),
        }
        return self.session.run(None, feeds)[0][0]
