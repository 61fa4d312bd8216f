"""Training stages, checkpoints, shipped weights, predict_motion and the CLI, on the tiny config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("accelerate")

from gid.gid_engine.cli import main
from gid.gid_engine.errors import FormatError, GidError
from gid.gid_engine.media.imaging import from_array
from gid.gid_tools.motion_prior import weights as W
from gid.gid_tools.motion_prior.train import TrainArgs, export, latest_checkpoint, train
from gid.gid_engine.errors import MissingWeightsError
from gid.gid_engine.prediction.predict import predict_motion, weights_available

from conftest import textured_image

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny three-stage run: vae 6 steps (checkpoints at 3 and 6), unet 4, freq-attn 2."""
    out = tmp_path_factory.mktemp("prior") / "run"
    common = dict(config="tiny", out=out, pairs=2, norm_samples=4, log_every=1, data_seed=1)
    train(TrainArgs(stage="vae", steps=6, ckpt_every=3, **common), log=lambda m: None)
    train(TrainArgs(stage="unet", steps=4, ckpt_every=4, **common), log=lambda m: None)
    train(TrainArgs(stage="freq-attn", steps=2, ckpt_every=2, **common), log=lambda m: None)
    return out


@pytest.fixture(scope="module")
def weights(run, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("weights") / "motion_prior"
    export(run, target, log=lambda m: None)
    return target


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "w"
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------- training
def test_stages_write_checkpoints_and_loss_logs(run):
    for stage, steps in (("vae", 6), ("unet", 4), ("freq-attn", 2)):
        ckpt = latest_checkpoint(run / stage)
        assert ckpt is not None and ckpt.name == f"ckpt-{steps:07d}"
        state = json.loads((ckpt / "state.json").read_text())
        assert state["step"] == steps and state["model_files"] and state["optimizer_files"]
        for f in ckpt.iterdir():
            assert f.stat().st_size <= 16 * MiB
        rows = (run / stage / "loss.csv").read_text().strip().splitlines()
        assert rows[0].startswith("step,seconds,lr,loss") and len(rows) == steps + 1
        assert all(np.isfinite(float(r.split(",")[3])) for r in rows[1:])
        assert not list((run / stage).glob(".*tmp*"))  # nothing half-written left behind
    assert (run / "normalization.json").is_file() and (run / "latent_scale.json").is_file()


def test_resume_reproduces_an_uninterrupted_run(run, tmp_path):
    """vae stage: resuming from the step-3 checkpoint gives bit-identical step-6 weights."""
    from safetensors.torch import load_file

    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("unet", "freq-attn"))
    shutil.rmtree(copy / "vae" / "ckpt-0000006")
    (copy / "vae" / "latest.json").write_text(json.dumps({"checkpoint": "ckpt-0000003", "step": 3}))
    summary = train(TrainArgs(stage="vae", config="tiny", steps=6, out=copy, pairs=2, norm_samples=4,
                              log_every=1, ckpt_every=3, data_seed=1, resume=True), log=lambda m: None)
    assert summary["start"] == 3
    # the summary describes the whole run: its first loss and the time of both parts
    whole = json.loads((run / "vae" / "summary.json").read_text())
    assert summary["first_loss"] == whole["first_loss"]
    part1 = json.loads((copy / "vae" / "ckpt-0000003" / "state.json").read_text())["run_seconds"]
    assert summary["seconds"] == pytest.approx(part1 + summary["part_seconds"], abs=0.11)
    a = load_file(str(run / "vae" / "ckpt-0000006" / "model.safetensors"))
    b = load_file(str(copy / "vae" / "ckpt-0000006" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len((copy / "vae" / "loss.csv").read_text().strip().splitlines()) == 7
    with pytest.raises(GidError, match="--resume"):
        train(TrainArgs(stage="vae", config="tiny", steps=6, out=copy, pairs=2, norm_samples=4), log=lambda m: None)
    with pytest.raises(GidError, match=r"--data-seed 1 \(not 2\)"):  # other pairs than the checkpoint's
        train(TrainArgs(stage="vae", config="tiny", steps=6, out=copy, pairs=2, norm_samples=4, data_seed=2,
                        resume=True), log=lambda m: None)


def test_real_clips_join_the_training_pairs(tmp_path):
    """``--real``: the cached pairs drawn from a real clip are its start frame (or its mirror) with
    the motion `extract` finds in it; the key of the cache names the clip; the held-out evaluation
    clip is refused by content, whatever its name."""
    from gid.gid_tools.bench import synthetic_clip
    from gid.gid_tools.motion_prior.data import real_pairs
    from gid.gid_tools.motion_prior.evaluate import HELD_OUT_REAL
    from gid.gid_tools.motion_prior.models import get_config
    from gid.gid_tools.motion_prior.train import PairCache, real_data_key
    from gid.gid_engine.motion.normalization import FrequencyNormalizer

    config = get_config("tiny")
    clip = synthetic_clip(tmp_path / "sway.avi", width=config.width * 2, height=config.height * 2)
    norm = FrequencyNormalizer(np.ones(config.num_frequencies, dtype=np.float32))
    cache_file = tmp_path / "pairs.pt"
    cache = PairCache.build(4, config, norm, seed=0, log=lambda m: None, cache_file=cache_file,
                            real=(str(clip),), real_fraction=1.0)
    (image, volume), = real_pairs([clip], every=10, width=config.width, height=config.height,
                                  k=config.num_frequencies)
    want = torch.from_numpy(image.transpose(2, 0, 1) * 2.0 - 1.0).half()
    for cached in cache.images:  # every pair is the real one, some flipped left-right
        assert min(float((cached - want).abs().max()), float((cached - want.flip(-1)).abs().max())) < 1e-3
    moving = float(np.abs(volume.coeffs).max())
    assert moving > 0.5  # the clip's sinusoids were found
    expected = float(np.abs(norm.normalize(volume.coeffs)).max())  # eq. 4: sign * sqrt(|c| / s)
    assert float(cache.volumes.float().abs().max()) == pytest.approx(expected, rel=1e-2)
    assert torch.load(cache_file)["real"] == real_data_key((str(clip),), 1.0)
    synthetic = PairCache.build(4, config, norm, seed=0, log=lambda m: None, cache_file=cache_file)
    assert not torch.equal(synthetic.images, cache.images)  # another key: rebuilt, not reused
    v2 = PairCache.build(4, config, norm, seed=0, log=lambda m: None, cache_file=cache_file, split="train_v2")
    assert v2.split == "train_v2" and not torch.equal(v2.images, synthetic.images)  # other stills: rebuilt

    renamed = tmp_path / "my_trees.avi"
    shutil.copyfile(HELD_OUT_REAL, renamed)
    common = dict(stage="vae", config="tiny", steps=1, pairs=2, norm_samples=4)
    with pytest.raises(GidError, match="holds out"):
        train(TrainArgs(out=tmp_path / "run", real=(str(renamed),), **common), log=lambda m: None)
    from gid.gid_engine.repo_data import eval_only_clips

    for held_out in eval_only_clips():  # the evaluation-only sample clips are refused the same way
        copy = tmp_path / f"mine{held_out.suffix}"
        shutil.copyfile(held_out, copy)
        with pytest.raises(GidError, match=f"held-out clip {held_out.name}"):
            train(TrainArgs(out=tmp_path / "run", real=(str(copy),), **common), log=lambda m: None)
    with pytest.raises(GidError, match="not found"):
        train(TrainArgs(out=tmp_path / "run", real=(str(tmp_path / "typo.avi"),), **common), log=lambda m: None)
    assert not (tmp_path / "run").exists()  # refused before anything was written
    # a later stage of a run must see the data its earlier stages saw
    train(TrainArgs(out=tmp_path / "mixed", real=(str(clip),), **common), log=lambda m: None)
    with pytest.raises(GidError, match="other real clips"):
        train(TrainArgs(out=tmp_path / "mixed", **{**common, "stage": "unet"}), log=lambda m: None)
    # ... and the stills they saw
    with pytest.raises(GidError, match="still set v1"):
        train(TrainArgs(out=tmp_path / "mixed", real=(str(clip),), stills="v2", **{**common, "stage": "unet"}),
              log=lambda m: None)


def test_later_stage_needs_the_earlier_one(tmp_path):
    with pytest.raises(GidError, match="train it first"):
        train(TrainArgs(stage="unet", config="tiny", steps=1, out=tmp_path / "r", pairs=1, norm_samples=2),
              log=lambda m: None)


# ----------------------------------------------------------------------------- weights
def test_weights_round_trip(weights, run):
    index = json.loads((weights / "model_index.json").read_text())
    assert (index["format"], index["version"], index["kind"]) == ("gid.model", 2, "motion_prior")
    assert index["config"]["name"] == "tiny" and {"sample", "torch_weights"} <= set(index["capabilities"])
    assert index["denoiser_kind"] == "frequency_coordinated"
    assert {f["name"] for f in index["files"]} == {"vae.safetensors", "denoiser.safetensors", "normalization.json"}
    assert index["training"]["vae_steps"] == 6 and index["training"]["freq_attn_steps"] == 2
    assert sum(f["bytes"] for f in index["files"]) <= 60 * MiB
    assert all(f.stat().st_size <= 16 * MiB for f in weights.iterdir())
    pipe = W.load_weights(weights)
    from safetensors.torch import load_file

    saved = load_file(str(run / "freq-attn" / "ckpt-0000002" / "model.safetensors"))
    got = pipe.denoiser.state_dict()
    assert all(torch.equal(saved[k], got[k]) for k in saved)
    img = textured_image(160, 256, seed=1)
    a = pipe(img, steps=2, seed=3)
    b = W.load_weights(weights)(img, steps=2, seed=3)
    assert np.array_equal(a.coeffs, b.coeffs)


def test_sharded_state_dict_round_trip(tmp_path):
    state = {"big": torch.arange(10_000, dtype=torch.float32).reshape(100, 100), "small": torch.ones(3),
             "mid": torch.randn(2000)}
    names = W.save_state_dict(state, tmp_path, "m", max_bytes=16_000)
    assert len(names) > 2 and names[0] == f"m-00001-of-{len(names):05d}.safetensors"
    back = W.load_state_dict(tmp_path, names)
    assert back.keys() == state.keys() and all(torch.equal(back[k], state[k]) for k in state)
    assert W.save_state_dict(state, tmp_path, "one") == ["one.safetensors"]


def test_corrupt_weight_files_give_one_line_errors(weights, tmp_path):
    w = _copy(weights, tmp_path)
    target = w / "denoiser.safetensors"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip a byte
    target.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"^weights file denoiser.safetensors is corrupt \(checksum mismatch\)$"):
        W.load_weights(w)
    target.write_bytes(bytes(data[: len(data) // 3]))  # truncate
    with pytest.raises(FormatError, match=r"weights file denoiser.safetensors is truncated"):
        W.load_weights(w)
    target.unlink()
    with pytest.raises(FormatError, match="denoiser.safetensors is missing"):
        W.load_weights(w)
    (w / "model_index.json").write_text("{not json")
    with pytest.raises(FormatError, match="model_index.json is corrupt"):
        W.load_weights(w)


def test_an_index_of_another_version_or_kind_is_refused(weights, tmp_path):
    w = _copy(weights, tmp_path)
    index = json.loads((w / "model_index.json").read_text())
    (w / "model_index.json").write_text(json.dumps({**index, "version": 99}))
    with pytest.raises(FormatError, match=r"^the learned motion model in .* has index version 99; this gid reads \d+$"):
        W.read_index(w)
    (w / "model_index.json").write_text(json.dumps({**index, "format": "other"}))
    with pytest.raises(FormatError, match=r"is not a gid motion_prior index$"):
        W.read_index(w)
    (w / "model_index.json").write_text(json.dumps({**index, "kind": "renderer"}))
    with pytest.raises(FormatError, match=r"is not a gid motion_prior index \(it is 'renderer'\)$"):
        W.read_index(w)
    (w / "model_index.json").unlink()
    with pytest.raises(MissingWeightsError, match="the learned motion model is not installed"):
        W.read_index(w)


def test_mismatched_weights_are_detected(weights, tmp_path):
    w = _copy(weights, tmp_path)
    index = json.loads((w / "model_index.json").read_text())
    index["config"]["vae"]["block_out_channels"] = [8, 8, 16, 32]  # the files hold another model
    (w / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(FormatError, match="does not match the model config"):
        W.load_weights(w)


def test_error_messages_are_one_line_in_the_cli(weights, tmp_path, capsys):
    w = _copy(weights, tmp_path)
    (w / "vae.safetensors").write_bytes(b"\0" * 10)
    img = tmp_path / "still.png"
    from gid.exporters.opencv import cv2

    cv2.imwrite(str(img), (textured_image(40, 64) * 255).astype(np.uint8))
    assert main(["predict", str(img), "-o", str(tmp_path / "m.gidsv"), "--weights", str(w)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gid: error: weights file vae.safetensors is") and "\n" not in err


# ----------------------------------------------------------------------------- predict
def test_predict_motion_without_weights(tmp_path):
    image = from_array(textured_image(40, 64))
    assert not weights_available(tmp_path)
    with pytest.raises(MissingWeightsError, match="not installed"):
        predict_motion(image, weights_dir=tmp_path)


def test_predict_motion_with_weights(weights):
    image = from_array(textured_image(125, 200, seed=4))  # the model's aspect, 1.6
    vol = predict_motion(image, seed=1, steps=2, device="cpu", weights_dir=weights)
    assert vol.coeffs.shape == (16, 4, 160, 256)
    assert (vol.fps, vol.num_frames, vol.source) == (30.0, 150, "predicted")
    assert vol.extra["image_size"] == [200, 125] and vol.extra["steps"] == 2
    again = predict_motion(image, seed=1, steps=2, device="cpu", weights_dir=weights)
    assert np.array_equal(vol.coeffs, again.coeffs)
    # another aspect (4:3): the motion comes back in the image's aspect, ready to render
    square = predict_motion(from_array(textured_image(60, 80, seed=4)), seed=1, steps=2, weights_dir=weights)
    assert square.coeffs.shape == (16, 4, 160, 213) and square.extra["model_size"] == [256, 160]
    with pytest.raises(GidError):
        predict_motion(image, steps=0, weights_dir=weights)


def test_cli_predict_and_eval(weights, tmp_path, capsys):
    from gid.exporters.opencv import cv2
    from gid.gid_engine.motion.sv_file import load_spectral_volume

    img = tmp_path / "still.png"
    cv2.imwrite(str(img), (textured_image(80, 128, seed=2) * 255).astype(np.uint8))
    out = tmp_path / "motion.gidsv"
    assert main(["predict", str(img), "-o", str(out), "--weights", str(weights), "--steps", "2", "--seed", "3"]) == 0
    vol = load_spectral_volume(out)
    assert vol.coeffs.shape == (16, 4, 160, 256)
    assert main(["predict", str(img), "-o", str(out), "--weights", str(weights)]) == 2  # exists, no --overwrite
    capsys.readouterr()
    js = tmp_path / "eval.json"
    assert main(["eval", "--weights", str(weights), "--n", "1", "--real", "--steps", "2", "--seam", "1",
                 "--seam-steps", "2", "--json", str(js)]) == 0
    table = capsys.readouterr().out
    assert "| synthetic (eval split) (n=1) | prior (tiny, 2 steps) |" in table
    assert "no motion" in table and "static flow (oracle)" in table and "mean L_g" in table
    res = json.loads(js.read_text())
    zeros = res["datasets"]["synthetic (eval split)"]["methods"]["no motion"]
    assert zeros["amplitude_ratio"] == 0.0 and zeros["seam_px"] == 0.0
    oracle = res["datasets"]["synthetic (eval split)"]["methods"]["static flow (oracle)"]
    assert oracle["magnitude_corr"] > 0.5
    # --n 0: the real clips alone (seed sweeps on the held-out clip); nothing at all is an error
    from gid.gid_tools.bench import synthetic_clip

    clip = synthetic_clip(tmp_path / "sway.avi", width=512, height=320)
    assert main(["eval", "--weights", str(weights), "--n", "0", "--real", str(clip), "--steps", "2",
                 "--json", str(js)]) == 0
    table = capsys.readouterr().out
    assert "synthetic" not in table and "| real (sway.avi) (n=1) | prior (tiny, 2 steps) |" in table
    assert list(json.loads(js.read_text())["datasets"]) == ["real (sway.avi)"]
    assert main(["eval", "--weights", str(weights), "--n", "0", "--real", str(tmp_path / "none.avi")]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    # --repeats: several draws per pair; the prior's row gives mean ± sd over them
    assert main(["eval", "--weights", str(weights), "--n", "1", "--real", "--steps", "2", "--seam", "0",
                 "--repeats", "3", "--json", str(js)]) == 0
    table = capsys.readouterr().out
    assert "| synthetic (eval split) (n=1, 3 draws) | prior (tiny, 2 steps) |" in table and " ± " in table
    d = json.loads(js.read_text())["datasets"]["synthetic (eval split)"]
    assert d["repeats"] == 3 and d["prior_sd"]["spectrum_log_err"] > 0  # other seeds, other samples
    first = res["datasets"]["synthetic (eval split)"]["methods"]["no motion"]  # baselines do not repeat
    assert d["methods"]["no motion"] == first
    assert main(["eval", "--weights", str(weights), "--n", "1", "--real", "--repeats", "0"]) == 2
    # --stills v2: the synthetic pairs come from its four held-out stills; --static-flow names the baseline's weights
    assert main(["eval", "--weights", str(weights), "--n", "1", "--real", "--steps", "2", "--seam", "0",
                 "--stills", "v2", "--json", str(js)]) == 0
    assert "| synthetic (eval_v2 split) (n=1) |" in capsys.readouterr().out
    assert list(json.loads(js.read_text())["datasets"]) == ["synthetic (eval_v2 split)"]
    assert main(["eval", "--weights", str(weights), "--n", "1", "--real", "--steps", "2", "--seam", "0",
                 "--static-flow", str(tmp_path / "no_such_weights")]) == 2
    assert "no static-flow weights" in capsys.readouterr().err


def test_simulated_views_join_the_training_pairs(tmp_path):
    """``--sim``: the cached pairs drawn from simulated shards are their stills (or mirrors) with
    their exact volumes, normalized; the cache's key names the shards, so other shards rebuild it."""
    from gid.gid_tools.motion_prior.models import get_config
    from gid.gid_tools.motion_prior.train import PairCache
    from gid.gid_tools.simdata.shards import View, write_shard
    from gid.gid_engine.motion.normalization import FrequencyNormalizer
    from gid.gid_engine.motion.spectral_volume import SpectralVolume

    config = get_config("tiny")
    k, h, w = config.num_frequencies, config.height, config.width
    rng = np.random.default_rng(0)
    views = [View(rng.random((h, w, 3)).astype(np.float32),
                  SpectralVolume(rng.normal(0, 1, (k, 4, h, w)).astype(np.float32))) for _ in range(2)]
    folder = tmp_path / "sim"
    folder.mkdir()
    write_shard(folder / "train_00000000.npz", views, {"kind": "tree", "seed": 0}, size=(w, h), k=k, fps=30.0,
                num_frames=150)
    norm = FrequencyNormalizer(np.ones(k, dtype=np.float32))
    cache_file = tmp_path / "pairs.pt"
    cache = PairCache.build(6, config, norm, seed=0, log=lambda m: None, cache_file=cache_file, sim=(str(folder),),
                            sim_fraction=1.0)
    stills = [torch.from_numpy(np.rint(v.image * 255).transpose(2, 0, 1) / 255 * 2.0 - 1.0).half() for v in views]
    for cached in cache.images:  # every pair is one of the two views, some mirrored
        assert min(float((cached - s).abs().max()) for v in stills for s in (v, v.flip(-1))) < 2e-3
    peak = max(float(np.abs(norm.normalize(v.volume.coeffs)).max()) for v in views)
    assert float(cache.volumes.float().abs().max()) == pytest.approx(peak, rel=2e-2)
    first_key = torch.load(cache_file)["real"]
    write_shard(folder / "train_00000001.npz", views[:1], {"kind": "tree", "seed": 1}, size=(w, h), k=k, fps=30.0,
                num_frames=150)
    PairCache.build(6, config, norm, seed=0, log=lambda m: None, cache_file=cache_file, sim=(str(folder),),
                    sim_fraction=1.0)
    key = torch.load(cache_file)["real"]
    assert key[-1][0] == "sim" and key != first_key  # a third view: the cache was rebuilt
