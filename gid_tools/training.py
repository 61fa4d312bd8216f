"""The one training loop of gid (``TrainLoop``) and what every trainer needs around it.

Each model (the motion prior's three stages, the neural renderer, the learned Eulerian network)
keeps its data and one step function; ``TrainLoop`` owns the rest, so a resumed, time-boxed or
multi-process run means the same for all of them:

* Resuming: the model and AdamW moments come from the checkpoint, the run keeps the total it was
  planned with, ``loss.csv`` keeps its rows up to the checkpoint and ``RunTally`` carries the run's
  time and first loss.
* Batches are pure functions of ``(data seed, step, process)`` (``batch_rng``, ``torch_gen``), so a
  resumed or multi-process run sees exactly the batches an uninterrupted one would have.
* Checkpoints are atomic folders of safetensors shards of at most 16 MiB (model and AdamW moments)
  plus ``state.json``; ``latest.json`` is replaced last, so ``--resume`` never sees a half-written one.
* ``StepBudget`` turns "train for S seconds" into a step count fixed before the cosine decay starts,
  so a time-boxed run on a lent GPU still ends with a full learning-rate schedule.
* accelerate: the model and optimiser are prepared, steps run under its autocast (bf16 on CUDA), the
  gradients are all-reduced across processes, and only the main process writes.
* ``fill_parallel`` builds the in-memory training sets with a process pool (the pair generators
  are numpy + OpenCV, one core each).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ..gid_engine.errors import InputError
from ..gid_engine.model_folder import sha256_file
from .motion_prior.weights import load_state_dict, save_state_dict

KEEP_CHECKPOINTS = 2
WARMUP_STEPS = 50


def batch_rng(data_seed: int, step: int, process: int = 0) -> np.random.Generator:
    return np.random.default_rng([data_seed, step, process, 0x6964])


def torch_gen(data_seed: int, step: int, process: int = 0) -> torch.Generator:
    seed = int(batch_rng(data_seed, step, process).integers(0, 2**62))
    return torch.Generator("cpu").manual_seed(seed)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = optimizer.state_dict()
    tensors = {}
    scalars: dict[str, dict] = {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"{idx}.{key}"] = val
            else:
                scalars.setdefault(str(idx), {})[key] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, val in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = val
    for idx, sc in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(sc)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(stage_dir: Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    extra: dict) -> Path:
    """Write ``stage_dir/ckpt-STEP`` atomically and point ``latest.json`` at it."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{step:07d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=stage_dir))
    try:
        model_files = save_state_dict(model.state_dict(), tmp, "model")
        opt_tensors, opt_meta = optimizer_tensors(optimizer)
        opt_files = save_state_dict(opt_tensors, tmp, "optimizer") if opt_tensors else []
        state = {"step": step, "model_files": model_files, "optimizer_files": opt_files,
                 "optimizer": opt_meta, **extra}
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        final = stage_dir / name
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    latest = stage_dir / "latest.json"
    tmp_latest = stage_dir / ".latest.json.tmp"
    tmp_latest.write_text(json.dumps({"checkpoint": name, "step": step}))
    os.replace(tmp_latest, latest)
    ckpts = sorted(p for p in stage_dir.glob("ckpt-*") if p.is_dir() and p.name != name)
    for old in ckpts[: max(0, len(ckpts) - (KEEP_CHECKPOINTS - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(stage_dir: Path) -> Optional[Path]:
    latest = stage_dir / "latest.json"
    if not latest.is_file():
        return None
    try:
        name = json.loads(latest.read_text())["checkpoint"]
    except (OSError, ValueError, KeyError):
        raise InputError(f"{latest} is corrupt; delete it to start the stage over") from None
    path = stage_dir / name
    if not (path / "state.json").is_file():
        raise InputError(f"{latest} points at a missing checkpoint {path}")
    return path


_UNRECORDED = object()  # a key neither the checkpoint nor the defaults know


def refuse_other_data(ckpt: Optional[Path], data: dict, defaults: Optional[dict] = None) -> None:
    """Refuse to resume ``ckpt`` with training data other than the data it was trained on.

    Why: a resumed run rebuilds its data from the command line; with another seed, pair count or
    still set it would silently go on training on different pairs, and its summary would credit
    the checkpoint's recipe. ``data``: what this call will train on (the keys each checkpoint
    stores); ``defaults``: what a key means when a checkpoint written before it was recorded lacks
    it (absent here too: such a key is not checked). Read before any data is made, so a wrong
    ``--resume`` costs nothing."""
    if ckpt is None:
        return
    state = json.loads((ckpt / "state.json").read_text())
    defaults = defaults or {}
    wrong = []
    for key, want in data.items():
        had = state.get(key, defaults.get(key, _UNRECORDED))
        if had is not _UNRECORDED and had != want:
            wrong.append(f"--{key.replace('_', '-')} {had} (not {want})")
    if wrong:
        raise InputError(f"{ckpt.parent} was trained with {', '.join(wrong)}; resume with the same data "
                         f"or start a new --out")


def load_checkpoint_model(ckpt: Path, model: torch.nn.Module) -> dict:
    state = json.loads((ckpt / "state.json").read_text())
    model.load_state_dict(load_state_dict(ckpt, state["model_files"]), strict=True)
    return state


def average_state_dicts(states: Sequence[dict[str, torch.Tensor]],
                        shares: Optional[Sequence[float]] = None) -> dict[str, torch.Tensor]:
    """The weight average ("model soup") of state dicts of one architecture, for networks fine-tuned from one start.

    Floating tensors are averaged in float32 and cast back; the rest (counters, integer buffers) come from the
    first. Without ``shares`` the mean is plain; with them each state counts its share (they should sum to 1)."""
    def mean(key: str) -> torch.Tensor:
        if shares is None:
            return torch.stack([s[key].float() for s in states]).mean(0)
        return sum(s[key].float() * a for s, a in zip(states, shares))

    return {k: mean(k).to(v.dtype) if v.is_floating_point() else v for k, v in states[0].items()}


def lr_at(step: int, total: int, base: float) -> float:
    if step < WARMUP_STEPS:
        return base * (step + 1) / WARMUP_STEPS
    frac = min(1.0, (step - WARMUP_STEPS) / max(1, total - WARMUP_STEPS))
    return base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * frac)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def apply_gradients(accel, optimizer: torch.optim.Optimizer, loss: torch.Tensor, params,
                    max_norm: float = 1.0) -> float:
    """One optimiser step of every gid training loop, through accelerate so that multi-GPU runs
    all-reduce the gradients and bf16 runs scale them; the norm clip keeps a warm start's first
    large gradients from undoing its weights. Returns the loss as a float (the caller logs it)."""
    optimizer.zero_grad(set_to_none=True)
    accel.backward(loss)
    accel.clip_grad_norm_(params, max_norm)
    optimizer.step()
    return float(loss.detach())


class RunTally:
    """A run's wall time and first loss across resumes, carried in every checkpoint's state.

    Why: the summary the model card and the shipped index quote should describe the run, not only
    the part after the last ``--resume``. A checkpoint written before this existed carries no tally;
    its continuation then reports what it can see (its own part)."""

    def __init__(self, state: Optional[dict] = None) -> None:
        state = state or {}
        self.before = float(state.get("run_seconds", 0.0))
        self.first_loss: Optional[float] = state.get("run_first_loss")
        self.t0 = time.perf_counter()

    def loss(self, value: float) -> None:
        if self.first_loss is None:
            self.first_loss = float(value)

    def part_seconds(self) -> float:
        return time.perf_counter() - self.t0

    def state(self) -> dict:
        """What a checkpoint stores so the next part continues the tally."""
        return {"run_seconds": round(self.before + self.part_seconds(), 1), "run_first_loss": self.first_loss}

    def summary(self) -> dict:
        """``seconds`` and ``first_loss`` of the whole run; ``part_seconds`` of this process's part."""
        part = self.part_seconds()
        return {"seconds": round(self.before + part, 1), "part_seconds": round(part, 1),
                "first_loss": self.first_loss}


def settle_summary(stage_dir: Path, summary: dict, trained: bool, write: bool = True) -> dict:
    """The run's ``summary.json``: this call's figures when it trained, else the one already on disk.

    Why: ``--resume --export`` on a finished run trains nothing; writing its summary would replace
    the real run's losses and time (which the model card and the shipped index quote) by NaN. A
    run resumed partway writes the whole run's time and first loss (``RunTally``); ``start`` says
    where its last part began."""
    path = Path(stage_dir) / "summary.json"
    if not trained:
        return json.loads(path.read_text()) if path.is_file() else summary  # never store a NaN summary
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(summary, indent=1))
        os.replace(tmp, path)  # a crash mid-write must not leave a summary the next --resume cannot read
    return summary


class LossLog:
    """``loss.csv`` (step, seconds, lr, loss, extras...); rows past a resumed step are dropped."""

    def __init__(self, path: Path, fields: list[str], resume_step: int) -> None:
        self.path = path
        self.fields = ["step", "seconds", "lr", "loss", *fields]
        rows = []
        if resume_step > 0 and path.is_file():
            with open(path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
        with open(path, "w", newline="") as fh:
            wr = csv.DictWriter(fh, self.fields)
            wr.writeheader()
            wr.writerows(rows)

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, self.fields).writerow({k: row.get(k, "") for k in self.fields})


class StepBudget:
    """Fit a run into ``seconds`` of wall time by fixing its step count early.

    The first ``probe`` steps (inside the warm-up, whose learning rate does not depend on the
    total) are timed; the total then becomes ``min(requested, steps that fit)``, and the cosine
    decay runs over that total. Off (``seconds`` None) the requested total stands. Only a run that
    starts from step 0 adapts; a resumed one keeps the total it was started with.
    """

    def __init__(self, requested: int, seconds: Optional[float], start: int = 0, probe: int = 30) -> None:
        self.total = int(requested)
        self.seconds = seconds if (seconds and start == 0) else None
        self.probe = max(6, min(probe, WARMUP_STEPS - 5))  # timed from step 5 on
        self._t0: Optional[float] = None
        self._t_first: Optional[float] = None

    def started(self) -> None:
        self._t0 = time.perf_counter()

    def after_step(self, done: int, accel=None) -> Optional[int]:
        """Call after each step; returns the new total when it was just fixed, else None. With
        ``accel`` the total is the main process's on every process (``agree_on_total``): each
        process times itself, and processes running different step counts would hang."""
        if self.seconds is None:
            return None
        if done == 5:  # the first steps pay for allocator and kernel warm-up: time from here
            self._t_first = time.perf_counter()
        if done != self.probe or self._t0 is None or self._t_first is None:
            return None
        per_step = (time.perf_counter() - self._t_first) / (self.probe - 5)
        left = self.seconds - (time.perf_counter() - self._t0)
        fits = self.probe + int(max(0.0, left) / max(per_step, 1e-9))
        self.total = max(self.probe, min(self.total, fits))
        if accel is not None:
            self.total = agree_on_total(accel, self.total)
        self.seconds = None
        return self.total


def training_clip_digests(clips: Sequence[str | Path], held_out: Sequence[Path], what: str) -> list[str]:
    """Each training clip's SHA-256, refusing before any work a missing clip and one whose content is a
    ``held_out`` clip's, whatever it is named: figures on held-out footage must measure footage no model
    trained on. ``what`` ends the refusal (which clip it is and who holds it out)."""
    known = {sha256_file(c): c.name for c in held_out if c.is_file()}
    digests = []
    for clip in clips:
        if not Path(clip).is_file():
            raise InputError(f"real clip not found: {clip}")
        digest = sha256_file(Path(clip))
        if digest in known:
            raise InputError(f"{clip} is the {what.format(name=known[digest])}; train on other clips")
        digests.append(digest)
    return digests


def checkpoint_to_resume(stage_dir: Path, resume: bool, steps: int, threads: Optional[int] = None) -> Optional[Path]:
    """The start of every trainer: check ``--steps``, set torch's threads, and return the
    checkpoint ``--resume`` continues from (None: a fresh run), refusing to start a fresh run over
    an existing one."""
    if steps < 1:
        raise InputError("--steps must be >= 1")
    if threads:
        torch.set_num_threads(int(threads))
    latest = latest_checkpoint(stage_dir)
    if not resume and latest is not None:
        raise InputError(f"{stage_dir} already has checkpoints; pass --resume to continue or use a new --out")
    return latest if resume else None


def make_accelerator():
    """The accelerate ``Accelerator`` of every trainer: bf16 on CUDA; on a machine without CUDA
    ``cpu=True``, without which accelerate ignores a multi-process launch (torchrun, ``accelerate
    launch``) and every process trains alone."""
    from accelerate import Accelerator

    cuda = torch.cuda.is_available()
    return Accelerator(mixed_precision="bf16" if cuda else "no", cpu=not cuda)


def agree_on_total(accel, total: int) -> int:
    """Every process must run the same number of steps: the main process's count wins."""
    if accel.num_processes == 1:
        return total
    from accelerate.utils import broadcast_object_list

    return int(broadcast_object_list([total])[0])


def device_name(accel) -> str:
    if accel.device.type == "cuda":
        return f"{torch.cuda.get_device_name(accel.device)} x{accel.num_processes}"
    return f"cpu x{accel.num_processes}"


# ----------------------------------------------------------------------------- the loop
@dataclass
class LogPoint:
    """What a trainer's ``report`` is given at each ``loss.csv`` row (the main process only)."""

    step: int  # steps done
    total: int  # the run's total (fixed by the time budget where one is set)
    lr: float  # the learning rate of the last step
    losses: list[float]  # every step's loss since the previous row
    infos: list  # what the step function returned beside each of those losses
    per_step: float  # seconds a step of this part of the run took, on average


@dataclass
class LoopResult:
    """What a run of the loop did; the trainer's summary quotes it."""

    start: int  # the step this part began at (0: a fresh run)
    total: int  # the run's total steps
    last_loss: float  # the last step's loss (NaN: nothing was left to train)
    tally: dict  # ``RunTally.summary()``: seconds, part_seconds, first_loss of the whole run
    device: str
    processes: int
    elapsed: float  # seconds this part's loop took

    @property
    def trained(self) -> bool:
        return self.start < self.total


StepFn = Callable[[int, np.random.Generator], tuple[torch.Tensor, Any]]
ReportFn = Callable[[LogPoint], tuple[dict, str]]


class TrainLoop:
    """The training loop of every gid trainer: each model gives its step, this does the rest.

    A trainer makes its model, optimiser and data, then::

        loop = TrainLoop(accel, model, optimizer, stage_dir, "render", steps=..., lr=..., data_seed=...,
                         resume=checkpoint_or_None, log_every=..., ckpt_every=..., fields=["l1", ...])
        result = loop.run(step_fn, report, state={"stage": "render", ...})
        summary = loop.finish(result, {"stage": "render", "steps": result.total, ...})

    Making the loop resumes from ``resume`` (model weights and AdamW moments, before accelerate
    wraps them), then prepares both: ``loop.model`` and ``loop.optimizer`` are the ones to use.
    ``run`` does, for each step: the step's batch RNG (``batch_rng(data_seed, step, process)``), the
    warm-up + cosine learning rate (``lr_at``), ``step_fn(step, rng) -> (loss, info)`` under
    accelerate's autocast, the clipped optimiser step (``apply_gradients``), the time budget, a
    ``loss.csv`` row and a log line every ``log_every`` steps and at the end (``report`` turns the
    losses and infos since the last row into the row's ``loss`` and ``fields`` and the line), and a
    checkpoint every ``ckpt_every`` steps and at the end carrying ``state`` (plus ``steps``, the
    run's total, and the run's tally). ``finish`` writes (or, when nothing was left to train,
    keeps) ``summary.json``.

    Why one loop: resuming, budgets, logging and checkpoints then mean the same for every model,
    and a resumed run is bit-identical to an uninterrupted one for all of them (the batches are pure
    functions of the step, the optimiser state is restored exactly).
    """

    def __init__(self, accel, model: torch.nn.Module, optimizer: torch.optim.Optimizer, stage_dir: Path,
                 name: str, *, steps: int, lr: float, data_seed: int, resume: Optional[Path] = None,
                 params: Optional[Sequence[torch.nn.Parameter]] = None, time_budget: Optional[float] = None,
                 log_every: int = 10, ckpt_every: int = 200, fields: Sequence[str] = (),
                 say: Callable[[str], None] = print) -> None:
        """``steps``: the total of a fresh run (a resumed one keeps its checkpoint's); ``lr``: the
        peak learning rate; ``params``: what the gradient clip covers (default: all of the model's);
        ``fields``: the ``loss.csv`` columns after step, seconds, lr and loss; ``say``: the log (the
        main process's only)."""
        self.accel = accel
        self.stage_dir = Path(stage_dir)
        self.name = name
        self.lr = lr
        self.data_seed = data_seed
        self.time_budget = time_budget
        if log_every < 1 or ckpt_every < 1:
            raise InputError("--log-every and --ckpt-every must be >= 1")
        self.log_every, self.ckpt_every = int(log_every), int(ckpt_every)
        self.fields = list(fields)
        self.say = say if accel.is_main_process else (lambda _m: None)
        self.resumed: dict = {}  # the state.json of the checkpoint resumed from
        self.start = 0
        self.planned = int(steps)
        if resume is not None:
            self.resumed = load_checkpoint_model(resume, model)
            files = self.resumed["optimizer_files"]
            restore_optimizer(optimizer, load_state_dict(resume, files) if files else {}, self.resumed["optimizer"])
            self.start = int(self.resumed["step"])
            self.planned = int(self.resumed.get("steps", steps))  # the total its budget fixed
            self.say(f"{name}: resumed from {resume} at step {self.start}")
        self.model, self.optimizer = accel.prepare(model, optimizer)
        self.model.train()
        self.params = list(params) if params is not None else list(self.model.parameters())

    def run(self, step_fn: StepFn, report: ReportFn, state: dict) -> LoopResult:
        """Train from ``self.start`` to the run's total. ``step_fn(step, rng)``: the loss of step
        ``step`` (0-based), drawing its batch from ``rng``, and anything ``report`` wants of it;
        ``report(point)``: the ``loss.csv`` row (``loss`` and ``fields``) and the log line;
        ``state``: what every checkpoint's ``state.json`` carries (its data and recipe)."""
        accel, say = self.accel, self.say
        main = accel.is_main_process
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        loss_log = LossLog(self.stage_dir / "loss.csv", self.fields, self.start) if main else None
        state = dict(state)
        t0 = time.perf_counter()
        tally = RunTally(self.resumed)
        losses: list[float] = []
        infos: list = []
        last = float("nan")
        budget = StepBudget(self.planned, self.time_budget, self.start)
        budget.started()
        total = self.planned
        state["steps"] = total
        step = self.start
        while step < total:
            rng = batch_rng(self.data_seed, step, accel.process_index)
            lr = lr_at(step, total, self.lr)
            set_lr(self.optimizer, lr)
            with accel.autocast():
                loss, info = step_fn(step, rng)
            last = apply_gradients(accel, self.optimizer, loss, self.params)
            tally.loss(last)
            step += 1
            fixed = budget.after_step(step, accel)
            if fixed is not None:
                total = fixed
                state["steps"] = total
                say(f"{self.name}: time budget {self.time_budget:.0f}s -> {total} steps")
            if loss_log is not None:
                losses.append(last)
                infos.append(info)
                if step % self.log_every == 0 or step == total:
                    per_step = (time.perf_counter() - t0) / (step - self.start)
                    row, line = report(LogPoint(step, total, lr, losses, infos, per_step))
                    loss_log.write({"step": step, "seconds": f"{time.perf_counter() - t0:.1f}", "lr": f"{lr:.3g}",
                                    **row})
                    say(line)
                    losses, infos = [], []
            if main and (step % self.ckpt_every == 0 or step == total):
                save_checkpoint(self.stage_dir, step, accel.unwrap_model(self.model), self.optimizer,
                                state | tally.state())
            accel.wait_for_everyone()
        return LoopResult(self.start, total, last, tally.summary(), device_name(accel), accel.num_processes,
                          time.perf_counter() - t0)

    def finish(self, result: LoopResult, summary: dict) -> dict:
        """Write ``summary`` as the run's ``summary.json`` (``settle_summary``: a run with nothing
        left to train keeps the one on disk) and return what the run's summary now is."""
        summary = settle_summary(self.stage_dir, summary, trained=result.trained,
                                 write=self.accel.is_main_process)
        self.say(f"{self.name}: done, {result.total - result.start} steps in {result.elapsed:.0f}s")
        return summary


# ----------------------------------------------------------------------------- parallel data
_WORKER: dict = {}


def _init_worker(make: Callable) -> None:
    from ..exporters.opencv import cv2
    from .motion_prior.data.shards import exit_with_parent

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    exit_with_parent()
    _WORKER["make"] = make


def _make_chunk(indices: list[int]) -> tuple[list[int], dict[str, np.ndarray]]:
    items = [_WORKER["make"](i) for i in indices]
    return indices, {name: np.stack([it[name] for it in items]) for name in items[0]}


def fill_parallel(make: Callable[[int], dict[str, np.ndarray]], n: int, tensors: dict[str, torch.Tensor],
                  workers: int, log: Callable[[str], None] = print, label: str = "items",
                  indices: Optional[Sequence[int]] = None) -> None:
    """``tensors[name][i] = make(i)[name]`` for every ``i < n`` (or every ``i`` in ``indices``: a
    caller that makes some items itself, e.g. from data too large to copy into every worker).

    ``workers > 1``: spawned processes make chunks of items and send them back through pipes (no
    shared memory, whose size containers often cap); ``make`` must be a picklable module-level
    callable. Items are pure functions of ``i``; the workers run single-threaded BLAS, so they match
    the serial path bit for bit when that runs with ``OMP_NUM_THREADS=1`` too, and otherwise to float
    rounding (measured: <= 1 float16 ulp in a few pixels)."""
    t0 = time.perf_counter()
    todo = list(range(n)) if indices is None else [int(i) for i in indices]
    n = len(todo)

    def put(chunk: list[int], arrays: dict[str, np.ndarray]) -> None:
        where = torch.as_tensor(chunk)
        for name, arr in arrays.items():
            tensors[name][where] = torch.from_numpy(arr)

    if workers <= 1 or n < 2:
        for done, i in enumerate(todo, 1):
            put([i], {k: v[None] for k, v in make(i).items()})
            if done % 200 == 0:
                log(f"data: {done}/{n} {label} ({time.perf_counter() - t0:.0f}s)")
        log(f"data: {n} {label} in {time.perf_counter() - t0:.0f}s")
        return
    from multiprocessing import get_context

    step = max(1, min(16, n // (workers * 4) or 1))
    chunks = [todo[s : s + step] for s in range(0, n, step)]
    from .motion_prior.data.shards import single_threaded_children

    with single_threaded_children(), ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(make,)
    ) as pool:
        done = 0
        try:
            for chunk, arrays in pool.map(_make_chunk, chunks):
                put(chunk, arrays)
                done += len(chunk)
                if done % 1000 < len(chunk):
                    log(f"data: {done}/{n} {label} ({time.perf_counter() - t0:.0f}s, {workers} workers)")
        except BaseException:  # a failing item or Ctrl-C: drop the queued chunks instead of finishing them
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    log(f"data: {n} {label} in {time.perf_counter() - t0:.0f}s ({workers} workers)")
