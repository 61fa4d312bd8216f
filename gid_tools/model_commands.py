"""The ``gid`` subcommands that make the models: ``train``, ``eval`` and ``export-onnx`` (need torch).

Added to the CLI through the ``gid.commands`` entry point (``gid_engine.backends``), so the
runtime's CLI names none of the tooling.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from ..gid_engine.cli import say, seed_type
from ..gid_engine.errors import InputError
from ..gid_engine.repo_data import DEFAULT_STILL_SET, STILL_SETS


def cmd_export_onnx(args: argparse.Namespace) -> None:
    if args.prior:
        from .motion_prior.onnx_export import DEFAULT_ONNX_DIR, export_prior_from_weights
        from ..gid_engine.prediction.predict import WEIGHTS_DIR

        export_prior_from_weights(Path(args.weights) if args.weights else WEIGHTS_DIR,
                                  Path(args.output) if args.output else DEFAULT_ONNX_DIR, log=say)
        return
    if args.neural:
        from .renderer.checkpoint import WEIGHTS_DIR as RENDERER_DIR
        from .renderer.onnx_export import export_renderer_onnx

        folder = Path(args.weights) if args.weights else RENDERER_DIR
        for path in export_renderer_onnx(folder, out=Path(args.output) if args.output else None):
            say(f"wrote {path}")
        return
    if args.weights:
        raise InputError("--weights goes with --prior or --neural (the splat renderer has no weights)")
    from .export_onnx import export_splat_onnx
    from ..gid_engine.runtime import SPLAT_ONNX, asset_path

    target = Path(args.output) if args.output else asset_path(SPLAT_ONNX)
    export_splat_onnx(target)
    say(f"wrote {target}")


def _export_dir(value: Optional[str], default: Path) -> Optional[Path]:
    """``--export``: absent None, bare the shipped folder ``default``, else the folder given."""
    if value is None:
        return None
    return Path(value) if value else default


def cmd_train_prior(args: argparse.Namespace) -> None:
    from .motion_prior.train import DEFAULT_EXPORT_DIR, TrainArgs, train

    init_from, static_flow = getattr(args, "init_from", None), getattr(args, "static_flow", None)
    summary = train(TrainArgs(stage=args.stage, config=args.config, steps=args.steps, batch=args.batch,
                              out=Path(args.out), resume=args.resume, lr=args.lr, data_seed=args.data_seed,
                              pairs=args.pairs, norm_samples=args.norm_samples, ckpt_every=args.ckpt_every,
                              log_every=args.log_every, export=_export_dir(args.export, DEFAULT_EXPORT_DIR),
                              threads=args.threads, workers=args.workers, time_budget=args.time_budget,
                              pair_cache=not args.no_pair_cache, init_from=Path(init_from) if init_from else None,
                              static_flow=Path(static_flow) if static_flow else None,
                              real=tuple(args.real or ()), real_fraction=args.real_weight,
                              sim=tuple(args.sim or ()), sim_fraction=args.sim_weight,
                              stills=args.stills), log=say)
    say(f"{summary['stage']}: loss {summary['first_loss']} -> {summary['last_loss']} in {summary['seconds']}s")


def cmd_train_static_flow(args: argparse.Namespace) -> None:
    from .motion_prior.static_flow import WEIGHTS_DIR, StaticFlowTrainArgs, train_static_flow

    summary = train_static_flow(StaticFlowTrainArgs(
        steps=args.steps, out=Path(args.out), pairs=args.pairs, batch=args.batch, lr=args.lr,
        data_seed=args.data_seed, workers=args.workers, time_budget=args.time_budget, resume=args.resume,
        export=_export_dir(args.export, WEIGHTS_DIR), threads=args.threads, ckpt_every=args.ckpt_every,
        log_every=args.log_every, stills=args.stills, sim=tuple(args.sim or ()), sim_fraction=args.sim_weight,
        init_from=Path(args.init_from) if args.init_from else None,
        teachers=tuple(Path(t) for t in args.teacher or ())), log=say)
    say(f"static-flow: L1 {summary['first_loss']:.4f} -> {summary['last_loss']:.4f} px in {summary['seconds']}s")


def cmd_train_render(args: argparse.Namespace) -> None:
    from .renderer.checkpoint import WEIGHTS_DIR
    from .renderer.train import RenderTrainArgs, train_renderer

    real = tuple(args.real) if args.real is not None else RenderTrainArgs().real
    summary = train_renderer(RenderTrainArgs(
        config=args.config, steps=args.steps, out=Path(args.out), resume=args.resume, batch=args.batch, lr=args.lr,
        data_seed=args.data_seed, pairs=args.pairs, real=real, ckpt_every=args.ckpt_every,
        log_every=args.log_every, threads=args.threads, export=_export_dir(args.export, WEIGHTS_DIR),
        workers=args.workers, time_budget=args.time_budget, same_still=args.same_still, real_weight=args.real_weight,
        stills=args.stills, extracted_flow=args.extracted_flow,
        init_from=Path(args.init_from) if args.init_from else None,
        sim=tuple(args.sim or ()), sim_weight=args.sim_weight, hole_weight=args.hole_weight,
        sim_extracted_flow=args.sim_extracted_flow), log=say)
    say(f"render: loss {summary['first_loss']:.5f} -> {summary['last_loss']:.5f} in {summary['seconds']}s")


def cmd_eval(args: argparse.Namespace) -> None:
    if args.what == "render":
        from .renderer.checkpoint import WEIGHTS_DIR as RENDERER_DIR
        from .renderer.evaluate import RenderEvalArgs, run_render_eval

        real = tuple(args.real) if args.real is not None else RenderEvalArgs().real
        run_render_eval(RenderEvalArgs(weights=Path(args.weights) if args.weights else RENDERER_DIR,
                                       n=args.n if args.n is not None else 32, seed=args.seed, real=real,
                                       json_path=args.json, stills=args.stills,
                                       sim=tuple(Path(d) for d in args.sim or ()),
                                       sim_extracted=tuple(Path(d) for d in args.sim_extracted or ()),
                                       against=Path(args.against) if args.against else None), log=say)
        return
    if args.against:
        raise InputError("--against compares renderers: use it with gid eval render")
    if args.sim_extracted:
        raise InputError("--sim-extracted scores renderers: use it with gid eval render")
    from .motion_prior.evaluate import HELD_OUT_REAL, EvalArgs, run_eval
    from ..gid_engine.prediction.predict import WEIGHTS_DIR

    run_eval(EvalArgs(weights=Path(args.weights) if args.weights else WEIGHTS_DIR,
                      n=args.n if args.n is not None else 8, steps=args.steps,
                      seed=args.seed, real=args.real if args.real is not None else [str(HELD_OUT_REAL)],
                      real_pairs=args.real_pairs, seam=args.seam,
                      seam_steps=args.seam_steps, json_path=args.json, device=args.device,
                      guidance=args.guidance, repeats=args.repeats, init_strength=args.init_strength,
                      stills=args.stills, static_flow=Path(args.static_flow) if args.static_flow else None,
                      sim=tuple(Path(d) for d in args.sim or ())), log=say)



def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``export-onnx``, ``train`` and ``eval`` to the ``gid`` parser's subcommands ``sub``."""
    p = sub.add_parser("export-onnx", help="re-export the shipped ONNX graphs from torch: the splat renderer "
                                           "(default), the neural renderer (--neural) or the motion prior (--prior)")
    p.add_argument("-o", "--output", default=None,
                   help="output file (splat) or folder (--prior: default gid_engine/assets/motion_prior_onnx; "
                        "--neural: default the weights folder)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--prior", action="store_true", help="export the learned motion prior")
    which.add_argument("--neural", action="store_true", help="export the neural renderer")
    p.add_argument("--weights", default=None,
                   help="with --prior or --neural: the weights folder (default: the shipped one)")
    p.set_defaults(func=cmd_export_onnx)

    _add_train(sub)

    p = sub.add_parser("eval",
                       help="evaluate the learned prior or the neural renderer on held-out data (markdown table)")
    p.add_argument("what", nargs="?", choices=["prior", "render"], default="prior")
    p.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    p.add_argument("--n", type=int, default=None,
                   help="held-out synthetic pairs (split 'eval'; default 8, render 32; 0: none)")
    p.add_argument("--real", nargs="*", default=None,
                   help="held-out real clips (default: prior samples/tree.avi; render those of samples/clips.json)")
    p.add_argument("--real-pairs", type=int, default=2, help="pairs taken from each real clip")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the model's)")
    p.add_argument("--seed", type=seed_type, default=0, help="random seed, 0 .. 2**63-1 (default 0)")
    p.add_argument("--seam", type=int, default=2, help="pairs sampled with and without self-guidance")
    p.add_argument("--seam-steps", type=int, default=25, help="DDIM steps of the seam comparison")
    p.add_argument("--guidance", type=float, default=None, metavar="W",
                   help="classifier-free guidance scale of the prior's samples (default: the model's)")
    p.add_argument("--repeats", type=int, default=1, metavar="R",
                   help="prior: samples per pair (other seeds); the table gives mean ± sd over the R draws")
    p.add_argument("--init-strength", type=float, default=None, metavar="S",
                   help="prior: start from the static-flow field's motion and run this share of the steps "
                        "(Eulerian-initialised sampling; 1 = plain sampling; default: gid predict's)")
    p.add_argument("--stills", choices=list(STILL_SETS), default=DEFAULT_STILL_SET,
                   help="the still set whose held-out stills give the synthetic pairs or triples (v1: 2 stills, "
                        "every table so far; v2: 4)")
    p.add_argument("--static-flow", default=None, metavar="DIR",
                   help="prior: weights of the learned Eulerian baseline row (default gid_engine/assets/static_flow)")
    p.add_argument("--sim", nargs="*", default=None, metavar="DIR",
                   help="also evaluate on the held-out simulated scenes (gid make-data --split eval) of each DIR, "
                        "a row each")
    p.add_argument("--sim-extracted", nargs="*", default=None, metavar="DIR",
                   help="render: score the held-out simulated scenes of each DIR again with the flow gid's "
                        "extraction finds between their frames (what a real clip hands the renderer), a row each")
    p.add_argument("--against", default=None, metavar="WEIGHTS",
                   help="render: also score these renderer weights on the same triples and give the paired gain "
                        "over them, with its interval (a candidate against the shipped weights)")
    p.add_argument("--device", choices=["auto", "gpu", "cpu"], default="auto")
    p.add_argument("--json", default=None, help="also write the results as JSON")
    p.set_defaults(func=cmd_eval)


