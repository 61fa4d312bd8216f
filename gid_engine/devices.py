"""What the user's ``--device`` (auto | gpu | cuda | cpu) means for each backend.

One place for the choice, so ``predict``, ``render`` and the tooling agree: onnxruntime takes
"auto"/"gpu"/"cpu" (the session falls back to the CPU with a message where CUDA fails). The torch
backend of the tooling maps the same words to torch's devices (``gid_tools.torch_backend``).
"""

from __future__ import annotations

from .errors import InputError

DEVICES = ("auto", "gpu", "cuda", "cpu")


def onnx_device(device: str) -> str:
    """``device`` for onnxruntime: "auto", "gpu" or "cpu" ("cuda" is "gpu")."""
    d = (device or "auto").lower()
    d = "gpu" if d == "cuda" else d
    if d not in ("auto", "gpu", "cpu"):
        raise InputError(f"unknown device {device!r}; choose auto, gpu or cpu")
    return d
