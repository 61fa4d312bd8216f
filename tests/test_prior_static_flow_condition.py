"""The denoiser conditioned on the learned static-flow field (DenoiserConfig.static_flow_width):
model shapes, a warm start that changes nothing until trained, the trainer's --init-from, ONNX parity."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("accelerate")

from gid.gid_engine.errors import InputError
from gid.gid_engine.model_folder import sha256_file
from gid.gid_tools.motion_prior import weights as W
from gid.gid_tools.motion_prior.models import FrequencyDenoiser, build_models, get_config
from gid.gid_tools.motion_prior.models.static_flow import StaticFlowNet
from gid.gid_tools.motion_prior.pipeline import MotionPriorPipeline, make_scheduler
from gid.gid_tools.motion_prior.static_flow import export_static_flow, load_static_flow
from gid.gid_tools.motion_prior.train import TrainArgs, latest_checkpoint, train, warm_start
from gid.gid_engine.motion.normalization import FrequencyNormalizer

from conftest import textured_image

K = 16


def _cfg(static_flow_width: int = 0, width: int = 64, height: int = 48):
    cfg = dataclasses.replace(get_config("tiny"), width=width, height=height)
    den = dataclasses.replace(cfg.denoiser, cond_type="conv", cond_channels=4, static_flow_width=static_flow_width)
    return dataclasses.replace(cfg, denoiser=den)


def _image(n: int = 2, h: int = 48, w: int = 64) -> torch.Tensor:
    return torch.from_numpy(np.stack([textured_image(h, w, seed=i).transpose(2, 0, 1) * 2 - 1 for i in range(n)])
                            .astype(np.float32))


def test_condition_carries_the_static_flow_field():
    torch.manual_seed(0)
    cfg = _cfg(static_flow_width=8)
    assert cfg.denoiser.condition_channels == 4 + 3 and cfg.denoiser.in_channels == 4 + 7
    den = FrequencyDenoiser(cfg.denoiser, cfg.latent_size)
    img = _image()
    cond = den.encode_condition(img)
    assert cond.shape == (2, 7, 6, 8)
    m = torch.nn.functional.interpolate(den.cond.static_flow(img), size=(6, 8), mode="area")
    torch.testing.assert_close(cond[:, 4:6], m)
    torch.testing.assert_close(cond[:, 6], m.norm(dim=1))
    # frozen and kept in eval mode while the rest trains
    assert not any(p.requires_grad for p in den.cond.static_flow.parameters())
    den.train()
    assert not den.cond.static_flow.training and den.cond.net.training
    # the shipped small preset conditions on the shipped (width-32) network
    assert get_config("small").denoiser.static_flow_width == 32


def test_warm_start_from_a_narrower_condition_changes_nothing():
    """conv_in grows by 3 input channels, initialised to zero: same noise prediction as the source."""
    torch.manual_seed(1)
    old, new = _cfg(0), _cfg(8)
    src = FrequencyDenoiser(old.denoiser, old.latent_size).eval()
    dst = FrequencyDenoiser(new.denoiser, new.latent_size).eval()
    for p in dst.cond.static_flow.parameters():  # a field that is far from zero
        torch.nn.init.normal_(p, std=0.5)
    report = warm_start(dst, src)
    assert "unet.conv_in.weight" in report
    z = torch.randn(4, 4, 6, 8)
    t = torch.tensor([10, 500, 900, 999])
    j = torch.tensor([0, 3, 7, 15])
    img = _image(4)
    with torch.no_grad():
        a = src(z, t, j, image=img)
        b = dst(z, t, j, image=img)
        assert float(dst.encode_condition(img)[:, 4:].abs().max()) > 0.01
    assert float((a - b).abs().max()) < 1e-5
    # and the new input channels do matter once their weights are non-zero
    with torch.no_grad():
        dst.unet.conv_in.weight[:, -3:].normal_(std=0.5)
        c = dst(z, t, j, image=img)
    assert float((a - c).abs().max()) > 1e-3


def _tiny_weights(folder: Path, cfg) -> Path:
    torch.manual_seed(2)
    vae, den = build_models(cfg)
    norm = FrequencyNormalizer(np.geomspace(2.0, 0.05, K))
    MotionPriorPipeline(vae, den, make_scheduler(), norm, cfg, latent_scale=1.3)
    W.save_weights(folder, vae, den, norm, cfg, latent_scale=1.3)
    return folder


def test_init_from_seeds_the_run_and_trains_with_the_static_flow(tmp_path, monkeypatch):
    """``--init-from``: the run reuses the weights' VAE, normalization and latent scale; the unet
    stage starts from their U-Net and loads the static-flow network; the export carries both."""
    import gid.gid_tools.motion_prior.train as T

    old = dataclasses.replace(_cfg(0, 256, 160), name="tiny")
    new = dataclasses.replace(_cfg(8, 256, 160), name="tiny")
    monkeypatch.setattr(T, "get_config", lambda name: new)
    src = _tiny_weights(tmp_path / "old", old)
    sf = StaticFlowNet(8)
    export_static_flow(sf, tmp_path / "sf", {"steps": 0})
    assert load_static_flow(tmp_path / "sf").width == 8
    out = tmp_path / "run"
    common = dict(config="tiny", out=out, pairs=2, norm_samples=4, log_every=1, data_seed=1)
    train(TrainArgs(stage="unet", steps=2, ckpt_every=2, init_from=src, static_flow=tmp_path / "sf", **common),
          log=lambda m: None)
    ref = W.load_weights(src)
    assert np.allclose(FrequencyNormalizer.load(out / "normalization.json").scales, ref.normalizer.scales)
    assert json.loads((out / "latent_scale.json").read_text())["latent_scale"] == pytest.approx(1.3)
    assert latest_checkpoint(out / "vae").name == "ckpt-0000000"
    state = W.load_state_dict(latest_checkpoint(out / "unet"), ["model.safetensors"])
    for k, v in sf.state_dict().items():  # frozen: exactly the static-flow weights after training
        torch.testing.assert_close(state[f"cond.static_flow.{k}"], v)
    # the VAE was not retrained
    vae_state = W.load_state_dict(latest_checkpoint(out / "vae"), ["model.safetensors"])
    for k, v in ref.vae.state_dict().items():
        torch.testing.assert_close(vae_state[k], v)
    train(TrainArgs(stage="freq-attn", steps=1, ckpt_every=1, init_from=src, **common), log=lambda m: None)
    target = T.export(out, tmp_path / "new", log=lambda m: None)
    pipe = W.load_weights(tmp_path / "new")
    assert pipe.config.denoiser.static_flow_width == 8 and target["latent_scale"] == pytest.approx(1.3)
    warm = W.read_index(tmp_path / "new")["training"]["warm_start"]  # provenance of the reused VAE
    assert warm["weights_index_sha256"] == sha256_file(src / "model_index.json")
    vol = pipe(textured_image(160, 256, seed=3), steps=2, seed=0)
    assert vol.coeffs.shape == (K, 4, 160, 256) and np.isfinite(vol.coeffs).all()


def test_missing_static_flow_weights_are_a_clear_error(tmp_path, monkeypatch):
    import gid.gid_tools.motion_prior.train as T

    new = dataclasses.replace(_cfg(8, 256, 160), name="tiny")
    monkeypatch.setattr(T, "get_config", lambda name: new)
    src = _tiny_weights(tmp_path / "old", dataclasses.replace(_cfg(0, 256, 160), name="tiny"))
    with pytest.raises(InputError, match="static-flow"):
        train(TrainArgs(stage="unet", config="tiny", steps=1, out=tmp_path / "r", pairs=1, norm_samples=2,
                        init_from=src, static_flow=tmp_path / "none"), log=lambda m: None)


def test_onnx_export_runs_the_static_flow_inside_the_encoder(tmp_path):
    from gid.gid_tools.motion_prior.onnx_export import export_prior_onnx
    from gid.gid_engine.prediction.onnx_pipeline import OnnxPriorPipeline

    cfg = _cfg(8)
    torch.manual_seed(4)
    vae, den = build_models(cfg)
    for p in den.base.cond.static_flow.parameters():
        torch.nn.init.normal_(p, std=0.3)
    pipe = MotionPriorPipeline(vae, den, make_scheduler(), FrequencyNormalizer(np.geomspace(2.0, 0.05, K)), cfg,
                               latent_scale=1.3)
    export_prior_onnx(pipe, tmp_path / "onnx")
    onnx_pipe = OnnxPriorPipeline.load(tmp_path / "onnx", device="cpu")
    img = _image(1).numpy()
    feats = onnx_pipe.encode(img)
    with torch.no_grad():
        want = den.encode_condition(torch.from_numpy(img)).numpy()
    assert feats.shape == want.shape == (1, 7, 6, 8)
    assert np.abs(want[:, 4:]).max() > 0.01  # the field is really there
    assert np.abs(feats - want).max() < 1e-4 * max(1.0, np.abs(want).max())
    image = textured_image(48, 64, seed=5)
    noise = onnx_pipe.initial_noise(3)
    a = onnx_pipe(image, steps=3, noise=noise, guidance_scale=1.0, loop=False)
    b = pipe(image, steps=3, noise=noise, guidance_scale=1.0)
    assert np.abs(a.coeffs - b.coeffs).max() / np.abs(b.coeffs).max() < 1e-3


def test_cached_fields_give_the_loss_of_the_uncached_condition():
    """Training caches each image's static field (and the null image's); the loss must be the
    one computed from the images alone, dropped conditions included."""
    from gid.gid_tools.motion_prior.train import PairCache, _denoise_loss, static_fields

    torch.manual_seed(5)
    cfg = _cfg(8, 64, 48)
    den = FrequencyDenoiser(cfg.denoiser, cfg.latent_size).eval()
    for p in den.cond.static_flow.parameters():
        torch.nn.init.normal_(p, std=0.3)
    cache = PairCache(torch.zeros(3, K, 4, 48, 64, dtype=torch.float16), _image(3).to(torch.float16))
    latents = torch.randn(3, K, 4, 6, 8)
    fields = static_fields(den, cache, "cpu", lambda m: None)
    assert fields[0].shape == (3, 2, 48, 64) and fields[1].shape == (1, 2, 48, 64)
    acp = make_scheduler().alphas_cumprod
    args = dict(stage="unet", model=den, cache=cache, latents=latents, latent_scale=1.0, batch=8, k=K, acp=acp,
                ntt=1000, dropout=0.5, device="cpu")
    with torch.no_grad():
        a = _denoise_loss(**args, rng=np.random.default_rng(0), gen=torch.Generator().manual_seed(0), fields=fields)
        b = _denoise_loss(**args, rng=np.random.default_rng(0), gen=torch.Generator().manual_seed(0))
    assert float(a) == pytest.approx(float(b), rel=2e-3)  # fields cached as float16
    assert static_fields(FrequencyDenoiser(_cfg(0, 64, 48).denoiser, (6, 8)), cache, "cpu", print) is None
