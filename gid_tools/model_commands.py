"""The ``gid`` subcommands that make the models: ``train``, ``eval`` and ``export-onnx`` (need torch).

Added to the CLI through the ``gid.commands`` entry point (``gid_engine.backends``), so the
runtime's CLI names none of the tooling.
"""

from __future__ import annotations

import argparse
from pathlib import Path

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


def cmd_train(args: argparse.Namespace) -> None:
    if args.stage == "render":
        return _train_render(args)
    if args.stage == "static-flow":
        return _train_static_flow(args)
    from .motion_prior.train import DEFAULT_EXPORT_DIR, TrainArgs, train

    export = None
    if args.export is not None:
        export = Path(args.export) if args.export else DEFAULT_EXPORT_DIR
    summary = train(TrainArgs(stage=args.stage, config=args.config, steps=args.steps, batch=args.batch,
                              out=Path(args.out), resume=args.resume, lr=args.lr, data_seed=args.data_seed,
                              pairs=args.pairs, norm_samples=args.norm_samples, ckpt_every=args.ckpt_every,
                              log_every=args.log_every, export=export, threads=args.threads, workers=args.workers,
                              time_budget=args.time_budget, pair_cache=not args.no_pair_cache,
                              init_from=Path(args.init_from) if args.init_from else None,
                              static_flow=Path(args.static_flow) if args.static_flow else None,
                              real=tuple(args.real or ()), real_fraction=args.real_weight,
                              stills=args.stills), log=say)
    say(f"{summary['stage']}: loss {summary['first_loss']} -> {summary['last_loss']} in {summary['seconds']}s")


def _train_static_flow(args: argparse.Namespace) -> None:
    from .motion_prior.static_flow import WEIGHTS_DIR, StaticFlowTrainArgs, train_static_flow

    export = None
    if args.export is not None:
        export = Path(args.export) if args.export else WEIGHTS_DIR
    summary = train_static_flow(StaticFlowTrainArgs(
        steps=args.steps, out=Path(args.out), pairs=args.pairs, batch=args.batch or 8, lr=args.lr or 1e-3,
        data_seed=args.data_seed, workers=args.workers, time_budget=args.time_budget, resume=args.resume,
        export=export, threads=args.threads, ckpt_every=args.ckpt_every, stills=args.stills), log=say)
    say(f"static-flow: L1 {summary['first_loss']:.4f} -> {summary['last_loss']:.4f} px in {summary['seconds']}s")


def _train_render(args: argparse.Namespace) -> None:
    from .renderer.checkpoint import WEIGHTS_DIR
    from .renderer.train import DEFAULT_REAL, RenderTrainArgs, train_renderer

    if args.config not in ("tiny", "small"):
        raise InputError("the renderer has the configs tiny and small")
    export = None
    if args.export is not None:
        export = Path(args.export) if args.export else WEIGHTS_DIR
    real = tuple(args.real) if args.real is not None else tuple(str(p) for p in DEFAULT_REAL)
    summary = train_renderer(RenderTrainArgs(
        config=args.config, steps=args.steps, out=Path(args.out), resume=args.resume, batch=args.batch, lr=args.lr,
        data_seed=args.data_seed, pairs=args.pairs, real=real, ckpt_every=args.ckpt_every,
        log_every=args.log_every, threads=args.threads, export=export, workers=args.workers,
        time_budget=args.time_budget, same_still=args.same_still, real_weight=args.real_weight, stills=args.stills,
        extracted_flow=args.extracted_flow, init_from=Path(args.init_from) if args.init_from else None), log=say)
    say(f"render: loss {summary['first_loss']:.5f} -> {summary['last_loss']:.5f} in {summary['seconds']}s")


