"""Training the motion prior in three stages (paper §4.2-4.3, §7) with HF accelerate.

    gid train prior vae       --config small --steps N --batch B --out checkpoints/run
    gid train prior unet      --config small --steps N --batch B --out checkpoints/run
    gid train prior freq-attn --config small --steps N --batch B --out checkpoints/run --export

1. ``vae``: the SpectralVAE on single normalized frequency slices ``(4, H, W)`` (random crops for
   the CPU presets), loss L1 + 0.2 multi-scale gradient + 1e-6 KL.
2. ``unet``: VAE frozen; every training pair is encoded once (posterior mean, all K slices) and the
   latents are scaled by ``latent_scale`` = 1 / their std. Each sample is ONE random frequency
   slice ``j`` of one pair: noise at a uniform timestep, predict it (MSE), frequency ``j`` as the
   class embedding, the image concatenated as condition, replaced by the null image 10% of the time.
3. ``freq-attn``: the stage-2 U-Net frozen, ``FrequencyAttention`` layers inserted (zero-initialised
   outputs) and trained on all K slices of each sample at once (one timestep per sample).

All stages share ``--out``: ``normalization.json`` (fit once, from training data), ``latent_scale.json``
and one folder per stage with atomic, resumable checkpoints and ``loss.csv``::

    out/vae/ckpt-0000400/{model.safetensors, optimizer.safetensors, state.json}
    out/vae/latest.json            -> {"checkpoint": "ckpt-0000400", "step": 400}

Each stage is its data and one step function; ``training.TrainLoop`` runs it (resume, time budget,
``loss.csv``, checkpoints, summary). Checkpoints are written to a temporary folder and renamed into
place, then ``latest.json`` is replaced atomically; every file is a safetensors shard of at most
16 MiB (the AdamW moments are tensors too, stored flat as ``optimizer*.safetensors``; the
param-group hyper-parameters go to ``state.json``), so nothing half-written is ever picked up by
``--resume``. Data order and noise are pure functions of ``(data seed, step)``: a resumed run sees
exactly the batches an uninterrupted one would have.

Data: ``MotionPairDataset(split="train")`` pairs are generated once per run into an in-memory cache
of ``--pairs`` pairs (the CPU budget cannot afford fresh pairs every step); more pairs on GPUs.
Multi-GPU: ``accelerate launch --multi_gpu -m gid.gid_engine.cli train ...`` - every process draws
different batches (process index folded into the batch seed); only the main process writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ...exporters.atomic import atomic_write_bytes
from ...gid_engine.assets import PRIOR_DIR
from ...gid_engine.errors import InputError
from ...gid_engine.motion.normalization import FrequencyNormalizer
from ...gid_engine.repo_data import DEFAULT_STILL_SET
from .models import FrequencyCoordinatedDenoiser, FrequencyDenoiser, SpectralVAE, get_config
from .models.configs import PriorConfig
from .models.vae import vae_loss
from .data.simulated import is_sim_pair, sim_data_key, sim_pick
from .data.synthetic import still_splits
from .pipeline import make_scheduler
from ..training import (LogPoint, TrainLoop, checkpoint_to_resume, fill_parallel, latest_checkpoint,
                        load_checkpoint_model, make_accelerator, refuse_other_data, save_checkpoint, torch_gen,
                        training_clip_digests)
from ...gid_engine.model_folder import sha256_file

STAGES = ("vae", "unet", "freq-attn")
DEFAULT_EXPORT_DIR = PRIOR_DIR


@dataclass
class TrainArgs:
    stage: str
    config: str = "small"
    steps: int = 1000
    batch: Optional[int] = None
    out: Path = Path("checkpoints/run")
    resume: bool = False
    lr: Optional[float] = None
    data_seed: int = 0
    pairs: int = 256
    norm_samples: int = 256
    ckpt_every: int = 200
    log_every: int = 10
    export: Optional[Path] = None
    threads: Optional[int] = None
    workers: int = 1  # processes generating the training pairs
    time_budget: Optional[float] = None  # seconds: fit the step count into this (see StepBudget)
    pair_cache: bool = True  # keep the pairs in out/pairs.pt for the next stage (~5.5 MB a pair)
    # warm start from a shipped weights folder (see seed_run): its VAE, normalization and latent
    # scale are reused and each stage starts from its networks, widened where the config grew
    init_from: Optional[Path] = None
    static_flow: Optional[Path] = None  # StaticFlowNet weights for the condition (default: shipped)
    # real clips whose extracted motion joins the pairs (paper §7: every 10th frame starts a pair);
    # ``real_fraction`` of the cached pairs are drawn from them. The held-out eval clip is refused.
    real: tuple[str, ...] = ()
    real_fraction: float = 0.25  # the CLI's --real-weight default
    stills: str = DEFAULT_STILL_SET  # still set of the synthetic pairs (``repo_data.STILL_SETS``)
    # folders of simulated shards (``gid make-data``) whose train views join the pairs at ``sim_fraction``
    sim: tuple[str, ...] = ()
    sim_fraction: float = 0.5


# ----------------------------------------------------------------------------- data cache
class PairCache:
    """``n`` training pairs held in memory: normalized volumes (fp16) and images in [-1, 1]."""

    def __init__(self, volumes: torch.Tensor, images: torch.Tensor, real_key: Optional[list] = None,
                 split: str = "train") -> None:
        self.volumes = volumes  # (N, K, 4, H, W) float16
        self.images = images  # (N, 3, H, W) float16
        self.real_key = real_key or []  # real_data_key of the clips mixed in; [] = synthetic only
        self.split = split  # the stills' split of the synthetic pairs

    def __len__(self) -> int:
        return int(self.volumes.shape[0])

    @classmethod
    def build(cls, n: int, config: PriorConfig, normalizer: FrequencyNormalizer, seed: int,
              log: Callable[[str], None] = print, cache_file: Optional[Path] = None,
              workers: int = 1, real: tuple[str, ...] = (), real_fraction: float = 0.25,
              real_key: Optional[list] = None, split: str = "train", sim: tuple[str, ...] = (),
              sim_fraction: float = 0.5) -> "PairCache":
        """``real_key``: the clips' :func:`real_data_key` when the caller has it (hashing a clip reads it whole);
        ``split``: the stills' split the synthetic pairs come from."""
        if real_key is None:
            real_key = real_data_key(real, real_fraction) + ([sim_data_key(sim, sim_fraction)] if sim else [])
        if cache_file is not None and cache_file.is_file():
            blob = torch.load(cache_file)
            if (blob["n"] == n and blob["seed"] == seed and blob.get("real", []) == real_key
                    and blob.get("split", "train") == split
                    and np.allclose(np.asarray(blob["scales"]), normalizer.scales)):
                log(f"data: {n} cached pairs from {cache_file}")
                return cls(blob["volumes"], blob["images"], real_key, split)
        k = config.num_frequencies
        tensors = {"volumes": torch.empty((n, k, 4, config.height, config.width), dtype=torch.float16),
                   "images": torch.empty((n, 3, config.height, config.width), dtype=torch.float16)}
        real_set = load_real_pairs(real, config, log) if real else []
        synthetic = list(range(n))
        if real_set:  # made here: the workers get the synthetic indices only, not copies of the clips' pairs
            from .data.dataset import real_pick

            picks = [i for i in range(n) if real_pick(seed, split, i, len(real_set), real_fraction) is not None]
            fill_parallel(_PairFiller(seed, config.width, config.height, k, normalizer, real_set, real_fraction, split),
                          n, tensors, 1, log=log, label="real pairs", indices=picks)
            synthetic = sorted(set(synthetic) - set(picks))
        if sim:
            from ..simdata.datasets import SimViews

            views = SimViews(sim, "train")
            picks = [i for i in synthetic if is_sim_pair(seed, split, i, sim_fraction)]
            fill_parallel(_SimFiller(views, seed, split, normalizer), n, tensors, 1, log=log, label="simulated pairs",
                          indices=picks)
            synthetic = sorted(set(synthetic) - set(picks))
        fill = _PairFiller(seed, config.width, config.height, k, normalizer, split=split)
        fill_parallel(fill, n, tensors, workers, log=log, label="pairs", indices=synthetic)
        vols, imgs = tensors["volumes"], tensors["images"]
        if cache_file is not None:
            tmp = cache_file.with_name(f".{cache_file.name}.tmp")
            torch.save({"n": n, "seed": seed, "scales": [float(x) for x in normalizer.scales], "real": real_key,
                        "split": split, "volumes": vols, "images": imgs}, tmp)
            os.replace(tmp, cache_file)
        return cls(vols, imgs, real_key, split)


