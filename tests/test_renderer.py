"""The neural renderer (issue 5): shapes, the coverage gate, torch/ONNX parity, overfitting,
clear errors, the training data's exactness, and the metrics of ``gid eval render``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gid.gid_engine.errors import FormatError, InputError
from gid.gid_tools.splat_torch import FULL_COVERAGE, softmax_splat
from gid.gid_engine.errors import MissingWeightsError
from gid.gid_tools.renderer.checkpoint import load_renderer, save_renderer
from gid.gid_engine.rendering.neural_config import get_config
from gid.gid_tools.renderer.data import INVERSION_ITERATIONS, _backward_warp, stack_triple, synthetic_triple
from gid.gid_tools.renderer.evaluate import psnr, ssim
from gid.gid_tools.renderer.neural_renderer import NeuralRenderer
from gid.gid_tools.renderer.onnx_export import export_renderer_onnx
from gid.gid_engine.rendering.neural import FRAME_ONNX, OnnxNeuralRenderer
from gid.gid_tools.renderer.torch_runtime import TorchNeuralRenderer


def random_model(seed: int = 0, name: str = "tiny") -> NeuralRenderer:
    """An untrained renderer whose zero-initialised output layer is made non-zero (so it acts)."""
    torch.manual_seed(seed)
    model = NeuralRenderer(get_config(name))
    torch.nn.init.normal_(model.synthesis.out.weight, std=0.05)
    return model.eval()


def moving_square(h: int = 40, w: int = 56, shift: float = 6.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    image = rng.random((3, h, w), dtype=np.float32)
    flow = np.zeros((2, h, w), np.float32)
    flow[0, 10:30, 15:35] = shift
    z = np.abs(flow).sum(0) / 2
    return image, flow, z


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("renderer")
    save_renderer(random_model(), folder)
    export_renderer_onnx(folder)
    return folder


def test_shapes_and_pyramid():
    model = random_model()
    image = torch.rand(2, 3, 48, 64)
    f0, f1, f2 = model.encode(image)
    assert f0.shape == (2, 3 + 4, 48, 64) and f1.shape == (2, 8, 24, 32) and f2.shape == (2, 8, 12, 16)
    assert torch.equal(f0[:, :3], image)  # level 0 carries the RGB the base frame is splatted from
    out = model(image, torch.randn(2, 2, 48, 64), torch.rand(2, 1, 48, 64))
    assert out.shape == (2, 3, 48, 64) and torch.isfinite(out).all()


def test_covered_pixels_are_the_plain_splat_and_zero_motion_is_the_still():
    model = random_model()
    image, flow, z = (torch.from_numpy(a) for a in moving_square())
    x = (image[None], flow[None], z[None, None])
    with torch.no_grad():
        neural, plain = model(*x), model.plain(*x)
        still = model(image[None], torch.zeros_like(flow)[None], torch.zeros_like(z)[None, None])
    assert torch.equal(still, image[None])  # frame 0 of an anchored loop is the still, bit for bit
    diff = (neural - plain).abs().amax(dim=1)[0]
    assert float(diff.max()) > 1e-3  # the network acts (on the hole the square leaves behind) ...
    assert float(diff[:, :8].max()) == 0.0  # ... and nowhere near it, where nothing moves


@pytest.mark.parametrize("size,channels", [((40, 56), 3), ((37, 50), 3), ((37, 50), 4), ((33, 41), 1)])
def test_onnx_matches_torch(exported, size, channels):
    h, w = size
    rng = np.random.default_rng(1)
    image = rng.random((channels, h, w), dtype=np.float32)
    flow = (rng.standard_normal((2, h, w)) * 3).astype(np.float32)
    z = np.linalg.norm(flow, axis=0).astype(np.float32)
    onnx_out = OnnxNeuralRenderer(exported, device="cpu")(image, flow, z)
    torch_out = TorchNeuralRenderer(exported)(image, flow, z)
    assert onnx_out.shape == (channels, h, w)
    np.testing.assert_allclose(onnx_out, torch_out, atol=2e-5)
    assert np.abs(onnx_out - image).max() > 0.01  # it did move things


def test_encoder_runs_once_per_still(exported, monkeypatch):
    r = OnnxNeuralRenderer(exported, device="cpu")
    calls = []
    original = r._encode
    monkeypatch.setattr(r, "_encode", lambda rgb: calls.append(1) or original(rgb))
    image, flow, z = moving_square()
    for s in (0.0, 1.0, 2.0):
        r(image, flow * s, z)
    assert len(calls) == 1
    r(image * 0.5, flow, z)  # another still
    assert len(calls) == 2


def test_wrong_shapes_and_damaged_files_give_clear_errors(exported, tmp_path):
    r = OnnxNeuralRenderer(exported, device="cpu")
    image, flow, z = moving_square()
    with pytest.raises(InputError, match="renderer inputs"):
        r(image, flow[:, :-1], z)
    with pytest.raises(InputError, match="renderer inputs"):
        r(image, flow, z[None])
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in exported.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    data = bytearray((broken / FRAME_ONNX).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (broken / FRAME_ONNX).write_bytes(bytes(data))
    with pytest.raises(FormatError, match="checksum"):
        OnnxNeuralRenderer(broken, device="cpu")
    with pytest.raises(MissingWeightsError, match="not installed"):
        OnnxNeuralRenderer(tmp_path / "nothing", device="cpu")
    doc = json.loads((broken / "renderer.json").read_text())
    doc["config"]["widths"] = [4, 4, 4]
    (broken / "renderer.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="does not fit"):
        load_renderer(broken)


def test_tiny_renderer_overfits_a_pair():
    """A textured square slides over a flat background: the plain renderer fills the hole it leaves
    with a blur of square and background, the truth is background. A tiny renderer trained on this
    one pair cuts the error in the hole >= 5x (the rest of the frame it may not touch)."""
    torch.manual_seed(0)
    h, w, shift = 48, 64, 8
    rng = np.random.default_rng(0)
    bg = np.full((3, h, w), 0.3, np.float32)
    tex = rng.random((3, 20, 20), dtype=np.float32)
    image, target = bg.copy(), bg.copy()
    image[:, 14:34, 20:40] = tex
    target[:, 14:34, 20 + shift:40 + shift] = tex
    flow = np.zeros((2, h, w), np.float32)
    flow[0, 14:34, 20:40] = shift
    z = np.linalg.norm(flow, axis=0)[None]
    x = [torch.from_numpy(a[None]) for a in (image, flow, z, target)]
    model = NeuralRenderer(get_config("tiny"))
    _, _, coverage = softmax_splat(*x[:3])
    hole = (coverage < FULL_COVERAGE).float()
    assert float(hole.mean()) > 0.02
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def hole_error() -> float:
        with torch.no_grad():
            return float(((model(*x[:3]) - x[3]).abs() * hole).sum() / hole.sum())

    first = hole_error()
    for _ in range(300):
        loss = (model(*x[:3]) - x[3]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert hole_error() < first / 5, (first, hole_error())


def test_synthetic_triples_are_exact_and_deterministic():
    a, b = synthetic_triple(5, width=96, height=64), synthetic_triple(5, width=96, height=64)
    for u, v in zip(a.stacked(), b.stacked()):
        assert np.array_equal(u, v)
    assert a.image.shape == (3, 64, 96) and a.flow.shape == (2, 64, 96) and a.z.shape == (1, 64, 96)
    assert np.abs(a.flow).max() > 1.0 and np.abs(a.target - a.image).max() > 0.05
    # the backward warp inverts a smooth forward field: sampling the forward-moved grid comes back
    h, w = 32, 48
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.stack([3 * np.sin(yy / 9), 2 * np.cos(xx / 11)]).astype(np.float32)
    layer = np.stack([xx, yy, xx * 0], axis=2)  # each pixel holds its own source coordinates
    warped, _ = _backward_warp(layer, d)
    # warped(q) = source p with p + d(p) = q: check the fixed point away from the borders
    p_x, p_y = warped[..., 0], warped[..., 1]
    import cv2

    dx = cv2.remap(d[0], p_x, p_y, cv2.INTER_LINEAR)
    err = np.abs(p_x + dx - xx)[6:-6, 6:-6]
    assert INVERSION_ITERATIONS >= 8 and err.max() < 0.05


def test_metrics():
    rng = np.random.default_rng(0)
    a = rng.random((3, 40, 40)).astype(np.float32)
    assert ssim(a, a) == pytest.approx(1.0)
    assert psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-3)
    mask = np.zeros((1, 40, 40), np.float32)
    mask[:, :10] = 1
    b = a.copy()
    b[:, :10] += 0.01
    assert psnr(b, a, mask) == pytest.approx(40.0, abs=1e-3) and psnr(b, a) > 45
    noisy = [ssim(a, np.clip(a + rng.normal(0, s, a.shape), 0, 1).astype(np.float32)) for s in (0.02, 0.1, 0.3)]
    assert 1.0 > noisy[0] > noisy[1] > noisy[2] and noisy[2] < 0.8


def test_paired_gain_interval_follows_the_blocks():
    """``paired_gain``: a constant lead gives that lead and an interval of zero width; a lead that
    changes sign between halves of a clip gives an interval that spans zero, wider than the one single
    triples resampled would give; the same scores give the same interval."""
    from gid.gid_tools.renderer.evaluate import paired_gain

    splat = np.linspace(20.0, 30.0, 40)
    same = paired_gain(splat + 0.25, splat)
    assert same["mean"] == pytest.approx(0.25) and same["lo"] == pytest.approx(0.25) == same["hi"]
    assert same["ahead"] == 1.0 and same["n"] == 40
    lead = np.where(np.arange(40) < 20, 0.3, -0.2)  # ahead in the first half of the clip, behind in the second
    blocks = paired_gain(splat + lead, splat)
    assert blocks["mean"] == pytest.approx(0.05) and blocks["ahead"] == 0.5
    assert blocks["lo"] < 0.0 < blocks["hi"]
    single = paired_gain(splat + lead, splat, blocks=40)
    assert blocks["hi"] - blocks["lo"] > single["hi"] - single["lo"] > 0
    assert paired_gain(splat + lead, splat) == blocks


@pytest.mark.parametrize("channels", [3, 4, 1])
def test_batched_frames_are_the_per_frame_frames(exported, channels):
    """``render_frames`` hands a GPU renderer several times per call (``batch_size``); the frames
    must not change, whatever the channels, and a batch that does not divide the count is fine."""
    from gid.gid_engine.media.imaging import from_array
    from gid.gid_engine.rendering.render import Timing, render_frames
    from conftest import random_volume

    rng = np.random.default_rng(3)
    image = from_array(rng.random((40, 56, channels), dtype=np.float32))
    sv = random_volume(h=40, w=56, seed=4).scaled(3.0)
    one = TorchNeuralRenderer(exported, batch_size=1)
    many = TorchNeuralRenderer(exported, batch_size=4)
    assert TorchNeuralRenderer(exported).batch_size == 1  # CPU default
    timing = Timing(frames=7)
    a = list(render_frames(image, sv, one, timing))
    b = list(render_frames(image, sv, many, timing))
    assert len(a) == len(b) == 7 and b[0].shape == image.pixels.shape
    assert max(float(np.abs(x - y).max()) for x, y in zip(a, b)) < 1e-5
    assert max(float(np.abs(x - a[0]).max()) for x in a[1:]) > 0.01  # frames do differ over time
    # the ONNX renderer takes batches too (one frame per graph call) and agrees
    onnx = OnnxNeuralRenderer(exported, device="cpu")
    flows = np.stack([np.full((2, 40, 56), s, np.float32) for s in (0.0, 1.5, -2.0)])
    z = np.ones((40, 56), np.float32)
    chw = np.ascontiguousarray(image.pixels.transpose(2, 0, 1))
    got = onnx.render_batch(chw, flows, z)
    assert got.shape == (3, chw.shape[0], 40, 56)
    for f, frame in zip(flows, got):
        np.testing.assert_allclose(frame, one(chw, f, z), atol=2e-5)
    with pytest.raises(InputError, match="flows must be"):
        onnx.render_batch(chw, flows[0], z)


def _numbered_clip(folder: Path, n: int) -> Path:
    """A video whose frame i is flat grey 8 i / 255, so a triple tells which frames it holds."""
    import cv2

    folder.mkdir()
    path = folder / "numbered.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    for i in range(n):
        writer.write(np.full((24, 32, 3), i * 8, np.uint8))
    writer.release()
    return path


def test_real_pairs_stay_inside_their_part_of_the_clip(tmp_path):
    """Training pairs never reach into the held-out window or its margin; evaluation pairs stay in it."""
    from gid.gid_tools.renderer.data import ClipSplit, real_triples

    clip = _numbered_clip(tmp_path / "clip", 12)
    split = ClipSplit((4, 7), margin=1, max_gap=2)

    def frames(part: str) -> list[tuple[int, int]]:
        return [(round(float(t.image.mean()) * 255 / 8), round(float(t.target.mean()) * 255 / 8))
                for t in real_triples(clip, split=part, held_out=split, width=32)]

    assert frames("train") == [(0, 1), (0, 2), (1, 2), (8, 9), (8, 10), (9, 10), (9, 11), (10, 11)]
    assert frames("eval") == [(4, 5), (4, 6), (5, 6)]
    t = real_triples(clip, split="eval", held_out=split, width=32)[0]
    assert t.image.shape == (3, 24, 32)  # height from the clip's aspect ratio (rounded to a multiple of 4)
    with pytest.raises(InputError, match="no frame pairs"):
        real_triples(clip, split="train", held_out=ClipSplit((0, 12)), width=32)


def test_shipped_clips_keep_the_splits_of_the_model_card():
    from gid.gid_tools.renderer.data import CLIPS_FILE, clip_split
    from gid.gid_tools.renderer.train import DEFAULT_REAL

    tree = clip_split("samples/tree.avi", 68)
    assert tree.segments("train", 68) == [(0, 48), (68, 68)] and tree.segments("eval", 68) == [(48, 68)]
    bunny = clip_split("bigbuckbunny.mp4", 132)
    assert bunny.segments("train", 132) == [(0, 26), (58, 132)] and bunny.max_gap == 6
    assert clip_split("unlisted.mp4", 100).segments("eval", 100) == [(70, 100)]
    assert {p.name for p in DEFAULT_REAL} == set(json.loads(CLIPS_FILE.read_text()))
    assert all(p.is_file() for p in DEFAULT_REAL)


def test_evaluation_only_clips_evaluate_whole_and_never_train(tmp_path):
    """The clips ``samples/clips.json`` marks ``"train": false`` are evaluated on every frame by default,
    left out of the default training clips, and refused as training data by content before any work,
    whatever a copy is named."""
    import shutil

    from gid.gid_engine.repo_data import eval_only_clips
    from gid.gid_tools.renderer.data import clip_split
    from gid.gid_tools.renderer.evaluate import RenderEvalArgs
    from gid.gid_tools.renderer.train import RenderTrainArgs, train_renderer

    held_out = eval_only_clips()
    assert {p.name for p in held_out} == {"flower.webm", "stream_of_water.mp4"}
    assert all(p.is_file() for p in held_out)
    for clip, frames in (("flower.webm", 150), ("stream_of_water.mp4", 90)):
        split = clip_split(clip, frames)
        assert split.segments("eval", frames) == [(0, frames)] and split.max_gap == 6
        assert split.segments("train", frames) == [(0, 0), (frames, frames)]  # nothing to train on
    assert {Path(p).name for p in RenderTrainArgs().real} == {"tree.avi", "bigbuckbunny.mp4"}
    assert {Path(p).name for p in RenderEvalArgs().real} >= {"flower.webm", "stream_of_water.mp4"}
    renamed = tmp_path / "my_stream.mp4"
    shutil.copyfile(held_out[1], renamed)
    args = dict(config="tiny", steps=1, pairs=1, threads=1)
    with pytest.raises(InputError, match="evaluation-only clip stream_of_water.mp4"):
        train_renderer(RenderTrainArgs(out=tmp_path / "run", real=(str(renamed),), **args), log=lambda _m: None)
    assert not (tmp_path / "run").exists()


def test_render_training_starts_from_given_weights(tmp_path):
    """``--init-from``: the run starts at the given weights (a learning rate of ~0 keeps them),
    records where they came from, and refuses weights of another config."""
    from gid.gid_tools.renderer.train import RenderTrainArgs, train_renderer
    from gid.gid_tools.training import latest_checkpoint, load_checkpoint_model

    source = tmp_path / "source"
    save_renderer(random_model(seed=3), source)
    args = dict(config="tiny", steps=1, pairs=1, real=(), lr=1e-12, threads=1)
    summary = train_renderer(RenderTrainArgs(out=tmp_path / "warm", init_from=source, **args), log=lambda _m: None)
    assert summary["warm_start"]["from"] == str(source) and len(summary["warm_start"]["index_sha256"]) == 64
    trained = NeuralRenderer(get_config("tiny"))
    load_checkpoint_model(latest_checkpoint(tmp_path / "warm" / "render"), trained)
    expected = random_model(seed=3).state_dict()
    assert max(float((v - expected[k]).abs().max()) for k, v in trained.state_dict().items()) < 1e-6
    # resuming the finished run only to export it keeps the run's summary (losses, provenance)
    again = train_renderer(RenderTrainArgs(out=tmp_path / "warm", init_from=source, resume=True,
                                           export=tmp_path / "exported", **args), log=lambda _m: None)
    assert again == summary and math.isfinite(again["first_loss"])
    shipped = json.loads((tmp_path / "exported" / "renderer.json").read_text())["training"]
    assert shipped["warm_start"] == summary["warm_start"] and shipped["last_loss"] == summary["last_loss"]
    cold = train_renderer(RenderTrainArgs(out=tmp_path / "cold", **args), log=lambda _m: None)
    assert "warm_start" not in cold
    other = tmp_path / "small"
    save_renderer(NeuralRenderer(get_config("small")), other)
    with pytest.raises(InputError, match="config"):
        train_renderer(RenderTrainArgs(out=tmp_path / "bad", init_from=other, **args), log=lambda _m: None)


def test_render_training_data_follows_the_still_set_and_a_resume_keeps_it(tmp_path):
    """``--stills v2`` draws the synthetic triples from the v2 training stills (cached apart from
    v1's), and ``--resume`` with other data than the checkpoint's is refused before any is made."""
    from gid.gid_tools.renderer.train import RenderTrainArgs, _TripleFiller, train_renderer

    v2 = _TripleFiller(0, 96, 64, split="train_v2")(5)["triples"]
    assert np.array_equal(v2, synthetic_triple(5, split="train_v2", width=96, height=64).stacked())
    assert not np.array_equal(v2, _TripleFiller(0, 96, 64)(5)["triples"])
    args = dict(config="tiny", steps=1, pairs=1, real=(), threads=1, stills="v2")
    summary = train_renderer(RenderTrainArgs(out=tmp_path / "run", **args), log=lambda _m: None)
    assert summary["stills"] == "v2"
    trained_on = np.load(tmp_path / "run" / "triples-0-v2.npy")[0]
    assert np.array_equal(trained_on, synthetic_triple(0, split="train_v2").stacked())
    train_renderer(RenderTrainArgs(out=tmp_path / "dis", **(args | {"stills": "v1", "extracted_flow": 1.0})),
                   log=lambda _m: None)
    trained_on = np.load(tmp_path / "dis" / "triples-0-dis1.npy")[0]
    assert np.array_equal(trained_on, synthetic_triple(0, extracted_flow=1.0).stacked())
    with pytest.raises(InputError, match=r"--extracted-flow must be in \[0, 1\], got 1.5"):
        train_renderer(RenderTrainArgs(out=tmp_path / "bad", **(args | {"extracted_flow": 1.5})), log=lambda _m: None)
    assert not (tmp_path / "bad").exists()
    for other, flag in (({"stills": "v1"}, r"--stills v2 \(not v1\)"),
                        ({"same_still": 0.5}, r"--same-still 0.0 \(not 0.5\)"),
                        ({"extracted_flow": 0.5}, r"--extracted-flow 0.0 \(not 0.5\)"),
                        ({"real_weight": 0.5}, r"--real-weight 0.25 \(not 0.5\)")):
        with pytest.raises(InputError, match=flag):
            train_renderer(RenderTrainArgs(out=tmp_path / "run", resume=True, **(args | other)), log=lambda _m: None)


def test_extracted_flow_triples_carry_what_real_clips_carry():
    """``--extracted-flow``: same frames, the motion replaced by gid's own extraction between them
    (close to the exact motion where the picture has texture), ``W = ||F||``; drawn from its own
    random stream, so the other triples stay exactly as they were."""
    from gid.gid_tools.renderer.data import with_extracted_flow

    exact = synthetic_triple(2, width=128, height=96)
    got = with_extracted_flow(exact)
    assert np.array_equal(got.image, exact.image) and np.array_equal(got.target, exact.target)
    assert np.allclose(got.z[0], np.linalg.norm(got.flow, axis=0))
    moving = np.linalg.norm(exact.flow, axis=0) > 1.0
    err = np.linalg.norm(got.flow - exact.flow, axis=0)
    assert moving.mean() > 0.1 and np.median(err[moving]) < 0.5 * np.median(np.linalg.norm(exact.flow, axis=0)[moving])
    assert not np.array_equal(got.flow, exact.flow)
    always = synthetic_triple(2, width=128, height=96, extracted_flow=1.0)
    assert np.array_equal(always.flow, got.flow)
    some = [synthetic_triple(i, width=64, height=48, extracted_flow=0.5) for i in range(8)]
    plain = [synthetic_triple(i, width=64, height=48) for i in range(8)]
    swapped = [not np.array_equal(a.flow, b.flow) for a, b in zip(some, plain)]
    assert 0 < sum(swapped) < 8
    assert all(np.array_equal(a.target, b.target) for a, b in zip(some, plain))


def test_eval_scores_the_held_out_frames_with_exact_and_with_extracted_flow(tmp_path):
    """``gid eval render``: the held-out synthetic frames of the chosen still set, once with their
    exact motion and once with the extracted flow real clips carry (fewer holes: the extraction
    smooths over what is revealed); the paired gain over the splat, and with ``--against`` over
    another renderer on the same triples."""
    from gid.gid_tools.renderer.evaluate import RenderEvalArgs, run_render_eval, table

    save_renderer(random_model(seed=1), tmp_path / "w")
    results = run_render_eval(RenderEvalArgs(weights=tmp_path / "w", n=3, real=(), stills="v2",
                                             json_path=str(tmp_path / "e.json")), log=lambda _m: None)
    assert list(results) == ["synthetic", "synthetic, extracted flow"]
    assert json.loads((tmp_path / "e.json").read_text()).keys() == results.keys()
    exact, extracted = results["synthetic"]["splat"], results["synthetic, extracted flow"]["splat"]
    assert exact["n"] == extracted["n"] == 3 and exact["psnr"] != extracted["psnr"]
    assert extracted["hole_fraction"] < exact["hole_fraction"]
    gain = results["synthetic"]["gain"]["psnr_disoccluded"]  # paired: the mean difference of the two rows' triples
    assert gain["n"] == 3 and gain["lo"] <= gain["mean"] <= gain["hi"]
    assert gain["mean"] == pytest.approx(results["synthetic"]["neural"]["psnr_disoccluded"]
                                         - results["synthetic"]["splat"]["psnr_disoccluded"], abs=1e-9)
    v1 = run_render_eval(RenderEvalArgs(weights=tmp_path / "w", n=3, real=()), log=lambda _m: None)
    assert v1["synthetic"]["splat"]["psnr"] != exact["psnr"]  # --stills picks the held-out stills
    # --against: another renderer scored on the same triples, and the paired gain over it
    save_renderer(random_model(seed=2), tmp_path / "other")
    lines: list[str] = []
    both = run_render_eval(RenderEvalArgs(weights=tmp_path / "w", n=3, real=(), stills="v2",
                                          against=tmp_path / "other"), log=lines.append)
    row = both["synthetic"]
    assert row["neural"] == results["synthetic"]["neural"] and row["splat"] == results["synthetic"]["splat"]
    assert row["against"]["psnr"] != row["neural"]["psnr"]
    assert row["gain_vs_against"]["psnr"]["mean"] == pytest.approx(row["neural"]["psnr"] - row["against"]["psnr"],
                                                                  abs=1e-9)
    assert "neural − against" in lines[0] and "neural − against" not in table(results)
    self_vs_self = run_render_eval(RenderEvalArgs(weights=tmp_path / "w", n=2, real=(), against=tmp_path / "w"),
                                   log=lambda _m: None)["synthetic"]["gain_vs_against"]["psnr"]
    assert self_vs_self == {"mean": 0.0, "lo": 0.0, "hi": 0.0, "ahead": 0.0, "n": 2}


def test_simulated_triples_can_carry_extracted_flow():
    """``--sim-extracted-flow P``: about that share of the simulated triples get the flow gid's extraction finds
    between their frames (``W = ||F||``), their frames unchanged; which ones is a pure function of the data seed
    and the triple's index, so share 0 leaves them bit for bit and share 1 changes every one."""
    from gid.gid_tools.renderer.data import with_extracted_flow
    from gid.gid_tools.renderer.train import with_sim_extracted_flow

    stacks = np.stack([synthetic_triple(i, width=96, height=64).stacked() for i in range(12)])
    assert with_sim_extracted_flow(stacks, 0.0, 0, "s") is stacks
    every = with_sim_extracted_flow(stacks, 1.0, 0, "s")
    assert np.array_equal(every[:, :3], stacks[:, :3]) and np.array_equal(every[:, 6:], stacks[:, 6:])
    assert np.array_equal(every[4], with_extracted_flow(stack_triple(stacks[4])).stacked())
    half = with_sim_extracted_flow(stacks, 0.5, 0, "s")
    swapped = [not np.array_equal(a[3:5], b[3:5]) for a, b in zip(half, stacks)]
    assert 0 < sum(swapped) < 12
    assert all(np.array_equal(h, e) for h, e, sw in zip(half, every, swapped) if sw)
    assert np.array_equal(with_sim_extracted_flow(stacks, 0.5, 0, "s"), half)
    other_seed = with_sim_extracted_flow(stacks, 0.5, 1, "s")
    assert not np.array_equal(other_seed, half)


def test_eval_scores_each_simulated_folder_in_a_row_of_its_own(tmp_path):
    """``gid eval render --sim A B``: the held-out triples of each folder are scored apart, named by
    folder; one folder keeps the row name of the earlier tables."""
    from gid.gid_engine.motion.spectral_volume import SpectralVolume
    from gid.gid_tools.renderer.evaluate import RenderEvalArgs, run_render_eval
    from gid.gid_tools.simdata.shards import View, write_shard

    rng = np.random.default_rng(5)
    folders = []
    for name, shift in (("near", 1.0), ("far", 3.0)):
        image = rng.random((48, 64, 3)).astype(np.float32)
        flow = np.zeros((2, 48, 64), np.float32)
        flow[0] = shift
        view = View(image, SpectralVolume(rng.normal(0, 0.5, (16, 4, 48, 64)).astype(np.float32)),
                    target=np.roll(image, int(shift), axis=1), flow=flow, target_frame=9)
        (tmp_path / name).mkdir()
        write_shard(tmp_path / name / "eval_10000000.npz", [view], {"kind": "flag", "seed": 10000000},
                    size=(64, 48), k=16, fps=30.0, num_frames=150)
        folders.append(tmp_path / name)
    save_renderer(random_model(seed=1), tmp_path / "w")
    quiet = dict(log=lambda _m: None)
    both = run_render_eval(RenderEvalArgs(weights=tmp_path / "w", n=1, real=(), sim=tuple(folders)), **quiet)
    near, far = both["simulated held-out scenes: near"], both["simulated held-out scenes: far"]
    assert near["splat"]["n"] == far["splat"]["n"] == 1 and near["splat"]["psnr"] != far["splat"]["psnr"]
    one = run_render_eval(RenderEvalArgs(weights=tmp_path / "w", n=1, real=(), sim=(folders[1],)), **quiet)
    assert one["simulated held-out scenes"]["splat"]["psnr"] == far["splat"]["psnr"]
    # --sim-extracted: the same frames scored again with the flow DIS finds between them, a row of its own
    from gid.gid_tools.renderer.checkpoint import load_renderer
    from gid.gid_tools.renderer.data import stack_triple, with_extracted_flow
    from gid.gid_tools.renderer.evaluate import evaluate_triples
    from gid.gid_tools.simdata.datasets import sim_triple_stacks

    again = run_render_eval(RenderEvalArgs(weights=tmp_path / "w", n=0, real=(), sim=(folders[1],),
                                           sim_extracted=(folders[1],)), **quiet)
    assert set(again) == {"simulated held-out scenes", "simulated held-out scenes, extracted flow"}  # n=0: no synthetic
    extracted = again["simulated held-out scenes, extracted flow"]
    assert again["simulated held-out scenes"]["splat"]["psnr"] == far["splat"]["psnr"]
    assert extracted["splat"]["n"] == 1 and extracted["splat"]["psnr"] != far["splat"]["psnr"]
    dis = with_extracted_flow(stack_triple(sim_triple_stacks(folders[1], "eval")[0]))
    assert np.median(dis.flow[0]) == pytest.approx(3.0, abs=0.5)  # DIS finds the 3 px shift, with its errors
    by_hand = evaluate_triples(load_renderer(tmp_path / "w"), [dis])
    assert extracted["splat"]["psnr"] == pytest.approx(by_hand["splat"]["psnr"], abs=1e-9)


def test_hole_weighted_loss_weighs_the_pixels_eval_scores_as_disoccluded(tmp_path):
    """``--hole-weight W``: the disoccluded pixels (the splat's coverage below ``FULL_COVERAGE``,
    dilated 2 px: the mask ``gid eval render`` scores) weigh ``1 + W`` in the L1 loss, the others 1;
    W = 0 is the plain mean. A resume with another weight, or a weight out of range, is refused."""
    from gid.gid_tools.renderer.train import RenderTrainArgs, hole_weighted_l1, train_renderer
    from gid.gid_tools.splat_torch import disocclusion_mask

    _, flow, z = moving_square()
    flow, z = torch.from_numpy(flow)[None], torch.from_numpy(z)[None, None]
    mask = disocclusion_mask(flow, z)
    _, _, coverage = softmax_splat(torch.zeros_like(z), flow, z)
    hole = (coverage < FULL_COVERAGE).float()
    # the square moves 6 px right: a 6 px wide strip behind it opens (plus the 2 px margin)
    assert int(hole.sum()) == 6 * 20 and torch.equal(mask, torch.nn.functional.max_pool2d(hole, 5, 1, 2))
    n_mask, n_all = float(mask.sum()), float(mask.numel())
    assert 6 * 20 < n_mask < 14 * 24
    pred, target = torch.zeros(1, 3, 40, 56), mask.expand(1, 3, 40, 56).clone()  # error 1 on every hole pixel
    assert float(hole_weighted_l1(pred, target, flow, z, 0.0)) == pytest.approx(n_mask / n_all, rel=1e-6)
    assert float(hole_weighted_l1(pred, target, flow, z, 4.0)) == pytest.approx(
        5 * n_mask / (n_all + 4 * n_mask), rel=1e-6)
    noise = torch.rand(1, 3, 40, 56)
    assert torch.equal(hole_weighted_l1(noise, target, flow, z, 0.0), (noise - target).abs().mean())

    args = dict(config="tiny", steps=1, pairs=1, real=(), threads=1)
    summary = train_renderer(RenderTrainArgs(out=tmp_path / "run", hole_weight=4.0, **args), log=lambda _m: None)
    assert summary["hole_weight"] == 4.0 and math.isfinite(summary["last_loss"])
    with pytest.raises(InputError, match=r"--hole-weight 4.0 \(not 0.0\)"):
        train_renderer(RenderTrainArgs(out=tmp_path / "run", resume=True, **args), log=lambda _m: None)
    with pytest.raises(InputError, match=r"--hole-weight must be in \[0, 100\], got -1"):
        train_renderer(RenderTrainArgs(out=tmp_path / "bad", hole_weight=-1.0, **args), log=lambda _m: None)
    assert not (tmp_path / "bad").exists()