# ----------------------------------------------------------------------------- gid train
def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_train(sub: argparse._SubParsersAction) -> None:
    """``gid train prior {vae,unet,freq-attn}``, ``gid train render``, ``gid train static-flow``.

    Each has only the flags that act on it, each flag with one meaning. The older spelling ``gid
    train vae|unet|freq-attn`` stays as an unlisted alias of ``gid train prior STAGE``."""
    p = sub.add_parser("train", help="train a model: the motion prior, stage by stage (prior vae|unet|freq-attn), "
                                     "the neural renderer (render) or the learned Eulerian baseline (static-flow)",
                       description="Train a model, resumably (--resume) and optionally within a time budget. "
                                   "Checkpoints, loss.csv and summary.json go to OUT/STAGE.")
    what = p.add_subparsers(metavar="{prior,render,static-flow}", required=True)
    prior = what.add_parser("prior", help="the motion prior, one stage per call: vae, then unet, then freq-attn "
                                          "(all three share --out)",
                            description="Train one stage of the motion prior. The stages share --out: the first "
                                        "fits the normalization and makes the training pairs, the later ones "
                                        "start from the earlier stages' checkpoints.")
    stages = prior.add_subparsers(metavar="{vae,unet,freq-attn}", required=True)
    for stage, text in _PRIOR_STAGES.items():
        _prior_stage(stages.add_parser(stage, help=text, description=text), stage)
    _render(what.add_parser("render", help=_RENDER, description=_RENDER))
    _static_flow(what.add_parser("static-flow", help=_STATIC_FLOW, description=_STATIC_FLOW))
    for stage, text in _PRIOR_STAGES.items():  # gid train vae|unet|freq-attn: not listed (no help=)
        _prior_stage(what.add_parser(stage, description=f"{text} (also spelt gid train prior {stage})"), stage)


