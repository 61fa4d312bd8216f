"""What the engine says reaches whoever asked: the prior's sessions are cached per process, and a
GPU that falls back to the CPU is reported to every caller's log, not only to the first
(``gid animate`` never printed the line ``gid predict`` printed)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from gid.gid_engine.prediction import predict
from gid.gid_engine.engine import Engine


@pytest.fixture
def failing_cuda(monkeypatch):
    """CUDA listed by onnxruntime, and every session asked for it fails to start."""
    real_session, real_providers = ort.InferenceSession, ort.get_available_providers

    def session(*args, **kwargs):
        if "CUDAExecutionProvider" in (kwargs.get("providers") or []):
            raise RuntimeError("CUDA failure 35: CUDA driver version is insufficient")
        return real_session(*args, **kwargs)

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", *real_providers()])
    monkeypatch.setattr(ort, "InferenceSession", session)
    monkeypatch.setattr(predict, "_ONNX_CACHE", {})  # sessions opened under the failing CUDA


@pytest.mark.skipif(not predict.weights_available(), reason="the prior's weights are not installed")
def test_every_engine_hears_the_gpu_fallback(failing_cuda, tmp_path):
    still = np.full((40, 64, 3), 0.5, np.float32)
    heard: list[list[str]] = [[], []]
    for log in heard:  # the second engine reuses the cached sessions
        Engine(device="gpu", backend="onnx", log=log.append).predict(still, steps=1)
    for lines in heard:
        assert any("GPU (CUDA) provider failed" in line and "running on the CPU" in line for line in lines), lines
    # and through animate, which used to call the prior without the engine's log
    animated: list[str] = []
    from gid.exporters.opencv import cv2

    cv2.imwrite(str(tmp_path / "s.png"), (still * 255).astype(np.uint8))
    Engine(device="gpu", backend="onnx", renderer="splat", log=animated.append).animate(
        tmp_path / "s.png", tmp_path / "loop", steps=1, frames=2, preview=None)
    assert any("GPU (CUDA) provider failed" in line for line in animated), animated
