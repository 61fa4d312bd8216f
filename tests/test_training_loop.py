"""The one training loop (``gid_tools.training.TrainLoop``) and the ``gid train`` command lines."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("accelerate")

from safetensors.torch import load_file

from gid.gid_engine.cli import main
from gid.gid_tools.training import LogPoint, TrainLoop, checkpoint_to_resume, latest_checkpoint, make_accelerator


class _Killed(Exception):
    """Stands for a run killed mid-step (after its last checkpoint, before the next)."""


def _toy_run(stage_dir: Path, steps: int, resume: bool = False, killed_at: int | None = None) -> tuple[dict, list]:
    """A linear fit trained by the loop: 8 samples a step from the step's batch RNG, checkpoints every 3."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    lines: list[str] = []
    ckpt = checkpoint_to_resume(stage_dir, resume, steps)
    loop = TrainLoop(make_accelerator(), model, optimizer, stage_dir, "toy", steps=steps, lr=1e-2, data_seed=3,
                     resume=ckpt, log_every=1, ckpt_every=3, fields=["scale"], say=lines.append)

    def step_fn(step: int, rng) -> tuple[torch.Tensor, dict]:
        if step == killed_at:
            raise _Killed
        x = torch.as_tensor(rng.normal(size=(8, 4)), dtype=torch.float32)
        loss = (loop.model(x) - x.sum(dim=1, keepdim=True)).pow(2).mean()
        return loss, {"scale": f"{float(x.abs().mean()):.6f}"}

    def report(point: LogPoint) -> tuple[dict, str]:
        avg = sum(point.losses) / len(point.losses)
        return {"loss": f"{avg:.6f}", **point.infos[-1]}, f"toy: step {point.step}/{point.total} loss {avg:.5f}"

    result = loop.run(step_fn, report, {"stage": "toy"})
    summary = loop.finish(result, {"steps": result.total, "start": result.start, **result.tally,
                                   "last_loss": result.last_loss})
    return summary, lines


def _rows(loss_csv: Path) -> list[dict]:
    with open(loss_csv, newline="") as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


def _tensors(ckpt: Path) -> dict:
    return {f.name: load_file(str(f)) for f in sorted(ckpt.glob("*.safetensors"))}


def test_a_killed_and_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    whole, _ = _toy_run(tmp_path / "whole" / "toy", 8)
    with pytest.raises(_Killed):  # killed in step 6: its last checkpoint is step 3's, loss.csv has rows to 5
        _toy_run(tmp_path / "parts" / "toy", 8, killed_at=5)
    assert json.loads((tmp_path / "parts" / "toy" / "latest.json").read_text())["step"] == 3
    resumed, lines = _toy_run(tmp_path / "parts" / "toy", 100, resume=True)  # keeps the run's total, 8
    assert lines[0].startswith("toy: resumed from ") and lines[0].endswith("ckpt-0000003 at step 3")
    assert resumed["start"] == 3 and resumed["steps"] == 8 and resumed["first_loss"] == whole["first_loss"]
    assert resumed["last_loss"] == whole["last_loss"]
    a, b = latest_checkpoint(tmp_path / "whole" / "toy"), latest_checkpoint(tmp_path / "parts" / "toy")
    assert a.name == b.name == "ckpt-0000008"
    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys() == {"model.safetensors", "optimizer.safetensors"}
    for name in ta:  # weights and AdamW moments, bit for bit
        assert ta[name].keys() == tb[name].keys()
        assert all(torch.equal(ta[name][k], tb[name][k]) for k in ta[name])
    sa, sb = (json.loads((c / "state.json").read_text()) for c in (a, b))
    for s in (sa, sb):
        s.pop("run_seconds")
    assert sa == sb and list(sa) == list(sb) and sa["stage"] == "toy" and sa["steps"] == 8
    # loss.csv: the rows the killed part wrote after its checkpoint are replaced by the resumed part's
    assert _rows(tmp_path / "whole" / "toy" / "loss.csv") == _rows(tmp_path / "parts" / "toy" / "loss.csv")
    assert [r["step"] for r in _rows(tmp_path / "parts" / "toy" / "loss.csv")] == [str(i) for i in range(1, 9)]
    # nothing left to train: the run's summary stands
    again, lines = _toy_run(tmp_path / "parts" / "toy", 8, resume=True)
    assert again == resumed and lines[-1].startswith("toy: done, 0 steps")


