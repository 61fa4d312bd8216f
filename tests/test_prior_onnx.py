"""The motion prior on numpy + onnxruntime: export, parity with torch, checksums, loop constraint.

Parity is measured as ``max |onnx - torch| / max |torch|`` over the spectral volume's coefficients
(relative to the largest coefficient), both started from the same initial noise.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("onnx")

from gid.gid_engine.cli import main
from gid.gid_engine.errors import Cancelled, FormatError, InputError
from gid.gid_engine.media.imaging import from_array, load_image
from gid.gid_engine.motion.loop_constraint import (
    loop_constraints,
    loop_projection,
    make_seamless,
    project_coeffs,
    relative_change,
    seam_errors,
)
from gid.gid_engine.model_folder import sha256_file
from gid.gid_tools.motion_prior import weights as W
from gid.gid_tools.motion_prior.models import build_models, get_config
from gid.gid_tools.motion_prior.onnx_export import DEFAULT_ONNX_DIR, export_prior_onnx
from gid.gid_engine.prediction.onnx_pipeline import (
    ONNX_INDEX_NAME,
    NumpyDDIM,
    OnnxPriorPipeline,
    prepare_image_array,
)
from gid.gid_tools.motion_prior.pipeline import (
    MotionPriorPipeline,
    loop_loss,
    make_scheduler,
    prepare_image,
)
from gid.gid_engine.motion.normalization import FrequencyNormalizer
from gid.gid_engine.errors import MissingWeightsError
from gid.gid_engine.prediction.predict import WEIGHTS_DIR, predict_motion
from gid.gid_engine.progress import Job

from conftest import REPO, random_volume, textured_image

K = 16
MiB = 1024 * 1024
PARITY = 1e-3  # relative to the largest coefficient; measured ~1e-6 (tiny), ~2e-5 (shipped, 5 steps)


def _tiny(cond_type: str = "resize", seed: int = 0, latent_scale: float = 1.7) -> MotionPriorPipeline:
    """The tiny preset at 64x48 (latent 8x6), frequency attention switched on, a non-unit latent
    scale (so the decoder's division is exercised)."""
    torch.manual_seed(seed)
    cfg = dataclasses.replace(get_config("tiny"), width=64, height=48)
    if cond_type == "conv":
        cfg = dataclasses.replace(cfg, denoiser=dataclasses.replace(cfg.denoiser, cond_type="conv", cond_channels=4))
    vae, den = build_models(cfg)
    for attn in list(den.down_attn) + [den.mid_attn] + list(den.up_attn):
        torch.nn.init.normal_(attn.proj_out.weight, std=0.05)
    norm = FrequencyNormalizer(np.geomspace(2.0, 0.05, K))
    return MotionPriorPipeline(vae, den, make_scheduler(), norm, cfg, latent_scale=latent_scale)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    """A tiny torch weights folder and, through the CLI, its ONNX export beside it (NAME_onnx)."""
    pipe = _tiny("conv")
    w = tmp_path_factory.mktemp("prior") / "motion_prior"
    W.save_weights(w, pipe.vae, pipe.denoiser, pipe.normalizer, pipe.config, latent_scale=pipe.latent_scale)
    assert main(["export-onnx", "--prior", "--weights", str(w), "-o", str(w.with_name("motion_prior_onnx"))]) == 0
    return w


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


# ----------------------------------------------------------------------------- parity
@pytest.mark.parametrize("cond_type", ["resize", "conv"])
def test_tiny_export_matches_torch(cond_type, tmp_path):
    pipe = _tiny(cond_type)
    index = export_prior_onnx(pipe, tmp_path / "onnx")
    assert index["latent_scale"] == pytest.approx(1.7) and index["latent_scale_in_decoder"]
    onnx_pipe = OnnxPriorPipeline.load(tmp_path / "onnx", device="cpu")
    img = textured_image(60, 80, seed=2)  # resized to the model's 64x48
    noise = onnx_pipe.initial_noise(4)
    for w in (1.0, 0.0):  # CFG (batch 2K) and none (batch K): the denoiser's batch is dynamic
        a = onnx_pipe(img, steps=4, noise=noise, guidance_scale=w, loop=False)
        b = pipe(img, steps=4, noise=noise, guidance_scale=w)
        assert a.coeffs.shape == b.coeffs.shape == (K, 4, 48, 64)
        assert _rel(a.coeffs, b.coeffs) < PARITY, (w, _rel(a.coeffs, b.coeffs))
        assert a.extra["backend"] == "onnx" and a.extra["provider"] == "CPUExecutionProvider"
        assert a.extra["seam_error_px"] == pytest.approx(b.extra["seam_error_px"], rel=1e-3, abs=1e-4)
    np.testing.assert_array_equal(prepare_image(img, 64, 48).numpy(), prepare_image_array(img, 64, 48))


def test_numpy_ddim_matches_diffusers():
    ref = make_scheduler()
    ours = NumpyDDIM.from_config(dict(ref.config))
    np.testing.assert_allclose(ours.alphas_cumprod, ref.alphas_cumprod.numpy(), rtol=1e-5)  # float32 cumprod order
    rng = np.random.default_rng(0)
    for steps in (1, 2, 7, 50, 250):
        ref.set_timesteps(steps)
        assert np.array_equal(ours.timesteps(steps), ref.timesteps.numpy()), steps
        for t in ref.timesteps[:: max(1, steps // 5)].tolist() + [int(ref.timesteps[-1])]:
            x, e = (rng.standard_normal((2, 4, 3, 5)).astype(np.float32) for _ in range(2))
            want = ref.step(torch.from_numpy(e), int(t), torch.from_numpy(x), eta=0.0).prev_sample.numpy()
            np.testing.assert_allclose(ours.step(e, int(t), x, steps), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(FormatError, match="timestep_spacing"):
        NumpyDDIM.from_config({**dict(ref.config), "timestep_spacing": "trailing"})


def test_shipped_onnx_prior_matches_the_shipped_weights():
    """The shipped export is of the shipped weights and samples the same volume (5 steps)."""
    index = json.loads((DEFAULT_ONNX_DIR / ONNX_INDEX_NAME).read_text())
    torch_index = json.loads((WEIGHTS_DIR / "model_index.json").read_text())
    assert index["source"]["weights_index_sha256"] == sha256_file(WEIGHTS_DIR / "model_index.json"), \
        "the shipped weights changed: run `gid export-onnx --prior`"
    assert index["config"] == torch_index["config"] and index["latent_scale"] == torch_index["latent_scale"]
    assert all(f.stat().st_size <= 16 * MiB for f in DEFAULT_ONNX_DIR.iterdir())
    onnx_pipe = OnnxPriorPipeline.load(DEFAULT_ONNX_DIR, device="cpu")
    pipe = W.load_weights(WEIGHTS_DIR)
    img = load_image(REPO / "samples" / "tree_still.png").pixels
    noise = onnx_pipe.initial_noise(0)
    a = onnx_pipe(img, steps=5, noise=noise, loop=False)
    b = pipe(img, steps=5, noise=noise)
    assert _rel(a.coeffs, b.coeffs) < PARITY, _rel(a.coeffs, b.coeffs)


# ----------------------------------------------------------------------------- folder checks
def test_checksums_and_missing_files_give_one_line_errors(tiny_weights, tmp_path):
    src = tiny_weights.with_name("motion_prior_onnx")
    w = tmp_path / "onnx"
    shutil.copytree(src, w)
    OnnxPriorPipeline.load(w)  # intact
    target = w / "denoiser.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"^ONNX prior file denoiser.onnx is corrupt \(checksum mismatch\)$"):
        OnnxPriorPipeline.load(w)
    target.write_bytes(bytes(data[:100]))
    with pytest.raises(FormatError, match="denoiser.onnx is truncated"):
        OnnxPriorPipeline.load(w)
    target.unlink()
    with pytest.raises(FormatError, match="denoiser.onnx is missing"):
        OnnxPriorPipeline.load(w)
    (w / ONNX_INDEX_NAME).write_text("{not json")
    with pytest.raises(FormatError, match="prior_onnx.json is corrupt"):
        OnnxPriorPipeline.load(w)
    (w / ONNX_INDEX_NAME).unlink()
    with pytest.raises(MissingWeightsError, match="not installed"):
        OnnxPriorPipeline.load(w)


def test_large_graphs_are_split_into_small_external_data_files(tmp_path):
    pipe = _tiny()
    index = export_prior_onnx(pipe, tmp_path / "onnx", max_file_bytes=300_000)
    data = index["models"]["denoiser"]["external_data"]
    assert len(data) >= 3 and all((tmp_path / "onnx" / n).stat().st_size <= 300_000 for n in data)
    assert {f["name"] for f in index["files"]} >= set(data)
    img = textured_image(48, 64, seed=1)
    a = OnnxPriorPipeline.load(tmp_path / "onnx")(img, steps=2, seed=3, loop=False)
    b = pipe(img, steps=2, noise=OnnxPriorPipeline.load(tmp_path / "onnx").initial_noise(3))
    assert _rel(a.coeffs, b.coeffs) < PARITY


# ----------------------------------------------------------------------------- predict / CLI
def test_predict_motion_backends(tiny_weights, tmp_path):
    image = from_array(textured_image(48, 64, seed=3))
    onnx_vol = predict_motion(image, seed=2, steps=2, weights_dir=tiny_weights, backend="onnx")
    assert onnx_vol.extra["backend"] == "onnx" and onnx_vol.extra["loop"]
    assert onnx_vol.extra["seam_error_px"] < 1e-4 and onnx_vol.coeffs.shape == (K, 4, 48, 64)
    torch_vol = predict_motion(image, seed=2, steps=2, weights_dir=tiny_weights, backend="torch")
    assert torch_vol.extra["backend"] == "torch"
    auto = predict_motion(image, seed=2, steps=2, weights_dir=tiny_weights)  # torch is here: torch
    assert auto.extra["backend"] == "torch" and np.array_equal(auto.coeffs, torch_vol.coeffs)
    # the ONNX folder itself as weights_dir: onnx
    direct = predict_motion(image, seed=2, steps=2, weights_dir=tiny_weights.with_name("motion_prior_onnx"))
    assert direct.extra["backend"] == "onnx" and np.array_equal(direct.coeffs, onnx_vol.coeffs)
    lonely = tmp_path / "motion_prior"
    shutil.copytree(tiny_weights, lonely)
    with pytest.raises(MissingWeightsError, match=r"ONNX export is not installed .*gid export-onnx --prior"):
        predict_motion(image, steps=2, weights_dir=lonely, backend="onnx")
    with pytest.raises(InputError, match="unknown backend"):
        predict_motion(image, weights_dir=tiny_weights, backend="tensorflow")


def test_a_loaded_prior_is_the_callers_own(tiny_weights):
    """load_prior(shared=False) gives the caller sessions of its own (an Engine keeps one); the
    volumes are those of a plain predict_motion call, bit for bit."""
    from gid.gid_engine.prediction.predict import load_prior

    image = from_array(textured_image(48, 64, seed=3))
    own, other = (load_prior(tiny_weights, backend="onnx", shared=False) for _ in range(2))
    assert own.backend == "onnx" and own.pipeline is not other.pipeline
    shared = load_prior(tiny_weights, backend="onnx")
    assert load_prior(tiny_weights, backend="onnx").pipeline is shared.pipeline is not own.pipeline
    plain = predict_motion(image, seed=4, steps=2, weights_dir=tiny_weights, backend="onnx")
    mine = predict_motion(image, seed=4, steps=2, prior=own)
    assert np.array_equal(plain.coeffs, mine.coeffs) and mine.extra["backend"] == "onnx"
    torch_prior = load_prior(tiny_weights, backend="torch")
    assert torch_prior.backend == "torch"
    assert np.array_equal(predict_motion(image, seed=4, steps=2, prior=torch_prior).coeffs,
                          predict_motion(image, seed=4, steps=2, weights_dir=tiny_weights, backend="torch").coeffs)


def test_cpu_predictions_without_steps_take_fewer(tiny_weights, monkeypatch):
    """No steps asked for: the model's default on a GPU, at most ``CPU_DEFAULT_STEPS`` on the CPU
    (the tiny model's default is 10; the cap is lowered to 3 so the test sees it act), both backends."""
    import gid.gid_engine.prediction.predict as predict

    assert predict.default_steps(50, on_gpu=False) == 25 and predict.default_steps(50, on_gpu=True) == 50
    assert predict.default_steps(10, on_gpu=False) == 10
    monkeypatch.setattr(predict, "CPU_DEFAULT_STEPS", 3)
    image = from_array(textured_image(48, 64, seed=3))
    for backend in ("onnx", "torch"):
        vol = predict_motion(image, seed=2, device="cpu", weights_dir=tiny_weights, backend=backend)
        assert vol.extra["steps"] == 3, backend
        assert predict_motion(image, seed=2, steps=4, device="cpu", weights_dir=tiny_weights,
                              backend=backend).extra["steps"] == 4


def test_progress_and_cancel(tiny_weights):
    pipe = OnnxPriorPipeline.load(tiny_weights.with_name("motion_prior_onnx"))
    seen: list[tuple[int, int, str]] = []
    pipe(textured_image(48, 64), steps=3, job=Job(lambda d, t, w: seen.append((d, t, w))))
    assert seen == [(1, 3, "sampling motion"), (2, 3, "sampling motion"), (3, 3, "sampling motion")]
    job = Job(lambda d, t, w: job.cancel())
    with pytest.raises(Cancelled):
        pipe(textured_image(48, 64), steps=3, job=job)


def test_cli_predict_backend_and_export_options(tiny_weights, tmp_path, capsys):
    from gid.exporters.opencv import cv2
    from gid.gid_engine.motion.sv_file import load_spectral_volume

    img = tmp_path / "still.png"
    cv2.imwrite(str(img), (textured_image(48, 64, seed=2) * 255).astype(np.uint8))
    out = tmp_path / "m.gidsv"
    assert main(["predict", str(img), "-o", str(out), "--weights", str(tiny_weights), "--backend", "onnx",
                 "--steps", "2"]) == 0
    assert load_spectral_volume(out).extra["backend"] == "onnx"
    assert "(onnx)" in capsys.readouterr().err
    assert main(["export-onnx", "--weights", str(tiny_weights)]) == 2  # --weights needs --prior
    assert "goes with --prior" in capsys.readouterr().err


# ----------------------------------------------------------------------------- loop constraint
def test_loop_projection_closes_the_seam_and_keeps_the_anchor():
    vol = random_volume(h=12, w=10, seed=3).anchored()
    before = seam_errors(vol)
    assert before[0] > 0.1
    seamless = make_seamless(vol)
    total, pos, vel = seam_errors(seamless)
    assert total < 1e-4 and pos < 1e-4 and vel < 1e-4
    np.testing.assert_allclose(seamless.displacement_at(0.0), 0.0, atol=1e-5)  # still anchored
    assert np.all(seamless.coeffs[0, 1::2] == 0.0)  # Im S_0 = 0
    # agrees with the torch loss the sampler reports
    lg, _, _ = loop_loss(torch.from_numpy(vol.coeffs), vol.num_frames)
    assert float(lg) == pytest.approx(before[0], rel=1e-4)
    # a projection: idempotent, and a volume that already loops is left alone
    np.testing.assert_allclose(project_coeffs(seamless.coeffs, 150), seamless.coeffs, atol=1e-5)
    p = loop_projection(K, 150)
    np.testing.assert_allclose(p @ p, p, atol=1e-10)
    assert 0.0 < relative_change(vol.coeffs, seamless.coeffs) < 1.0


def test_loop_correction_is_the_minimal_one():
    """Per pixel and axis the change equals the minimum-norm solution of ``A d = -A x`` (lstsq),
    and no other correction that satisfies the constraints is smaller."""
    vol = random_volume(h=4, w=5, seed=7)
    c = vol.coeffs.astype(np.float64)
    out = project_coeffs(vol.coeffs, 150).astype(np.float64)
    a = loop_constraints(K, 150)
    x = np.concatenate([c[:, 0].reshape(K, -1), c[:, 1].reshape(K, -1)])  # x axis, all pixels
    d_lstsq = np.linalg.lstsq(a, -a @ x, rcond=None)[0]
    d_ours = np.concatenate([out[:, 0].reshape(K, -1), out[:, 1].reshape(K, -1)]) - x
    np.testing.assert_allclose(d_ours, d_lstsq, atol=1e-5)
    assert np.abs(a @ (x + d_ours)).max() < 1e-5
    rng = np.random.default_rng(0)
    null = np.linalg.svd(a)[2][4:]  # directions that keep every constraint
    for _ in range(5):
        other = d_ours + null.T @ rng.normal(size=(null.shape[0], x.shape[1]))
        assert np.abs(a @ (x + other)).max() < 1e-5
        assert np.linalg.norm(other) > np.linalg.norm(d_ours)


def test_bench_times_the_paper_step_count_when_asked(monkeypatch):
    """`gid bench --paper-steps` adds a row at the paper's step count (250; 2 here to stay fast) that
    really ran that many steps, after the rows it always has."""
    import gid.gid_tools.bench as bench

    monkeypatch.setattr(bench, "PAPER_STEPS", 2)
    rows = bench.bench_prior(("onnx",), repeats=1, steps=1, paper_steps=True)
    assert [r["task"] for r in rows] == ["predict motion (prior, 1 steps)", "predict motion (prior, 2 steps)"]
    assert rows[0]["backend"].endswith(", 1 steps)") and rows[1]["backend"].endswith(", 2 steps)")
    assert all(r["value"] > 0 and r["vs_goal"] == pytest.approx(bench.GOAL_PRIOR_S / r["value"]) for r in rows)
    assert [r["task"] for r in bench.bench_prior(("onnx",), repeats=1, steps=1)] == ["predict motion (prior, 1 steps)"]