def real_data_key(real: tuple[str, ...], real_fraction: float) -> list:
    """What the pair cache (and the latents of it) must match: each clip by content, and the share.
    Empty without clips, so synthetic-only caches from before real clips existed still match.

    Called before anything slow or written, so it also refuses what cannot be trained on: a missing
    clip, a share outside [0, 1], the clip ``gid eval prior`` holds out and the evaluation-only sample
    clips (``eval_only_clips``), recognised by content hash whatever their names; their figures would
    otherwise measure memory."""
    from ...gid_engine.repo_data import eval_only_clips
    from .evaluate import HELD_OUT_REAL

    if not 0.0 <= real_fraction <= 1.0:
        raise InputError(f"--real-weight must be in [0, 1], got {real_fraction}")
    if not real:
        return []
    digests = training_clip_digests(real, (HELD_OUT_REAL, *eval_only_clips()),
                                    "held-out clip {name}, which gid eval holds out")
    return [digests, float(real_fraction)]


class _SimFiller:
    """Pair ``i`` drawn from the simulated views (randomly mirrored), as the cache stores it."""

    def __init__(self, views, seed: int, split: str, normalizer: FrequencyNormalizer) -> None:
        self.views, self.seed, self.split, self.normalizer = views, seed, split, normalizer

    def __call__(self, i: int) -> dict[str, np.ndarray]:
        from .data.dataset import flip_coeffs, flip_image, pair_to_tensors

        j, mirrored = sim_pick(self.views, self.seed, self.split, i)
        image, coeffs = self.views.pair(j)
        if mirrored:
            image, coeffs = flip_image(image), flip_coeffs(coeffs)
        item = pair_to_tensors(image, coeffs, self.normalizer)
        return {"volumes": item["volume"].to(torch.float16).numpy(), "images": item["image"].to(torch.float16).numpy()}


