"""Training the neural renderer: ``gid train render`` (HF accelerate; bf16 and multi-GPU on CUDA).

    gid train render --config small --steps N --out checkpoints/render [--resume] [--export]

Data: ``--pairs`` synthetic triples (exact motion and disocclusions, see ``data``) generated once
into ``out/triples.npy`` plus every training pair of the real clips (``--real``, DIS flow), held in
memory; each step draws random crops (``config.crop``) with flips. Loss: L1 + ``perceptual_weight``
x the EfficientNet-Lite0 feature distance (``perceptual``). The step runs in ``training.TrainLoop``,
whose checkpoints are the motion prior's too (atomic, resumable, safetensors shards ≤ 16 MiB,
batches a pure function of (seed, step)), in ``out/render/``. ``--export`` writes the shipped
weights and ONNX graphs.
Multi-GPU: ``accelerate launch --multi_gpu -m gid.gid_engine.cli train render ...``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ...gid_engine.errors import InputError
from ..motion_prior.data.synthetic import pair_rng, still_splits
from ...gid_engine.repo_data import DEFAULT_STILL_SET, eval_only_clips
from ..training import (LogPoint, TrainLoop, checkpoint_to_resume, fill_parallel, latest_checkpoint,
                        load_checkpoint_model, make_accelerator, refuse_other_data, training_clip_digests)
from .checkpoint import WEIGHTS_DIR
from ...gid_engine.rendering.neural_config import get_config
from .data import CLIPS_FILE, real_triples, stack_triple, synthetic_triple, with_extracted_flow
from .neural_renderer import NeuralRenderer
from ..splat_torch import disocclusion_mask

# every clip of samples/clips.json: its training frames train, its held-out frames evaluate (none
# where the samples are not installed: the Blender extension and wheels leave them out); the
# evaluation-only clips evaluate and never train
DEFAULT_REAL = tuple(CLIPS_FILE.parent / name for name in json.loads(CLIPS_FILE.read_text())) \
    if CLIPS_FILE.is_file() else ()
DEFAULT_TRAIN_REAL = tuple(p for p in DEFAULT_REAL if p not in eval_only_clips())


@dataclass
class RenderTrainArgs:
    config: str = "small"
    steps: int = 2000
    out: Path = Path("checkpoints/render")
    resume: bool = False
    batch: Optional[int] = None
    lr: Optional[float] = None
    data_seed: int = 0
    pairs: int = 600
    real: tuple = field(default_factory=lambda: tuple(str(p) for p in DEFAULT_TRAIN_REAL))
    ckpt_every: int = 250
    log_every: int = 25
    threads: Optional[int] = None
    export: Optional[Path] = None
    workers: int = 1  # processes generating the synthetic triples
    same_still: float = 0.0  # share of triples whose background is the foreground's own still
    real_weight: float = 0.25  # share of each batch drawn from the real clips
    time_budget: Optional[float] = None  # seconds (see training.StepBudget)
    init_from: Optional[Path] = None  # shipped renderer weights a new run starts from (not a resume)
    stills: str = DEFAULT_STILL_SET  # still set of the synthetic triples (``repo_data.STILL_SETS``)
    extracted_flow: float = 0.0  # share of synthetic triples carrying extracted (DIS) flow, as real ones do
    sim: tuple = ()  # folders of simulated shards (gid make-data) whose train triples join the data
    sim_weight: float = 0.4  # share of each batch drawn from the simulated triples
    sim_extracted_flow: float = 0.0  # share of simulated triples whose exact motion is replaced by extracted flow
    hole_weight: float = 0.0  # extra L1 weight of the disoccluded pixels (1 + hole_weight there, 1 elsewhere)


def build_triples(n: int, seed: int, width: int, height: int, cache: Path | None,
                  log: Callable[[str], None], workers: int = 1, same_still: float = 0.0,
                  split: str = "train", extracted_flow: float = 0.0) -> np.ndarray:
    """``(n, 9, H, W)`` float32 stacks (image, flow, z, target), cached in ``cache``."""
    if cache is not None and cache.is_file():
        arr = np.load(cache, mmap_mode="r")
        if arr.shape[0] >= n and arr.shape[2:] == (height, width):
            return np.asarray(arr[:n])
    tensors = {"triples": torch.empty((n, 9, height, width), dtype=torch.float32)}
    fill_parallel(_TripleFiller(seed, width, height, same_still, split, extracted_flow), n, tensors, workers,
                  log=log, label="triples")
    out = tensors["triples"].numpy()
    if cache is not None:
        tmp = cache.with_name(cache.stem + ".tmp.npy")
        np.save(tmp, out)
        tmp.replace(cache)
    return out


class _TripleFiller:
    """Synthetic triple ``i`` as a ``(9, H, W)`` stack; picklable for the data workers."""

    def __init__(self, seed: int, width: int, height: int, same_still: float = 0.0, split: str = "train",
                 extracted_flow: float = 0.0) -> None:
        self.seed, self.width, self.height, self.same_still, self.split = seed, width, height, same_still, split
        self.extracted_flow = extracted_flow

    def __call__(self, i: int) -> dict[str, np.ndarray]:
        triple = synthetic_triple(i, seed=self.seed, split=self.split, width=self.width, height=self.height,
                                  same_still=self.same_still, extracted_flow=self.extracted_flow)
        return {"triples": triple.stacked()}


def hole_weighted_l1(pred: torch.Tensor, target: torch.Tensor, flow: torch.Tensor, z: torch.Tensor,
                     hole_weight: float) -> torch.Tensor:
    """Mean absolute error, each pixel weighted ``1 + hole_weight`` where the plain splat leaves it
    disoccluded (``splat_torch.disocclusion_mask`` on the crop: the pixels ``gid eval render`` scores apart,
    plus crop-edge pixels whose content moves in from outside the crop) and 1 elsewhere, normalised by the
    weights' sum: holes are a small share of a frame, so an unweighted loss spends almost all its gradient
    on pixels the splat already renders well."""
    err = (pred - target).abs()
    if not hole_weight:
        return err.mean()
    weight = 1.0 + hole_weight * disocclusion_mask(flow, z)
    return (err.mean(dim=1, keepdim=True) * weight).sum() / weight.sum()


def crop_batch(sources: list[np.ndarray], batch: int, crop: tuple[int, int], rng: np.random.Generator) -> torch.Tensor:
    """Random crops (with horizontal flips, which negate the x flow) from random stacks."""
    cw, ch = crop
    out = np.empty((batch, 9, ch, cw), dtype=np.float32)
    for b in range(batch):
        src = sources[int(rng.integers(len(sources)))]
        arr = src[int(rng.integers(src.shape[0]))]
        h, w = arr.shape[1:]
        if h < ch or w < cw:
            raise InputError(f"training crop {cw}x{ch} is larger than the data ({w}x{h})")
        y, x = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        piece = np.array(arr[:, y: y + ch, x: x + cw], dtype=np.float32)
        if rng.random() < 0.5:
            piece = piece[:, :, ::-1].copy()
            piece[3] = -piece[3]
        out[b] = piece
    return torch.from_numpy(out)


def with_sim_extracted_flow(stacks: np.ndarray, share: float, seed: int, stream: str) -> np.ndarray:
    """Simulated triples (``(N, 9, H, W)`` stacks) with the exact motion of about ``share`` of them replaced by
    the flow gid's extraction finds between their frames (``with_extracted_flow``), the frames kept.

    Why: real footage hands the renderer extracted flow, and the renderers fine-tuned on exact simulated
    motion lose on it (the "synthetic, extracted flow" row and the evaluation-only clips); here the content
    their holes reveal is still exact. Each triple's draw is its own ``(seed, stream, index)`` stream, so
    the choice does not depend on how many triples there are."""
    if share <= 0.0:
        return stacks
    out = stacks.copy()
    for i in range(len(stacks)):
        if pair_rng(seed, "train", i, stream).random() < share:
            out[i] = with_extracted_flow(stack_triple(stacks[i])).stacked()
    return out


def train_renderer(args: RenderTrainArgs, log: Callable[[str], None] = print) -> dict:
    from .perceptual import PerceptualFeatures

    out = Path(args.out)
    stage_dir = out / "render"
    for flag, share in (("--same-still", args.same_still), ("--real-weight", args.real_weight),
                        ("--extracted-flow", args.extracted_flow), ("--sim-weight", args.sim_weight),
                        ("--sim-extracted-flow", args.sim_extracted_flow)):
        if not 0.0 <= share <= 1.0:  # a probability or a share: anything else is a typo, refused before any work
            raise InputError(f"{flag} must be in [0, 1], got {share}")
    if not 0.0 <= args.hole_weight <= 100.0:
        raise InputError(f"--hole-weight must be in [0, 100], got {args.hole_weight}")
    training_clip_digests(args.real, eval_only_clips(), "evaluation-only clip {name}")
    ckpt = checkpoint_to_resume(stage_dir, args.resume, args.steps, args.threads)
    data_id = {"data_seed": args.data_seed, "pairs": args.pairs, "same_still": args.same_still,
               "real_weight": args.real_weight, "real": [Path(p).name for p in args.real], "stills": args.stills,
               "extracted_flow": args.extracted_flow, "hole_weight": args.hole_weight}
    if args.sim:
        data_id.update(sim=[str(f) for f in args.sim], sim_weight=args.sim_weight)
        if args.sim_extracted_flow:
            data_id.update(sim_extracted_flow=args.sim_extracted_flow)
    refuse_other_data(ckpt, data_id, defaults={"stills": DEFAULT_STILL_SET, "extracted_flow": 0.0, "hole_weight": 0.0,
                                                 "sim_extracted_flow": 0.0})
    split = still_splits(args.stills)[0]
    config = get_config(args.config)
    out.mkdir(parents=True, exist_ok=True)
    accel = make_accelerator()
    say = log if accel.is_main_process else (lambda _m: None)
    with accel.main_process_first():
        name = (f"triples-{args.data_seed}" + (f"-same{args.same_still:g}" if args.same_still else "")
                + (f"-dis{args.extracted_flow:g}" if args.extracted_flow else "")
                + (f"-{args.stills}" if args.stills != DEFAULT_STILL_SET else "") + ".npy")
        synthetic = build_triples(args.pairs, args.data_seed, 256, 160, out / name, say, workers=args.workers,
                                  same_still=args.same_still, split=split, extracted_flow=args.extracted_flow)
    real = [np.stack([t.stacked() for t in real_triples(p, split="train")]) for p in args.real]
    sim = []
    if args.sim:
        from ..simdata.datasets import sim_triple_stacks

        sim = [with_sim_extracted_flow(sim_triple_stacks(folder, "train"), args.sim_extracted_flow, args.data_seed,
                                       f"sim-extracted-flow-{k}") for k, folder in enumerate(args.sim)]
    say(f"render data: {synthetic.shape[0]} synthetic + {sum(r.shape[0] for r in real)} real + "
        f"{sum(s.shape[0] for s in sim)} simulated triples")
    model = NeuralRenderer(config)
    warm_start = None
    if args.init_from is not None and ckpt is None:
        warm_start = _warm_start(model, Path(args.init_from))
        say(f"render: starting from the weights in {args.init_from}")
    batch, lr = args.batch or config.batch, args.lr or config.lr
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    perceptual = PerceptualFeatures().to(accel.device)
    loop = TrainLoop(accel, model, optimizer, stage_dir, "render", steps=args.steps, lr=lr, data_seed=args.data_seed,
                     resume=ckpt, time_budget=args.time_budget, log_every=args.log_every, ckpt_every=args.ckpt_every,
                     fields=["l1", "perceptual"], say=say)
    if ckpt is not None:
        warm_start = loop.resumed.get("warm_start")  # provenance survives resuming
    model = loop.model
    n_real = int(round(batch * args.real_weight)) if real else 0
    n_sim = min(batch - n_real, int(round(batch * args.sim_weight))) if sim else 0

    def step_fn(step: int, rng: np.random.Generator) -> tuple[torch.Tensor, tuple[float, float]]:
        parts = [crop_batch([synthetic], batch - n_real - n_sim, config.crop, rng)] if batch - n_real - n_sim else []
        if n_real:
            parts.append(crop_batch(real, n_real, config.crop, rng))
        if n_sim:
            parts.append(crop_batch(sim, n_sim, config.crop, rng))
        x = torch.cat(parts).to(accel.device)
        image, flow, z, target = x[:, :3], x[:, 3:5], x[:, 5:6], x[:, 6:9]
        pred = model(image, flow, z)
        l1 = hole_weighted_l1(pred, target, flow, z, args.hole_weight)
        perc = perceptual.distance(pred.float(), target).mean()
        return l1 + config.perceptual_weight * perc, (float(l1.detach()), float(perc.detach()))

    def report(point: LogPoint) -> tuple[dict, str]:
        avg = np.mean(np.array([(loss, *info) for loss, info in zip(point.losses, point.infos)]), axis=0)
        return ({"loss": f"{avg[0]:.6f}", "l1": f"{avg[1]:.6f}", "perceptual": f"{avg[2]:.6f}"},
                f"render: step {point.step}/{point.total} loss {avg[0]:.5f} (l1 {avg[1]:.5f}, perceptual "
                f"{avg[2]:.4f}) ({point.per_step:.2f}s/step)")

    state = {"stage": "render", "config": args.config, "batch": batch, "lr": lr} | data_id
    if warm_start is not None:
        state["warm_start"] = warm_start
    result = loop.run(step_fn, report, state)
    summary = {"stage": "render", "config": args.config, "steps": result.total, "start": result.start,
               "batch": batch, "lr": lr, **data_id, **result.tally, "last_loss": result.last_loss,
               "device": result.device, "processes": result.processes}
    if warm_start is not None:
        summary["warm_start"] = warm_start
    summary = loop.finish(result, summary)
    if accel.is_main_process and args.export is not None:
        export_renderer(out, Path(args.export), log=say)
    return summary


def _warm_start(model: NeuralRenderer, folder: Path) -> dict:
    """Copy verified renderer weights of the same config into ``model``; provenance for the summary.

    Why: a CPU session cannot afford to relearn what earlier weights know; a resumed run restores
    its own checkpoint instead (``--resume`` wins)."""
    from .checkpoint import index_sha256, load_renderer

    source = load_renderer(folder)
    if source.config.to_dict() != model.config.to_dict():
        raise InputError(f"--init-from {folder}: its renderer config ({source.config.name}) is not this run's "
                         f"({model.config.name})")
    model.load_state_dict(source.state_dict())
    return {"from": str(folder), "index_sha256": index_sha256(folder)}


def export_renderer(out: Path, target: Path = WEIGHTS_DIR, log: Callable[[str], None] = print) -> Path:
    """The latest checkpoint of ``out`` as shipped weights + ONNX graphs in ``target``."""
    from .checkpoint import save_renderer
    from .onnx_export import export_renderer_onnx

    ckpt = latest_checkpoint(Path(out) / "render")
    if ckpt is None:
        raise InputError(f"no renderer checkpoint in {out}; train first (gid train render --out {out})")
    state = json.loads((ckpt / "state.json").read_text())
    model = NeuralRenderer(get_config(state["config"]))
    load_checkpoint_model(ckpt, model)
    summary_file = Path(out) / "render" / "summary.json"
    training = json.loads(summary_file.read_text()) if summary_file.is_file() else {"steps": state["step"]}
    save_renderer(model.eval(), target, {"training": training})
    export_renderer_onnx(target, model=model)
    log(f"exported the renderer to {target}")
    return Path(target)