_PRIOR_STAGES = {
    "vae": "stage 1: the spectral VAE, on single frequency slices of the training pairs' volumes",
    "unet": "stage 2: the latent denoiser (VAE frozen), one frequency slice per sample",
    "freq-attn": "stage 3: the frequency-attention layers on the frozen stage-2 U-Net, all slices at once",
}
_RENDER = "the neural renderer, on synthetic triples and the real clips' frame pairs"
_STATIC_FLOW = "the learned Eulerian baseline: StaticFlowNet, a still's static-flow field (gid eval's baseline row)"


def _run_flags(p: argparse.ArgumentParser, out: str, pairs: str, batch: str, lr: str, export: str,
               data: str, log_every: int = 10) -> None:
    """The flags every trainer has; ``out`` ... ``data``: what each means for this trainer."""
    p.add_argument("--steps", type=int, required=True,
                   help="optimizer steps of the run (a resumed run keeps the total it started with)")
    p.add_argument("--out", required=True, help=out)
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its latest checkpoint (bit-identical to an uninterrupted "
                        "run); without it an --out that has checkpoints is refused")
    p.add_argument("--pairs", type=int, default=256, help=pairs)
    p.add_argument("--data-seed", type=int, default=0, help=f"seed of the {data} and of every step's batch")
    p.add_argument("--stills", choices=list(STILL_SETS), default=DEFAULT_STILL_SET,
                   help=f"the licensed stills the {data} are made from (data/stills/splits.json; v1: the 12 every "
                        f"shipped model was trained on, v2: 24)")
    p.add_argument("--batch", type=int, default=None, help=batch)
    p.add_argument("--lr", type=float, default=None, help=lr)
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="fit the training loop (not data generation or export) into this many seconds: the step "
                        "count is fixed from the first steps' speed (at most --steps), before the learning-rate "
                        "decay starts; a resumed run keeps that count")
    p.add_argument("--ckpt-every", type=_at_least_one, default=200, metavar="N",
                   help="checkpoint every N steps (and at the end); --resume continues from the latest")
    p.add_argument("--log-every", type=_at_least_one, default=log_every, metavar="N",
                   help=f"a loss.csv row and a log line every N steps (and at the end; default {log_every})")
    p.add_argument("--workers", type=int, default=1, help=f"processes generating the {data}")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--export", nargs="?", const="", default=None, metavar="DIR", help=export)
    # the gid parser gives every command this flag, but only at its first level (gid train): here too, and
    # SUPPRESS keeps a value given before the subcommand (gid train --memory-budget 4 prior vae ...)
    p.add_argument("--memory-budget", type=float, default=argparse.SUPPRESS, metavar="GIB",
                   help="refuse work estimated to need more memory than this (GiB; default GID_MEMORY_BUDGET or 2)")