def load_real_pairs(real: tuple[str, ...], config: PriorConfig, log: Callable[[str], None]) -> list:
    """The clips' (image, extracted volume) pairs, every 10th frame a start (paper §7)."""
    from .data import real_pairs

    pairs = real_pairs(real, every=10, width=config.width, height=config.height, k=config.num_frequencies)
    if not pairs:
        raise InputError("the real clips gave no pairs (each needs >= 1 s and 8 frames from a start)")
    log(f"data: {len(pairs)} real pairs from {len(real)} clip(s)")
    return pairs


class _PairFiller:
    """Training pair ``i`` as the cache stores it (normalized, float16); picklable for the workers."""

    def __init__(self, seed: int, width: int, height: int, k: int, normalizer: FrequencyNormalizer,
                 real: Optional[list] = None, real_fraction: float = 0.25, split: str = "train") -> None:
        self.seed, self.width, self.height, self.k, self.normalizer = seed, width, height, k, normalizer
        self.split = split
        self.real, self.real_fraction = real or [], real_fraction
        self._dataset = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_dataset": None}

    def __call__(self, i: int) -> dict[str, np.ndarray]:
        if self._dataset is None:
            from .data import MotionPairDataset

            # items are pure functions of (seed, split, index): the length only bounds the index
            self._dataset = MotionPairDataset(1 << 40, seed=self.seed, split=self.split, width=self.width,
                                              height=self.height, k=self.k, normalizer=self.normalizer,
                                              real=self.real, real_fraction=self.real_fraction)
        item = self._dataset[i]  # float16 here halves what travels back from a worker
        return {"volumes": item["volume"].to(torch.float16).numpy(), "images": item["image"].to(torch.float16).numpy()}


