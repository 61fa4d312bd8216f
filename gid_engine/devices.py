"""What the user's ``--device`` (auto | gpu | cuda | cpu) means for each backend.

One place for the choice, so ``predict``, ``render`` and the tooling agree: onnxruntime takes
"auto"/"gpu"/"cpu" (the session falls back to the CPU with a message where CUDA fails); torch takes
"cuda" or "cpu", and a GPU asked for where torch sees none is a one-line error.
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


def torch_device(device: str) -> str:
    """``device`` for torch: "cuda" or "cpu" (auto: CUDA when torch sees a GPU)."""
    import torch

    d = (device or "auto").lower()
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if d in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise InputError("no CUDA GPU is available to torch; use --device cpu")
        return "cuda"
    if d == "cpu":
        return "cpu"
    raise InputError(f"unknown device {device!r}; choose auto, gpu or cpu")