def _prior_stage(p: argparse.ArgumentParser, stage: str) -> None:
    p.add_argument("--config", choices=["tiny", "small", "paper-like"], default="small",
                   help="model and data size (every stage of a run uses the same)")
    _run_flags(p, out="run folder shared by the three stages (checkpoints/NAME); this stage writes OUT/" + stage,
               pairs="training pairs (a still and its spectral volume) generated once, kept in memory and in "
                     "OUT/pairs.pt for the next stage",
               batch="samples per step (default: the config's for this stage)",
               lr="peak learning rate (default: the config's for this stage)",
               export="afterwards write the run's shipped weights folder: its VAE and its latest denoiser stage "
                      "(default gid_engine/assets/motion_prior)",
               data="training pairs")
    p.add_argument("--norm-samples", type=int, default=256,
                   help="pairs the frequency normalization is fit on (by the run's first stage)")
    p.add_argument("--no-pair-cache", action="store_true",
                   help="do not keep the pairs in OUT/pairs.pt (it takes ~5.5 MB a pair)")
    p.add_argument("--real", nargs="*", default=None, metavar="CLIP",
                   help="real clips whose extracted motion joins the training pairs, every 10th frame a start as "
                        "in the paper (default: none; samples/tree.avi is held out and refused)")
    p.add_argument("--real-weight", type=float, default=0.25, metavar="P",
                   help="share of the training pairs drawn from the --real clips (default 0.25)")
    p.add_argument("--sim", nargs="*", default=None, metavar="DIR",
                   help="folders of simulated shards (gid make-data) whose train views join the training pairs")
    p.add_argument("--sim-weight", type=float, default=0.5, metavar="P",
                   help="share of the non-real training pairs drawn from the --sim shards (default 0.5)")
    if stage != "vae":
        p.add_argument("--init-from", default=None, metavar="WEIGHTS",
                       help="warm start from a motion-prior weights folder: its VAE, normalization and latent scale "
                            "become the run's, and the stage starts from its "
                            + ("U-Net, widened with zeros where the config grew" if stage == "unet"
                               else "frequency-attention layers"))
    if stage == "unet":
        p.add_argument("--static-flow", default=None, metavar="DIR",
                       help="StaticFlowNet weights of the condition, for a config that has one (default "
                            "gid_engine/assets/static_flow)")
    p.set_defaults(func=cmd_train_prior, stage=stage)