def vae_batch(cache: PairCache, batch: int, crop: Optional[tuple[int, int]], rng: np.random.Generator) -> torch.Tensor:
    n, k, _, h, w = cache.volumes.shape
    out = []
    for _ in range(batch):
        i, j = int(rng.integers(n)), int(rng.integers(k))
        x = cache.volumes[i, j]
        if crop is not None:
            cw, ch = crop
            y0, x0 = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
            x = x[:, y0 : y0 + ch, x0 : x0 + cw]
        if rng.random() < 0.5:  # flip left-right: x displacement changes sign
            x = torch.flip(x, dims=[-1]) * torch.tensor([-1.0, -1.0, 1.0, 1.0], dtype=x.dtype)[:, None, None]
        out.append(x)
    return torch.stack(out).float()


# ----------------------------------------------------------------------------- checkpoints
def stage_model(out: Path, stage: str, model: torch.nn.Module) -> dict:
    ckpt = latest_checkpoint(out / stage)
    if ckpt is None:
        raise InputError(f"stage '{stage}' has no checkpoint in {out}; train it first "
                         f"(gid train prior {stage} --out {out})")
    return load_checkpoint_model(ckpt, model)


# ----------------------------------------------------------------------------- warm start
SEED_FILE = "seeded_from.json"


def seed_run(out: Path, pipe, config: PriorConfig, log: Callable[[str], None], source: Optional[Path] = None) -> None:
    """Make ``out`` a run that already trained the VAE: the shipped weights' VAE becomes the ``vae``
    stage's checkpoint, their normalization and latent scale are kept (the denoiser's training
    targets must be the latents it was trained on). Every ``--init-from`` stage calls it: what is
    already there (normalization, the VAE checkpoint) is kept."""
    if pipe.config.vae != config.vae or pipe.config.latent_size != config.latent_size:
        raise InputError(f"--init-from weights have another VAE or size than the '{config.name}' config")
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "normalization.json").is_file():
        pipe.normalizer.save(out / "normalization.json")
    if latest_checkpoint(out / "vae") is None:
        opt = torch.optim.AdamW(pipe.vae.parameters())  # no moments: the VAE is not trained further
        save_checkpoint(out / "vae", 0, pipe.vae, opt, {"stage": "vae", "config": config.name, "seeded": True,
                                                      "steps": 0})
    seeded: dict = {"latent_scale": pipe.latent_scale}
    if source is not None:  # the provenance the exported weights will carry (their VAE is this one)
        index = json.loads((source / "model_index.json").read_text())
        seeded.update(weights=str(source), weights_index_sha256=sha256_file(source / "model_index.json"),
                      training=index.get("training", {}))
    atomic_write_bytes(out / SEED_FILE, json.dumps(seeded).encode(), overwrite=True)
    log(f"run {out}: VAE, normalization and latent scale {pipe.latent_scale:.4f} from the shipped weights")


def warm_start(model: torch.nn.Module, source: torch.nn.Module) -> str:
    """Copy ``source``'s parameters into ``model`` where names match. A tensor that grew (the
    U-Net's first conv when the condition gained channels) gets the old values in its leading
    slice and zeros elsewhere, so the warm-started model computes exactly what ``source`` did."""
    own = model.state_dict()
    copied, widened = 0, []
    with torch.no_grad():
        for name, value in source.state_dict().items():
            if name not in own:
                continue
            dst = own[name]
            if dst.shape == value.shape:
                dst.copy_(value)
            elif dst.ndim == value.ndim and all(d >= v for d, v in zip(dst.shape, value.shape)):
                dst.zero_()
                dst[tuple(slice(0, v) for v in value.shape)].copy_(value)
                widened.append(name)
            else:
                continue
            copied += 1
    return f"{copied}/{len(own)} tensors copied" + (f", widened with zeros: {', '.join(widened)}" if widened else "")


def warm_start_attention(model, source) -> str:
    """The frequency-attention layers of a frequency-coordinated ``source`` into ``model``."""
    n = 0
    with torch.no_grad():
        for name in ("down_attn", "mid_attn", "up_attn"):
            for (_, dst), (_, src) in zip(getattr(model, name).state_dict().items(),
                                          getattr(source, name).state_dict().items()):
                if dst.shape == src.shape:
                    dst.copy_(src)
                    n += 1
    return f"{n} attention tensors copied"