def _prior_args(out: Path, stage: str, steps: int) -> list[str]:
    return [stage, "--config", "tiny", "--steps", str(steps), "--out", str(out), "--pairs", "2", "--norm-samples",
            "4", "--log-every", "1", "--ckpt-every", "2", "--data-seed", "1", "--threads", "1"]


def test_each_train_command_trains_a_tiny_run(tmp_path):
    out = tmp_path / "prior"
    for stage, steps in (("vae", 2), ("unet", 2), ("freq-attn", 1)):
        assert main(["train", "prior", *_prior_args(out, stage, steps)]) == 0
        assert json.loads((out / stage / "summary.json").read_text())["steps"] == steps
        assert len(_rows(out / stage / "loss.csv")) == steps
    assert main(["train", "render", "--config", "tiny", "--steps", "2", "--out", str(tmp_path / "render"),
                 "--pairs", "1", "--real", "--log-every", "1", "--threads", "1"]) == 0
    summary = json.loads((tmp_path / "render" / "render" / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["real"] == [] and summary["config"] == "tiny"
    assert main(["train", "static-flow", "--steps", "2", "--out", str(tmp_path / "sf"), "--pairs", "2", "--batch",
                 "2", "--threads", "1"]) == 0
    summary = json.loads((tmp_path / "sf" / "static-flow" / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["batch"] == 2 and summary["lr"] == 1e-3
    assert [r["step"] for r in _rows(tmp_path / "sf" / "static-flow" / "loss.csv")] == ["2"]  # every 50 and the end


def test_the_older_spelling_trains_exactly_what_the_new_one_does(tmp_path, monkeypatch):
    """``gid train vae ...`` is ``gid train prior vae ...``: the same arguments reach the trainer, and
    the same run comes out of it."""
    import gid.gid_tools.motion_prior.train as T

    seen = []
    real_train = T.train

    def spy(args, **kw):
        seen.append(args)
        torch.manual_seed(0)  # the fresh VAE's initial weights: the same for both spellings
        return real_train(args, **kw)

    monkeypatch.setattr(T, "train", spy)
    for stage in ("vae", "unet", "freq-attn"):
        assert main(["train", "prior", *_prior_args(tmp_path / "new", stage, 2)]) == 0
        assert main(["train", *_prior_args(tmp_path / "old", stage, 2)]) == 0
        new, old = seen[-2], seen[-1]
        assert {**vars(new), "out": None} == {**vars(old), "out": None} and new.stage == stage
        assert _rows(tmp_path / "new" / stage / "loss.csv") == _rows(tmp_path / "old" / stage / "loss.csv")
        ta = _tensors(latest_checkpoint(tmp_path / "new" / stage))
        tb = _tensors(latest_checkpoint(tmp_path / "old" / stage))
        assert all(torch.equal(ta[f][k], tb[f][k]) for f in ta for k in ta[f])


def test_train_flags_belong_to_their_command(tmp_path, capsys):
    """Each command takes only the flags that act on it; a wrong one is a one-line error, exit 2."""
    out = str(tmp_path / "never")
    for argv in (["train", "prior", "vae", "--steps", "1", "--out", out, "--bogus"],
                 ["train", "prior", "vae", "--steps", "1", "--out", out, "--init-from", "w"],  # vae has no warm start
                 ["train", "prior", "freq-attn", "--steps", "1", "--out", out, "--static-flow", "d"],
                 ["train", "static-flow", "--steps", "1", "--out", out, "--config", "tiny"],
                 ["train", "render", "--steps", "1", "--out", out, "--norm-samples", "4"],
                 ["train", "render", "--steps", "1", "--out", out, "--config", "paper-like"],
                 ["train", "render", "--steps", "1", "--out", out, "--log-every", "0"],
                 ["train", "prior", "--steps", "1", "--out", out],
                 ["train"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.startswith("gid: error: ") and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "never").exists()
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    listed = capsys.readouterr().out
    assert "{prior,render,static-flow}" in listed and "\n    vae" not in listed  # the older spelling is unlisted
