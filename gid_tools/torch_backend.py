"""The torch backend: the reference prior pipeline and splatters, added to the runtime's choices.

``gid predict/animate/render --backend torch`` and ``Engine(backend="torch")`` reach this through the
``gid.backends`` entry point (``gid_engine.backends``); the runtime itself never imports torch. The
prior's pipeline is loaded once per weights folder, device and index file version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..gid_engine.errors import InputError

_CACHE: dict = {}


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


def torch_pipeline(weights_dir: Path, device: str):
    """The torch sampling pipeline of ``weights_dir`` on torch ``device`` ("cuda" or "cpu"), loaded
    once per weights folder, device and index file version."""
    from .motion_prior.weights import INDEX_NAME, load_weights

    weights_dir = Path(weights_dir)
    st = (weights_dir / INDEX_NAME).stat()
    key = (str(weights_dir.resolve()), device, st.st_mtime_ns, st.st_size)
    if _CACHE.get("key") != key:
        _CACHE.clear()
        _CACHE["pipe"] = load_weights(weights_dir, device=device)
        _CACHE["key"] = key
    return _CACHE["pipe"]


class TorchBackend:
    """What ``gid_engine.backends`` asks of the ``torch`` backend."""

    def available(self) -> bool:
        """torch and diffusers import here (the ``torch`` extra is installed)."""
        try:
            import diffusers  # noqa: F401
            import torch  # noqa: F401
        except Exception:
            return False
        return True

    def prior_pipeline(self, weights_dir: Path, device: str) -> Any:
        return torch_pipeline(weights_dir, torch_device(device))

    def splatter(self, threads: int | None, device: str) -> Any:
        from .splat_torch import TorchSplatter

        return TorchSplatter(threads=threads, device=torch_device(device))

    def neural_renderer(self, threads: int | None, device: str) -> Any:
        from .renderer.torch_runtime import TorchNeuralRenderer

        return TorchNeuralRenderer(threads=threads, device=torch_device(device))
