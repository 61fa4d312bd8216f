"""The shipped motion prior without torch: what Blender runs (numpy + onnxruntime only).

Meant for the torch-free Blender legs of ``make test`` (``tools/blender_matrix.py``); skipped where torch is
importable, since there it could not show that nothing needs torch.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

if importlib.util.find_spec("torch") is not None:
    pytest.skip("torch is importable here; this test is for the torch-free environment", allow_module_level=True)

from gid.gid_engine.media.imaging import from_array
from gid.gid_engine.motion.loop_constraint import seam_error
from gid.gid_engine.prediction.predict import predict_motion

from conftest import textured_image


def test_torch_is_not_importable():
    with pytest.raises(ImportError):
        import torch  # noqa: F401


def test_shipped_prior_runs_without_torch():
    image = from_array(textured_image(50, 80, seed=1))  # the model's 1.6 aspect: 256x160 back
    a = predict_motion(image, seed=3, steps=3, device="cpu")
    assert a.coeffs.shape == (16, 4, 160, 256) and a.coeffs.dtype == np.float32
    assert np.isfinite(a.coeffs).all() and float(np.abs(a.coeffs).max()) > 0.0
    assert a.extra["backend"] == "onnx" and a.extra["steps"] == 3 and a.extra["loop"]
    np.testing.assert_allclose(a.displacement_at(0.0), 0.0, atol=1e-4)  # anchored
    assert seam_error(a) < 1e-4 and a.extra["seam_error_px"] < 1e-4  # loop constraint applied
    b = predict_motion(image, seed=3, steps=3, device="cpu")
    c = predict_motion(image, seed=4, steps=3, device="cpu")
    assert np.array_equal(a.coeffs, b.coeffs)  # deterministic per seed
    assert np.abs(a.coeffs - c.coeffs).max() > 1e-4
    # a wide image: the motion comes back in its aspect, ready to render
    wide = predict_motion(from_array(textured_image(40, 80, seed=2)), seed=3, steps=3, device="cpu")
    assert wide.coeffs.shape == (16, 4, 160, 320)
    loaded = [m for m in sys.modules if m.split(".")[0] in ("torch", "diffusers")]
    assert not loaded, loaded