def _render(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", choices=["tiny", "small"], default="small", help="renderer size")
    _run_flags(p, out="run folder; the renderer's checkpoints go to OUT/render",
               pairs="synthetic triples (frame, exact motion, next frame) generated once into OUT and kept in memory",
               batch="crops per step (default: the config's)", lr="peak learning rate (default: the config's)",
               export="afterwards write the shipped renderer weights and ONNX graphs (default "
                      "gid_engine/assets/renderer)",
               data="synthetic triples")
    p.add_argument("--real", nargs="*", default=None, metavar="CLIP",
                   help="real clips whose training frame pairs (with DIS flow) join the data (default: the clips of "
                        "samples/clips.json but its evaluation-only ones; their held-out frames are left out)")
    p.add_argument("--real-weight", type=float, default=0.25, metavar="P",
                   help="share of each batch drawn from the real clips' pairs (default 0.25)")
    p.add_argument("--same-still", type=float, default=0.0, metavar="P",
                   help="share of synthetic triples whose revealed background is the foreground's own still")
    p.add_argument("--extracted-flow", type=float, default=0.0, metavar="P",
                   help="share of synthetic triples whose exact motion is replaced by the flow gid's extraction "
                        "finds between their frames (what real clips give the renderer)")
    p.add_argument("--init-from", default=None, metavar="WEIGHTS",
                   help="start a new run from a renderer weights folder of the same config")
    p.add_argument("--sim", nargs="*", default=None, metavar="DIR",
                   help="folders of simulated shards (gid make-data) whose train triples join the data")
    p.add_argument("--sim-weight", type=float, default=0.4, metavar="P",
                   help="share of each batch drawn from the --sim triples (default 0.4)")
    p.add_argument("--sim-extracted-flow", type=float, default=0.0, metavar="P",
                   help="share of the --sim triples whose exact motion is replaced by the flow gid's extraction "
                        "finds between their frames (what real clips give the renderer)")
    p.add_argument("--hole-weight", type=float, default=0.0, metavar="W",
                   help="the L1 loss weighs the pixels the plain splat leaves disoccluded (those gid eval render "
                        "scores apart) 1 + W, the rest 1 (default 0: every pixel alike)")
    p.set_defaults(func=cmd_train_render)


def _static_flow(p: argparse.ArgumentParser) -> None:
    _run_flags(p, out="run folder; the network's checkpoints go to OUT/static-flow",
               pairs="training pairs (a still and its static-flow field) generated and kept in memory",
               batch="images per step (default 8)", lr="peak learning rate (default 1e-3)",
               export="afterwards write the network's weights folder (default gid_engine/assets/static_flow)",
               data="training pairs", log_every=50)
    p.add_argument("--sim", nargs="*", default=None, metavar="DIR",
                   help="folders of simulated shards (gid make-data) whose train views, with their exact static-flow "
                        "fields, replace a share of the synthetic pairs")
    p.add_argument("--sim-weight", type=float, default=0.5, metavar="P",
                   help="share of the training pairs drawn from the --sim shards (default 0.5)")
    p.add_argument("--init-from", default=None, metavar="WEIGHTS",
                   help="start a new run from a static-flow weights folder instead of random weights")
    p.add_argument("--teacher", nargs="+", default=None, metavar="WEIGHTS",
                   help="distil: the target of every pair is the mean output field of these static-flow weights "
                        "folders for its image, not its reference field")
    p.set_defaults(func=cmd_train_static_flow, batch=8, lr=1e-3)