def load_condition_static_flow(model: FrequencyDenoiser, folder: Optional[Path], log: Callable[[str], None]) -> None:
    """Load the frozen StaticFlowNet of the condition (a config with ``static_flow_width``)."""
    net = model.cond.static_flow
    if net is None:
        return
    from .static_flow import WEIGHTS_DIR, load_static_flow

    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    trained = load_static_flow(folder)
    if trained is None:
        raise InputError(f"the '{model.config.static_flow_width}'-wide static-flow condition needs trained weights "
                         f"in {folder}: run gid train static-flow --export first")
    try:
        net.load_state_dict(trained.state_dict())
    except RuntimeError:
        raise InputError(f"the static-flow weights in {folder} do not fit a width-"
                         f"{model.config.static_flow_width} network") from None
    log(f"unet: condition static-flow network from {folder}")


# ----------------------------------------------------------------------------- helpers
def get_normalizer(out: Path, n: int, seed: int, log: Callable[[str], None], split: str = "train"
                   ) -> FrequencyNormalizer:
    path = out / "normalization.json"
    if path.is_file():
        return FrequencyNormalizer.load(path)
    from .data import fit_frequency_normalizer

    t0 = time.perf_counter()
    norm = fit_frequency_normalizer(n=n, seed=seed, split=split)
    out.mkdir(parents=True, exist_ok=True)
    norm.save(path)
    log(f"normalization: fit on {n} training volumes in {time.perf_counter() - t0:.0f}s -> {path}")
    return norm