def cmd_eval(args: argparse.Namespace) -> None:
    if args.what == "render":
        from .renderer.checkpoint import WEIGHTS_DIR as RENDERER_DIR
        from .renderer.evaluate import RenderEvalArgs, run_render_eval

        real = tuple(args.real) if args.real is not None else RenderEvalArgs().real
        run_render_eval(RenderEvalArgs(weights=Path(args.weights) if args.weights else RENDERER_DIR,
                                       n=args.n if args.n is not None else 32, seed=args.seed, real=real,
                                       json_path=args.json, stills=args.stills), log=say)
        return
    from .motion_prior.evaluate import HELD_OUT_REAL, EvalArgs, run_eval
    from ..gid_engine.prediction.predict import WEIGHTS_DIR

    run_eval(EvalArgs(weights=Path(args.weights) if args.weights else WEIGHTS_DIR,
                      n=args.n if args.n is not None else 8, steps=args.steps,
                      seed=args.seed, real=args.real if args.real is not None else [str(HELD_OUT_REAL)],
                      real_pairs=args.real_pairs, seam=args.seam,
                      seam_steps=args.seam_steps, json_path=args.json, device=args.device,
                      guidance=args.guidance, repeats=args.repeats, init_strength=args.init_strength,
                      stills=args.stills, static_flow=Path(args.static_flow) if args.static_flow else None), log=say)



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

    p = sub.add_parser("train", help="train the motion prior (stages vae, unet, freq-attn), the neural renderer, "
                       "or the learned Eulerian baseline of gid eval (static-flow)")
    p.add_argument("stage", choices=["vae", "unet", "freq-attn", "render", "static-flow"])
    p.add_argument("--config", choices=["tiny", "small", "paper-like"], default="small")
    p.add_argument("--steps", type=int, required=True, help="total optimizer steps of this stage")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: the config's)")
    p.add_argument("--out", required=True, help="run folder, shared by the three stages (checkpoints/NAME)")
    p.add_argument("--resume", action="store_true", help="continue from the stage's latest checkpoint")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the config's)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the training pairs and batches")
    p.add_argument("--pairs", type=int, default=256, help="training pairs generated and kept in memory")
    p.add_argument("--stills", choices=list(STILL_SETS), default=DEFAULT_STILL_SET,
                   help="the licensed stills the synthetic pairs (render: triples) are made from "
                        "(data/stills/splits.json; v1: the 12 every shipped model was trained on, v2: 24)")
    p.add_argument("--norm-samples", type=int, default=256, help="pairs the normalization is fit on")
    p.add_argument("--ckpt-every", type=int, default=200, help="checkpoint interval in steps")
    p.add_argument("--log-every", type=int, default=10, help="loss.csv / log interval in steps")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=1, help="processes generating the training data")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="fit the training loop (not data generation or export) into this many seconds: the step "
                        "count is fixed from the first steps' speed (at most --steps), before the learning-rate "
                        "decay starts; a resumed run keeps that count")
    p.add_argument("--no-pair-cache", action="store_true",
                   help="prior stages: do not keep the pairs in OUT/pairs.pt (it takes ~5.5 MB a pair)")
    p.add_argument("--init-from", default=None, metavar="WEIGHTS",
                   help="prior stages: warm start from a weights folder (its VAE, normalization and latent scale; "
                        "the U-Net / attention layers, widened with zeros where the config grew); render: start "
                        "from a renderer weights folder of the same config")
    p.add_argument("--static-flow", default=None, metavar="DIR",
                   help="unet stage: StaticFlowNet weights of the condition (default gid_engine/assets/static_flow)")
    p.add_argument("--same-still", type=float, default=0.0, metavar="P",
                   help="render stage: share of synthetic triples whose revealed background is the same still")
    p.add_argument("--extracted-flow", type=float, default=0.0, metavar="P",
                   help="render stage: share of synthetic triples whose exact motion is replaced by the flow "
                        "gid's extraction finds between their frames (what real clips give the renderer)")
    p.add_argument("--real-weight", type=float, default=0.25, metavar="P",
                   help="share of the training data drawn from the real clips (render: of each batch; "
                   "prior stages: of the cached pairs)")
    p.add_argument("--real", nargs="*", default=None,
                   help="real clips whose motion joins the training data. render: frame pairs with DIS flow "
                   "(default: the clips of samples/clips.json); prior stages: extracted spectral volumes, every "
                   "10th frame a start, as in the paper (default: none; samples/tree.avi is held out and refused)")
    p.add_argument("--export", nargs="?", const="", default=None, metavar="DIR",
                   help="afterwards write the shipped weights folder (default gid_engine/assets/motion_prior, "
                        "gid_engine/assets/renderer for the render stage, gid_engine/assets/static_flow for "
                        "static-flow)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval",
                       help="evaluate the learned prior or the neural renderer on held-out data (markdown table)")
    p.add_argument("what", nargs="?", choices=["prior", "render"], default="prior")
    p.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    p.add_argument("--n", type=int, default=None, help="held-out synthetic pairs (split 'eval'; default 8, render 32)")
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
    p.add_argument("--device", choices=["auto", "gpu", "cpu"], default="auto")
    p.add_argument("--json", default=None, help="also write the results as JSON")
    p.set_defaults(func=cmd_eval)
