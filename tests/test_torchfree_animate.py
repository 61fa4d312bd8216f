"""``gid animate`` in a Python without torch (as inside Blender): numpy + onnxruntime only.

Runs in the torch-free Blender legs of ``make test`` (``tools/blender_matrix.py``); skipped where torch is
importable, since there it could not show that nothing needs it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is not None,
                                reason="torch is installed here; this test needs a torch-free Python")

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "tree_still.png"


def test_neural_renderer_without_torch():
    from gid.gid_engine.rendering.render import make_splatter

    renderer = make_splatter("onnx", "cpu", renderer="neural")
    rng = np.random.default_rng(0)
    image = rng.random((3, 37, 50), dtype=np.float32)
    flow = np.zeros((2, 37, 50), np.float32)
    flow[0, 10:25, 10:30] = 4.0
    frame = renderer(image, flow, np.linalg.norm(flow, axis=0))
    assert frame.shape == (3, 37, 50) and np.isfinite(frame).all()
    still = renderer(image, np.zeros_like(flow), np.zeros((37, 50), np.float32))
    assert np.array_equal(still, image) or np.abs(still - image).max() < 1e-6  # zero motion: the still
    assert not any(name == "torch" or name.startswith("torch.") for name in sys.modules)


def test_animate_without_torch(tmp_path):
    from gid.gid_engine.cli import main
    from gid.gid_engine.motion.sv_file import load_spectral_volume

    with pytest.raises(ImportError):
        import torch  # noqa: F401
    out = tmp_path / "loop"
    assert main(["animate", str(SAMPLE), "-o", str(out), "--steps", "2", "--frames", "4", "--no-preview"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "frame.json", "frame_0001.png", "frame_0002.png", "frame_0003.png", "frame_0004.png", "motion.gidsv"]
    sv = load_spectral_volume(out / "motion.gidsv")
    assert sv.extra["backend"] == "onnx" and sv.extra["seam_error_px"] < 1e-4  # the loop constraint held
    assert np.isfinite(sv.coeffs).all()
    assert not any(name == "torch" or name.startswith(("torch.", "diffusers")) for name in sys.modules)