def encode_cache(vae: SpectralVAE, cache: PairCache, chunk: int = 32, log: Callable[[str], None] = print,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """All K slices of every cached pair -> unscaled latent means ``(N, K, 4, h, w)`` (float32)."""
    n, k = cache.volumes.shape[:2]
    flat = cache.volumes.reshape(n * k, *cache.volumes.shape[2:])
    out = []
    t0 = time.perf_counter()
    vae.eval()
    with torch.no_grad():
        for s in range(0, n * k, chunk):
            out.append(vae.encode(flat[s : s + chunk].float().to(device)).mode().cpu())
            if (s // chunk) % 20 == 0:
                log(f"latents: {min(s + chunk, n * k)}/{n * k} slices ({time.perf_counter() - t0:.0f}s)")
    z = torch.cat(out)
    return z.reshape(n, k, *z.shape[1:])


def get_latents(out: Path, vae: SpectralVAE, cache: PairCache, seed: int, log, device) -> tuple[torch.Tensor, float]:
    """Cached latents of the training pairs for the frozen VAE, and the latent scale."""
    vae_ckpt = latest_checkpoint(out / "vae")
    key = f"{vae_ckpt.name if vae_ckpt else 'none'}-n{len(cache)}-s{seed}"
    if cache.real_key:  # other images at the same indices: their latents differ
        key += "-r" + hashlib.sha256(json.dumps(cache.real_key).encode()).hexdigest()[:16]
    if cache.split != "train":  # other stills at the same indices
        key += f"-{cache.split}"
    path = out / "latents.pt"
    if path.is_file():
        blob = torch.load(path)
        if blob.get("key") == key:
            return blob["latents"], float(blob["latent_scale"])
    z = encode_cache(vae, cache, log=log, device=device)
    scale = float(1.0 / z.float().std().clamp_min(1e-6))
    seeded = out / SEED_FILE
    if seeded.is_file():  # a warm-started denoiser keeps the scale it was trained with
        scale = float(json.loads(seeded.read_text())["latent_scale"])
    tmp = out / ".latents.pt.tmp"
    torch.save({"key": key, "latents": z, "latent_scale": scale}, tmp)
    os.replace(tmp, path)
    atomic_write_bytes(out / "latent_scale.json", json.dumps({"latent_scale": scale, "vae_checkpoint": key}).encode(),
                       overwrite=True)  # export reads it: a crash mid-write must not leave half of it
    log(f"latents: {tuple(z.shape)}, std {1 / scale:.4f} -> latent_scale {scale:.4f}")
    return z, scale


# ----------------------------------------------------------------------------- a stage
def check_run_file(run_file: Path, args: TrainArgs, real_key: list, write: bool) -> None:
    """Refuse a stage whose data differs from what the run's earlier stages saw; the first stage records it.

    Why atomic, and read by the others only after the main process is done: under torchrun every
    process reaches this at once (they have just met at the rendezvous), and a process that read a
    run.json the main one had created but not yet filled failed with a JSON error."""
    if run_file.is_file():
        prev = json.loads(run_file.read_text())
        if prev.get("config") != args.config:
            raise InputError(f"{run_file.parent} holds a '{prev.get('config')}' run; "
                             f"use another --out for '{args.config}'")
        if prev.get("real", []) != real_key:  # a stage must see the data the earlier ones saw
            raise InputError(f"{run_file.parent} was trained with other real clips or --real-weight "
                             f"({', '.join(prev.get('real_clips', [])) or 'none'}); pass the same or use another --out")
        seen = prev.get("stills", DEFAULT_STILL_SET)  # runs from before still sets used the default
        if seen != args.stills:
            raise InputError(f"{run_file.parent} was trained on the still set {seen}; "
                             f"pass --stills {seen} or use another --out")
    elif write:
        doc = {"config": args.config, "data_seed": args.data_seed, "pairs": args.pairs, "stills": args.stills,
               "real": real_key, "real_clips": [Path(c).name for c in args.real]}
        atomic_write_bytes(run_file, json.dumps(doc).encode())


def train(args: TrainArgs, log: Callable[[str], None] = print, cache: Optional[PairCache] = None) -> dict:
    """Run (or resume) one stage; returns a summary dict. ``cache``: the training pairs already in
    memory (a driver running all stages in one process builds them once)."""
    if args.stage not in STAGES:
        raise InputError(f"unknown stage {args.stage!r}; choose one of {', '.join(STAGES)}")
    real_key = real_data_key(tuple(args.real), args.real_fraction)  # bad clips refused before any write
    real_key = real_key + ([sim_data_key(tuple(args.sim), args.sim_fraction)] if args.sim else [])
    split = still_splits(args.stills)[0]
    out = Path(args.out)
    stage_dir = out / args.stage
    resume_ckpt = checkpoint_to_resume(stage_dir, args.resume, args.steps, args.threads)
    refuse_other_data(resume_ckpt, {"data_seed": args.data_seed, "pairs": args.pairs})  # stills, real: run.json
    config = get_config(args.config)
    out.mkdir(parents=True, exist_ok=True)
    accel = make_accelerator()
    proc = accel.process_index
    say = log if accel.is_main_process else (lambda _m: None)
    with accel.main_process_first():  # the main process writes run.json whole before the others read it
        check_run_file(out / "run.json", args, real_key, write=accel.is_main_process)

    init = None
    if args.init_from is not None and not resume_ckpt:
        from .weights import load_weights

        init = load_weights(Path(args.init_from))
        if accel.is_main_process:
            seed_run(out, init, config, say, source=Path(args.init_from))
        accel.wait_for_everyone()
    with accel.main_process_first():  # the main process fits/writes the shared files, the others read them
        normalizer = get_normalizer(out, args.norm_samples, args.data_seed, say, split)
        if cache is None or len(cache) != args.pairs or cache.split != split:
            cache = PairCache.build(args.pairs, config, normalizer, args.data_seed, log=say,
                                    cache_file=out / "pairs.pt" if args.pair_cache else None,
                                    workers=args.workers, real=tuple(args.real), real_fraction=args.real_fraction,
                                    real_key=real_key, split=split, sim=tuple(args.sim),
                                    sim_fraction=args.sim_fraction)

    latent_scale = 1.0
    latents = None
    if args.stage == "vae":
        model = SpectralVAE(config.vae)
        params = list(model.parameters())
        batch, lr = args.batch or config.vae_batch, args.lr or config.vae_lr
    else:
        vae = SpectralVAE(config.vae)
        stage_model(out, "vae", vae)
        vae.requires_grad_(False)
        with accel.main_process_first():
            latents, latent_scale = get_latents(out, vae.to(accel.device), cache, args.data_seed, say, accel.device)
        del vae
        base = FrequencyDenoiser(config.denoiser, config.latent_size)
        if args.stage == "unet":
            model = base
            if resume_ckpt is None:
                if init is not None:
                    say(f"unet: warm start from {args.init_from}: " + warm_start(model, init.denoiser.base))
                load_condition_static_flow(model, args.static_flow, say)
            params = [p for p in model.parameters() if p.requires_grad]
            batch, lr = args.batch or config.unet_batch, args.lr or config.unet_lr
        else:
            stage_model(out, "unet", base)
            model = FrequencyCoordinatedDenoiser(base, config.num_frequencies, config.freq_attn.head_dim,
                                                 config.freq_attn.max_heads)
            if init is not None and resume_ckpt is None:
                say(f"freq-attn: warm start from {args.init_from}: " + warm_start_attention(model, init.denoiser))
            model.freeze_base()
            params = list(model.attention_parameters())
            batch, lr = args.batch or config.attn_batch, args.lr or config.attn_lr
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0 if args.stage == "freq-attn" else 1e-4)
    loop = TrainLoop(accel, model, optimizer, stage_dir, args.stage, steps=args.steps, lr=lr, data_seed=args.data_seed,
                     resume=resume_ckpt, params=params, time_budget=args.time_budget, log_every=args.log_every,
                     ckpt_every=args.ckpt_every, fields=["l1", "grad", "kl"] if args.stage == "vae" else [], say=say)
    model = loop.model
    if latents is not None and accel.device.type != "cpu":  # small enough to live on the GPU
        latents = latents.to(accel.device)
        cache = PairCache(cache.volumes, cache.images.to(accel.device), cache.real_key, cache.split)
    if args.stage == "vae":
        def step_fn(step: int, rng: np.random.Generator) -> tuple[torch.Tensor, dict]:
            x = vae_batch(cache, batch, config.vae_crop, rng).to(accel.device)
            recon, post = model(x, sample=True, generator=torch_gen(args.data_seed, step, proc))
            parts = vae_loss(x, recon, post)
            return parts.total, {"l1": f"{float(parts.l1):.6f}", "grad": f"{float(parts.grad):.6f}",
                                 "kl": f"{float(parts.kl):.2f}"}
    else:
        scheduler = make_scheduler()
        acp = scheduler.alphas_cumprod.to(accel.device)
        ntt = scheduler.config.num_train_timesteps
        cond_fields = static_fields(accel.unwrap_model(model), cache, accel.device, say)

        def step_fn(step: int, rng: np.random.Generator) -> tuple[torch.Tensor, None]:
            return _denoise_loss(args.stage, model, cache, latents, latent_scale, batch, config.num_frequencies, rng,
                                 torch_gen(args.data_seed, step, proc), acp, ntt, config.cond_dropout, accel.device,
                                 cond_fields), None

    def report(point: LogPoint) -> tuple[dict, str]:
        avg = sum(point.losses) / len(point.losses)  # the row's extras (vae: l1, grad, kl) are its last step's
        return ({"loss": f"{avg:.6f}", **(point.infos[-1] or {})},
                f"{args.stage}: step {point.step}/{point.total} loss {avg:.5f} lr {point.lr:.2g} "
                f"({point.per_step:.3f}s/step)")

    state = {"stage": args.stage, "config": args.config, "batch": batch, "lr": lr, "data_seed": args.data_seed,
             "pairs": args.pairs, "latent_scale": latent_scale}
    result = loop.run(step_fn, report, state)
    summary = {"stage": args.stage, "config": args.config, "steps": result.total, "start": result.start,
               **result.tally, "batch": batch, "lr": lr, "last_loss": result.last_loss, "latent_scale": latent_scale,
               "pairs": len(cache), "stills": args.stills, "device": result.device, "processes": result.processes}
    if args.real:
        summary.update(real=[Path(c).name for c in args.real], real_fraction=args.real_fraction)
    if args.sim:
        summary.update(sim=[str(f) for f in args.sim], sim_fraction=args.sim_fraction)
    summary = loop.finish(result, summary)
    if accel.is_main_process and args.export is not None:
        export(out, args.export, log=say)
    return summary


def static_fields(model, cache: PairCache, device, log: Callable[[str], None],
                  chunk: int = 16) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """The frozen static-flow condition of every cached image, and of the null (all-zero) image,
    computed once: ``(fields (N, 2, H, W) float16, null (1, 2, H, W))``, or None without it."""
    if not model.config.static_flow_width:
        return None
    t0 = time.perf_counter()
    out = []
    for s in range(0, len(cache), chunk):
        out.append(model.static_field(cache.images[s : s + chunk].float().to(device)).to(torch.float16))
    null = model.static_field(torch.zeros_like(cache.images[:1], dtype=torch.float32, device=device))
    log(f"static-flow condition of {len(cache)} images in {time.perf_counter() - t0:.0f}s")
    return torch.cat(out), null


def _denoise_loss(stage, model, cache: PairCache, latents: torch.Tensor, latent_scale: float, batch: int, k: int,
                  rng: np.random.Generator, gen: torch.Generator, acp: torch.Tensor, ntt: int, dropout: float,
                  device, fields: Optional[tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
    n = latents.shape[0]
    idx = torch.as_tensor(rng.integers(n, size=batch), device=latents.device)
    keep = torch.as_tensor(rng.random(batch) >= dropout, dtype=torch.float32, device=cache.images.device)
    images = cache.images[idx.to(cache.images.device)].float() * keep[:, None, None, None]
    flow = None
    if fields is not None:  # dropped images get the null image's field, as encoding zeros would
        kept = keep.to(fields[0].device)[:, None, None, None] > 0
        flow = torch.where(kept, fields[0][idx.to(fields[0].device)].float(), fields[1]).to(device)
    if stage == "unet":
        freq = torch.as_tensor(rng.integers(k, size=batch), dtype=torch.long, device=latents.device)
        z0 = latents[idx, freq].float() * latent_scale  # (B, 4, h, w)
        t = torch.as_tensor(rng.integers(ntt, size=batch), dtype=torch.long)
        cond_img = images
    else:
        freq = torch.arange(k, device=latents.device).repeat(batch)
        z0 = latents[idx].float().reshape(batch * k, *latents.shape[2:]) * latent_scale
        t = torch.as_tensor(rng.integers(ntt, size=batch), dtype=torch.long).repeat_interleave(k)
        cond_img = images
    z0, t, freq, cond_img = z0.to(device), t.to(device), freq.to(device), cond_img.to(device)
    noise = torch.randn(z0.shape, generator=gen).to(device)
    a = acp[t].to(z0.dtype).reshape(-1, 1, 1, 1)
    zt = a.sqrt() * z0 + (1.0 - a).sqrt() * noise
    pred = model(zt, t, freq, image=cond_img, flow=flow)
    return F.mse_loss(pred.float(), noise.float())


# ----------------------------------------------------------------------------- export
def export(out: Path, target: Path, log: Callable[[str], None] = print) -> dict:
    """Shipped weights from a run folder: VAE + the frequency-coordinated denoiser (stage 3 if
    trained, else the stage-2 U-Net with zero-initialised attention, which is the same model)."""
    from .weights import save_weights

    out = Path(out)
    run = json.loads((out / "run.json").read_text())
    config = get_config(run["config"])
    vae = SpectralVAE(config.vae)
    vae_state = stage_model(out, "vae", vae)
    base = FrequencyDenoiser(config.denoiser, config.latent_size)
    den = FrequencyCoordinatedDenoiser(base, config.num_frequencies, config.freq_attn.head_dim,
                                       config.freq_attn.max_heads)
    training: dict = {"vae_steps": vae_state["step"]}
    if latest_checkpoint(out / "freq-attn") is not None:
        st = stage_model(out, "freq-attn", den)
        training["freq_attn_steps"] = st["step"]
        training["unet_steps"] = json.loads((latest_checkpoint(out / "unet") / "state.json").read_text())["step"]
    else:
        st = stage_model(out, "unet", base)
        training["unet_steps"] = st["step"]
        training["freq_attn_steps"] = 0
    scale = json.loads((out / "latent_scale.json").read_text())["latent_scale"]
    normalizer = FrequencyNormalizer.load(out / "normalization.json")
    if (out / SEED_FILE).is_file():
        training["warm_start"] = json.loads((out / SEED_FILE).read_text())
    for stage in STAGES:
        s = out / stage / "summary.json"
        if s.is_file():
            training[f"{stage}_summary"] = json.loads(s.read_text())
    index = save_weights(Path(target), vae, den, normalizer, config, latent_scale=scale, training=training)
    log(f"exported {config.name} weights to {target} ({index['total_bytes'] / 2**20:.1f} MiB, "
        f"{len(index['files'])} files)")
    return index
