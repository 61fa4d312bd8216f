"""Eulerian-initialised sampling (motion_prior/eulerian_init.py): the initial volume's motion
energy and anchoring, the truncated schedule, both pipelines starting from it (parity, and a
start that really carries the field's layout), and clear errors where it cannot run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from gid.gid_engine.errors import InputError
from gid.gid_engine.prediction.eulerian_init import (
    check_strength,
    eulerian_init_coeffs,
    noised_latents,
    truncated_timesteps,
)
from gid.gid_engine.motion.spectral_volume import SpectralVolume

from conftest import textured_image

K = 16
SCALES = np.geomspace(2.0, 0.05, K)


def _field(h: int = 24, w: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([3.0 * xx / w, -1.5 * (yy / h) ** 2]).astype(np.float32)  # (2, H, W), zero at a corner


# ----------------------------------------------------------------------------- numpy pieces
def test_initial_volume_has_the_eulerian_baselines_energy_and_is_anchored():
    m = _field()
    coeffs = eulerian_init_coeffs(m, SCALES, seed=3)
    assert coeffs.shape == (K, 4, 24, 32) and coeffs.dtype == np.float32
    vol = SpectralVolume(coeffs)
    np.testing.assert_allclose(vol.displacement_at(0.0), 0.0, atol=1e-5)  # anchored: frame 0 is the still
    # RMS displacement over one period = |M| / sqrt(2), as for M sin(2 pi f* t)
    disp = vol.displacement_at(np.arange(vol.num_frames))  # (T, 2, H, W), times in frames
    disp = disp - disp.mean(axis=0)  # the anchoring offset is constant in time
    rms = np.sqrt((disp**2).sum(axis=1).mean(axis=0))
    want = np.hypot(m[0], m[1]) / np.sqrt(2.0)
    np.testing.assert_allclose(rms, want, rtol=1e-3, atol=1e-5)
    # the layout is M's: no motion where M is zero, the most where |M| is largest
    assert rms[0, 0] < 1e-6 and np.unravel_index(rms.argmax(), rms.shape) == np.unravel_index(want.argmax(), want.shape)


def test_initial_volume_follows_the_spectrum_and_the_seed():
    m = _field()
    a, b, c = (eulerian_init_coeffs(m, SCALES, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a[1:] - c[1:]).max() > 0.1  # other phases
    amp = np.abs(a[1:, 0] + 1j * a[1:, 1]).max(axis=(1, 2))  # per-frequency amplitude ∝ the scales
    np.testing.assert_allclose(amp / amp[0], SCALES[1:] / SCALES[1], rtol=1e-4)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(InputError, match=r"\(2, H, W\)"):
        eulerian_init_coeffs(np.zeros((3, 4, 4)), SCALES, 0)
    with pytest.raises(InputError, match="two frequencies"):
        eulerian_init_coeffs(np.zeros((2, 4, 4)), SCALES[:1], 0)
    for bad in (0.0, -0.5, 1.5, float("nan")):
        with pytest.raises(InputError, match=r"\(0, 1\]"):
            check_strength(bad)


def test_truncated_schedule_and_noising():
    ts = list(range(981, 0, -20))  # 50 "leading" steps
    assert truncated_timesteps(ts, 1.0) == ts
    assert truncated_timesteps(ts, 0.5) == ts[25:] and len(ts[25:]) == 25
    assert truncated_timesteps(ts, 0.001) == [1]  # at least one step
    z0, eps = np.full((2, 3), 2.0, np.float32), np.full((2, 3), -1.0, np.float32)
    np.testing.assert_allclose(noised_latents(z0, eps, 0.64), 0.8 * 2.0 + 0.6 * -1.0, rtol=1e-6)


# ----------------------------------------------------------------------------- pipelines
torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("onnx")

from gid.gid_tools.motion_prior.models import build_models, get_config
from gid.gid_tools.motion_prior.pipeline import MotionPriorPipeline, make_scheduler
from gid.gid_engine.motion.normalization import FrequencyNormalizer


def _pipe(static_flow_width: int = 8) -> MotionPriorPipeline:
    torch.manual_seed(4)
    cfg = dataclasses.replace(get_config("tiny"), width=64, height=48)
    den_cfg = dataclasses.replace(cfg.denoiser, cond_type="conv", cond_channels=4, static_flow_width=static_flow_width)
    cfg = dataclasses.replace(cfg, denoiser=den_cfg)
    vae, den = build_models(cfg)
    if static_flow_width:
        for p in den.base.cond.static_flow.parameters():
            torch.nn.init.normal_(p, std=0.3)
    return MotionPriorPipeline(vae, den, make_scheduler(), FrequencyNormalizer(SCALES), cfg, latent_scale=1.3)


def test_torch_start_is_the_fields_volume_noised(monkeypatch):
    """With one step left the sampler starts at t = 1, where the start is almost the encoded
    initial volume: the pipeline must hand the noised latents of exactly that volume to DDIM."""
    pipe = _pipe()
    image = textured_image(48, 64, seed=5)
    seen = {}
    real_step = pipe.eulerian_start

    def spy(field, noise, t, seed):
        seen["t"], seen["seed"] = t, seed
        seen["z"] = real_step(field, noise, t, seed)
        return seen["z"]

    monkeypatch.setattr(pipe, "eulerian_start", spy)
    vol = pipe(image, steps=10, seed=7, init_strength=0.1)
    assert seen["t"] == 1 and seen["seed"] == 7 and vol.extra["init_strength"] == pytest.approx(0.1)
    from gid.gid_tools.motion_prior.pipeline import prepare_image

    img = prepare_image(image, 64, 48)
    field = pipe.denoiser.static_field(img)[0].numpy()
    assert np.abs(field).max() > 0.01
    coeffs = eulerian_init_coeffs(field, SCALES, 7)
    with torch.no_grad():
        z0 = pipe.encode_normalized(torch.from_numpy(pipe.normalizer.normalize(coeffs))).numpy()
    a1 = float(pipe.scheduler.alphas_cumprod[1])
    noise = torch.randn(z0.shape, generator=torch.Generator("cpu").manual_seed(7)).numpy()  # the seed's draw
    np.testing.assert_allclose(seen["z"].numpy(), np.sqrt(a1) * z0 + np.sqrt(1 - a1) * noise, rtol=1e-5, atol=1e-5)
    assert a1 > 0.99  # so the start is essentially the encoded volume
    # and plain sampling is untouched by the option's existence: strength 1 == the default
    np.testing.assert_array_equal(pipe(image, steps=3, seed=2, init_strength=1.0).coeffs,
                                  pipe(image, steps=3, seed=2).coeffs)


def test_onnx_matches_torch_from_the_eulerian_start(tmp_path):
    from gid.gid_tools.motion_prior.onnx_export import export_prior_onnx
    from gid.gid_engine.prediction.onnx_pipeline import OnnxPriorPipeline

    pipe = _pipe()
    index = export_prior_onnx(pipe, tmp_path / "onnx")
    assert index["models"]["encoder"]["outputs"] == ["cond", "flow"] and "vae_encoder" in index["models"]
    onnx_pipe = OnnxPriorPipeline.load(tmp_path / "onnx", device="cpu")
    image = textured_image(48, 64, seed=6)
    noise = onnx_pipe.initial_noise(3)
    a = onnx_pipe(image, steps=6, noise=noise, seed=3, init_strength=0.5, loop=False)
    b = pipe(image, steps=6, noise=noise, seed=3, init_strength=0.5)
    plain = pipe(image, steps=6, noise=noise, seed=3)
    assert np.abs(a.coeffs - b.coeffs).max() / np.abs(b.coeffs).max() < 1e-3
    assert np.abs(plain.coeffs - b.coeffs).max() / np.abs(b.coeffs).max() > 0.05  # the start matters
    assert a.extra["init_strength"] == pytest.approx(0.5)


def test_models_that_cannot_start_from_the_field_say_so(tmp_path):
    from gid.gid_tools.motion_prior.onnx_export import export_prior_onnx
    from gid.gid_engine.prediction.onnx_pipeline import OnnxPriorPipeline

    pipe = _pipe(static_flow_width=0)
    image = textured_image(48, 64, seed=1)
    with pytest.raises(InputError, match="no static-flow network"):
        pipe(image, steps=2, init_strength=0.5)
    export_prior_onnx(pipe, tmp_path / "onnx")
    onnx_pipe = OnnxPriorPipeline.load(tmp_path / "onnx", device="cpu")
    assert onnx_pipe(image, steps=2, loop=False).coeffs.shape == (K, 4, 48, 64)  # plain sampling still works
    with pytest.raises(InputError, match="re-export"):
        onnx_pipe(image, steps=2, init_strength=0.5)
    # what gid predict does when nothing is asked: the default where the model can, plain where not
    from gid.gid_engine.prediction.predict import DEFAULT_INIT_STRENGTH, init_strength_for

    assert DEFAULT_INIT_STRENGTH < 1.0
    assert init_strength_for(pipe, None) == init_strength_for(onnx_pipe, None) == 1.0
    assert init_strength_for(_pipe(), None) == DEFAULT_INIT_STRENGTH and init_strength_for(pipe, 0.3) == 0.3


def test_predict_cli_passes_the_strength(tmp_path, capsys):
    """``gid predict --init-strength`` on the shipped ONNX export (the Blender path)."""
    from gid.gid_engine.cli import main
    from gid.gid_engine.motion.sv_file import load_spectral_volume
    from gid.gid_engine.repo_data import TREE_STILL

    out = tmp_path / "m.gidsv"
    assert main(["predict", str(TREE_STILL), "-o", str(out), "--steps", "4", "--backend", "onnx", "--device", "cpu",
                 "--init-strength", "0.5"]) == 0
    vol = load_spectral_volume(out)
    assert vol.extra["init_strength"] == pytest.approx(0.5) and vol.extra["backend"] == "onnx"
    capsys.readouterr()
    assert main(["predict", str(TREE_STILL), "-o", str(tmp_path / "x.gidsv"), "--init-strength", "2"]) == 2
    assert "init strength must be in (0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "x.gidsv").exists()


def test_shipped_onnx_export_can_start_from_the_field():
    from gid.gid_tools.motion_prior.onnx_export import DEFAULT_ONNX_DIR
    from gid.gid_engine.prediction.onnx_pipeline import read_onnx_index

    index = read_onnx_index(Path(DEFAULT_ONNX_DIR))
    assert index["models"]["encoder"]["outputs"] == ["cond", "flow"] and "vae_encoder" in index["models"]
