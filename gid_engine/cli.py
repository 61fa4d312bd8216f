"""The ``gid`` command line.

Every user-caused failure prints one line (``gid: error: ...``) and exits 2; Ctrl-C exits 130
after the outputs in progress are removed, and SIGTERM/SIGHUP do the same (exit 128 + signal);
nothing is half-written. A genuine bug prints one line too, and its traceback only with
``GID_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Callable, NoReturn, Optional, Sequence

from ..exporters.atomic import name_too_long, protected_inputs, refuse_inputs, short_name
from ..exporters.errors import ExportError

from . import __version__, arguments
from .budget import set_memory_budget
from .errors import Cancelled, GidError, InputError
from .signals import Terminated, terminate_as_interrupt
from .repo_data import DEFAULT_STILL_SET, STILL_SETS
from .progress import Job

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 3
EXIT_CANCELLED = 130
# The arguments that name files a command reads: no output of that command may replace them
# (exporters.atomic.protected_inputs; the readers add every file they open, frames of a sequence too).
INPUT_ARGUMENTS = ("image", "video", "motion", "weights", "source", "init_from")


def main(argv: Optional[Sequence[str]] = None) -> int:
    _usable_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    def work() -> Optional[int]:
        set_memory_budget(args.memory_budget)
        result = args.func(args)
        _flush_stdout()
        return result

    with protected_inputs(*(getattr(args, name, None) for name in INPUT_ARGUMENTS)):
        with terminate_as_interrupt():
            return run_reporting(work)


def run_reporting(work: Callable[[], Optional[int]]) -> int:
    """Run ``work`` and turn every outcome into the CLI's exit code and (at most) one line on stderr:
    0 done, 2 a user error, 130 cancelled, 3 a bug. Shared with ``gid selftest``'s direct engine calls."""
    try:
        result = work()
        return 0 if result is None else int(result)
    except Terminated as exc:
        print(f"gid: stopped by {exc.name}; nothing was written", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gid: cancelled; nothing was written", file=sys.stderr)
        return EXIT_CANCELLED
    except Cancelled as exc:
        print(f"gid: {exc}", file=sys.stderr)
        return EXIT_CANCELLED
    except (GidError, ExportError) as exc:
        print(f"gid: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # the system refused a file operation the user's request implied
        print(f"gid: error: {_describe_os_error(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except MemoryError:
        print("gid: error: out of memory; try a smaller image or resolution", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as exc:  # a bug: say so in one line; GID_DEBUG shows the traceback
        if os.environ.get("GID_DEBUG"):
            raise
        print(f"gid: internal error: {type(exc).__name__}: {exc} (set GID_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_INTERNAL


def _usable_streams() -> None:
    """Make stdout and stderr safe to print to: a closed one (``2>&-``) becomes the null device, and
    characters the locale cannot encode (a non-ASCII file name under LANG=C) print as escapes
    instead of raising."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            setattr(sys, name, open(os.devnull, "w"))
        elif hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (OSError, ValueError):
                pass


def print_result(text: str) -> None:
    """Print a command's result on stdout; a full or closed stdout is a one-line error."""
    try:
        print(text)
    except OSError as exc:
        raise _stdout_failed(exc) from None


def _flush_stdout() -> None:
    """Flush what the command printed, so a full or closed stdout (``> /dev/full``) is reported as an
    error now rather than as a traceback when the interpreter exits."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        raise _stdout_failed(exc) from None


def _stdout_failed(exc: OSError) -> ExportError:
    """The error for a failed write to stdout; what is still buffered is sent to the null device so
    the interpreter's own flush at exit cannot fail a second time."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return ExportError(f"cannot write to standard output: {exc.strerror or exc}")


def _describe_os_error(exc: OSError) -> str:
    """One line for an OSError that reached the top: what failed, on which file, and why."""
    import errno

    name = exc.filename if exc.filename is not None else ""
    if exc.errno == errno.ENAMETOOLONG:
        return name_too_long(name)
    what = f"{short_name(os.fspath(name), 120)}: " if name else ""
    if exc.errno == errno.EROFS:
        return f"{what}the file system is read-only"
    return f"{what}{exc.strerror or exc}"


# --------------------------------------------------------------------------------- helpers
def progress_job(enabled: bool = True) -> tuple[Job, Callable[[], None]]:
    """A Job wired to a tqdm bar on stderr (one bar per task label)."""
    bars: dict[str, object] = {}
    if not enabled or not sys.stderr.isatty() and not os.environ.get("GID_PROGRESS"):
        return Job(), lambda: None
    from tqdm import tqdm

    def update(done: int, total: int, what: str) -> None:
        bar = bars.get(what)
        if bar is None:
            bar = bars[what] = tqdm(total=total, desc=what or "working", unit="frame", leave=False, file=sys.stderr)
        bar.n = done  # type: ignore[attr-defined]
        bar.refresh()  # type: ignore[attr-defined]

    def close() -> None:
        for bar in bars.values():
            bar.close()  # type: ignore[attr-defined]

    return Job(update), close


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 256x160, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h


def _seed(text: str) -> int:
    """--seed: the engine's own check (arguments.seed), so the CLI and the API accept the same seeds."""
    try:
        return arguments.seed(int(text))
    except ValueError:  # not an integer, or out of range (ArgumentError is a ValueError)
        raise argparse.ArgumentTypeError(f"must be an integer 0 .. {arguments.SEED_MAX:,}, got {text[:40]!r}") from None


def _depth(text: str) -> object:
    return int(text) if text in ("8", "16") else text


def say(text: str) -> None:
    print(text, file=sys.stderr)


def _render_options(args: argparse.Namespace):
    from .pipeline import RenderOptions

    return RenderOptions(frames=args.frames, fps=args.fps, slowmo=args.slowmo, loop=not args.no_loop,
                         amplitude=args.amplitude, anchor=not args.no_anchor, fit=args.fit,
                         backend=getattr(args, "backend", "onnx"), device=getattr(args, "device", "auto"),
                         renderer=getattr(args, "renderer", "auto"),
                         splat_resolution=getattr(args, "splat_resolution", "auto"),
                         motion_upsample=getattr(args, "motion_upsample", "guided"))


# --------------------------------------------------------------------------------- commands
def cmd_extract(args: argparse.Namespace) -> None:
    from .extract import extract_motion
    from .sv_file import save_spectral_volume

    out = Path(args.output)
    refuse_inputs([out])  # before any work
    if out.exists() and not args.overwrite:
        raise InputError(f"{out} already exists; pass --overwrite to replace it")
    job, close = progress_job()
    t0 = time.perf_counter()
    try:
        sv = extract_motion(args.video, fps=args.fps, start_frame=args.start, max_side=args.max_side,
                            resolution=args.size, method=args.method, job=job)
    finally:
        close()
    save_spectral_volume(sv, out, overwrite=args.overwrite)
    peak = float(sv.mean_magnitude().max())
    say(f"wrote {out}: {sv.width}x{sv.height}, K={sv.K}, {sv.fps:g} fps x {sv.num_frames} frames "
         f"from {sv.source} in {time.perf_counter() - t0:.1f}s (largest mean displacement {peak:.2f} px)")


def cmd_render(args: argparse.Namespace) -> None:
    from .pipeline import render_to_dir

    job, close = progress_job()
    t0 = time.perf_counter()
    try:
        result = render_to_dir(args.image, args.motion, args.output, _render_options(args), fmt=args.format,
                               depth=args.depth, prefix=args.prefix, preview=args.preview,
                               overwrite=args.overwrite, job=job, log=say)
    finally:
        close()
    dt = time.perf_counter() - t0
    say(f"wrote {result.frames} frames to {args.output} ({result.provider}, {dt:.1f}s, "
         f"{result.frames / max(dt, 1e-9):.1f} frames/s)")


def cmd_displace(args: argparse.Namespace) -> None:
    from .imaging import load_image
    from .pipeline import displace_to_dir

    size = args.size
    if size is None:
        image = load_image(args.image)
        size = (image.width, image.height)
    job, close = progress_job()
    try:
        files = displace_to_dir(size, args.motion, args.output, _render_options(args), kind=args.kind,
                                prefix=args.prefix, overwrite=args.overwrite, job=job, source_image=args.image)
    finally:
        close()
    say(f"wrote {len(files)} files to {args.output}")


def cmd_info(args: argparse.Namespace) -> None:
    import json

    from .sv_file import load_spectral_volume

    sv = load_spectral_volume(args.motion)
    meta = sv.metadata()
    meta["peak_coefficient_px"] = float(abs(sv.complex_coeffs()).max())
    meta["mean_displacement_px"] = float(sv.mean_magnitude().mean())
    print_result(json.dumps(meta, indent=2))


def cmd_export_onnx(args: argparse.Namespace) -> None:
    if args.prior:
        from .motion_prior.onnx_export import DEFAULT_ONNX_DIR, export_prior_from_weights
        from .predict import WEIGHTS_DIR

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
    from .runtime import SPLAT_ONNX, asset_path

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


def cmd_animate(args: argparse.Namespace) -> None:
    from .engine import Engine

    engine = Engine(device=args.device, backend=args.backend, renderer=args.renderer, log=say)
    job, close = progress_job()
    try:
        result = engine.animate(args.image, args.output, seed=args.seed, steps=args.steps, frames=args.frames,
                                fps=args.fps, amplitude=args.amplitude, slowmo=args.slowmo, fmt=args.format,
                                preview=None if args.no_preview else "gif", overwrite=args.overwrite, job=job,
                                init_strength=args.init_strength)
    finally:
        close()
    s = result.seconds
    say(f"wrote {result.frames} frames to {result.out_dir} (+ {result.motion_file.name}): prediction "
         f"{s['predict']:.1f}s, rendering {s['render']:.1f}s, total {s['total']:.1f}s")


def cmd_predict(args: argparse.Namespace) -> None:
    from .imaging import load_image
    from .predict import WEIGHTS_DIR, predict_motion
    from .sv_file import save_spectral_volume

    out = Path(args.output)
    refuse_inputs([out])  # before any work
    if out.exists() and not args.overwrite:
        raise InputError(f"{out} already exists; pass --overwrite to replace it")
    image = load_image(args.image)
    job, close = progress_job()
    t0 = time.perf_counter()
    try:
        sv = predict_motion(image, seed=args.seed, steps=args.steps, device=args.device,
                            weights_dir=Path(args.weights) if args.weights else WEIGHTS_DIR, job=job,
                            backend=args.backend, log=say, init_strength=args.init_strength)
    finally:
        close()
    dt = time.perf_counter() - t0
    save_spectral_volume(sv, out, overwrite=args.overwrite)
    from .motion_prior.eulerian_init import steps_run

    start, n = sv.extra.get("init_strength"), sv.extra.get("steps")
    steps = f"{n} steps" + (f" from the Eulerian start ({steps_run(n, start)} run)" if start else "")
    say(f"wrote {out}: {sv.width}x{sv.height}, K={sv.K}, {sv.fps:g} fps x {sv.num_frames} frames, "
         f"seed {args.seed}, {steps} ({sv.extra.get('backend', 'torch')}) in {dt:.1f}s "
         f"(largest mean displacement {float(sv.mean_magnitude().max()):.2f} px)")


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
    from .predict import WEIGHTS_DIR

    run_eval(EvalArgs(weights=Path(args.weights) if args.weights else WEIGHTS_DIR,
                      n=args.n if args.n is not None else 8, steps=args.steps,
                      seed=args.seed, real=args.real if args.real is not None else [str(HELD_OUT_REAL)],
                      real_pairs=args.real_pairs, seam=args.seam,
                      seam_steps=args.seam_steps, json_path=args.json, device=args.device,
                      guidance=args.guidance, repeats=args.repeats, init_strength=args.init_strength,
                      stills=args.stills, static_flow=Path(args.static_flow) if args.static_flow else None), log=say)


# --------------------------------------------------------------------------------- parser
def _add_timing(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=None, help="number of frames (default: one full loop)")
    p.add_argument("--fps", type=float, default=30.0, help="output frame rate (default 30)")
    p.add_argument("--slowmo", type=float, default=1.0, help="slow-motion factor, 2 = half speed (default 1)")
    p.add_argument("--amplitude", type=float, default=1.0, help="motion amplitude scale (default 1)")
    p.add_argument("--no-loop", action="store_true", help="exact speed instead of a seamless loop")
    p.add_argument("--no-anchor", action="store_true", help="do not force frame 1 to be the still itself")
    p.add_argument("--fit", choices=["check", "stretch"], default="check",
                   help="refuse (check) or stretch motion whose aspect differs from the image")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")


class _Parser(argparse.ArgumentParser):
    """argparse with gid's error form: one line ``gid: error: ...`` naming the help to read, exit 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("gid").strip()
        sys.stderr.write(f"gid: error: {command + ': ' if command else ''}{message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USER_ERROR)


# Modules that add commands of their own (``add_commands(subparsers)``): tooling that builds on the
# engine and its CLI, so the CLI names them instead of importing them. One that is not installed
# adds nothing.
COMMAND_MODULES = ("..gid_tools.selftest", "..gid_tools.bench_command", "..gid_tools.demo", "..gid_tools.packaging")


def _add_module_commands(sub: argparse._SubParsersAction) -> None:
    for name in COMMAND_MODULES:
        qualified = importlib.util.resolve_name(name, __package__)
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name != qualified:
                raise
            continue
        module.add_commands(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gid", description="Generative Image Dynamics engine")
    parser.add_argument("--version", action="version", version=f"gid {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")

    p = sub.add_parser("extract", help="spectral volume from a reference video")
    p.add_argument("video", help="video file, image-sequence folder or pattern (frame_%%04d.png)")
    p.add_argument("-o", "--output", required=True, help="output .gidsv file")
    p.add_argument("--fps", type=float, default=None, help="source frame rate (needed for image sequences)")
    p.add_argument("--start", type=int, default=0, help="first frame of the 5 s window")
    p.add_argument("--max-side", type=int, default=512, help="working resolution: longest side (default 512)")
    p.add_argument("--size", type=_size, default=None, help="exact working resolution WxH")
    p.add_argument("--method", default="dis-direct", help="optical flow method (default dis-direct)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("render", help="animate a still with a spectral volume")
    p.add_argument("image")
    p.add_argument("--motion", "-m", required=True, help=".gidsv spectral volume")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--format", choices=["png", "exr", "mp4", "gif"], default="png")
    p.add_argument("--depth", type=_depth, choices=[8, 16, "half", "float"], default=None,
                   help="png: 8|16 (default 8); exr: half|float (default half)")
    p.add_argument("--prefix", default="frame", help="file name prefix (frame_0001.png)")
    p.add_argument("--preview", choices=["mp4", "gif"], default=None, help="also write a small preview")
    p.add_argument("--backend", choices=["onnx", "torch"], default="onnx")
    p.add_argument("--renderer", choices=["auto", "neural", "splat"], default="auto",
                   help="neural (feature splatting + synthesis network) or splat (softmax splat + hole filling); "
                        "auto: neural when the shipped weights are marked the default (MODEL_CARD.md)")
    p.add_argument("--device", choices=["auto", "gpu", "cpu"], default="auto")
    p.add_argument("--motion-upsample", choices=["guided", "bilinear"], default="guided",
                   help="how motion reaches outputs larger than twice its size: guided by the image's edges "
                        "(default) or bilinear")
    p.add_argument("--splat-resolution", choices=["auto", "full", "proxy"], default="auto",
                   help="full: splat every output pixel; proxy: splat the motion at 2x its size and warp "
                        "the image backward (much faster for outputs larger than the motion); auto picks")
    _add_timing(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("displace", help="per-frame displacement maps (EXR, pixels)")
    p.add_argument("image", help="the still the motion belongs to (gives the output size)")
    p.add_argument("--motion", "-m", required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--kind", choices=["both", "pixels", "displace-node"], default="both")
    p.add_argument("--prefix", default="disp")
    p.add_argument("--size", type=_size, default=None, help="output size WxH instead of the image's")
    _add_timing(p)
    p.set_defaults(func=cmd_displace)

    p = sub.add_parser("info", help="describe a .gidsv file")
    p.add_argument("motion")
    p.set_defaults(func=cmd_info)

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

    p = sub.add_parser("animate", help="one still in, a seamless loop out: predict motion, render, export")
    p.add_argument("image")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--seed", type=_seed, default=0, help="random seed, 0 .. 2**63-1 (default 0)")
    p.add_argument("--steps", type=int, default=None,
                   help="DDIM steps (default: the model's, 50, on a GPU; 25 on the CPU)")
    p.add_argument("--init-strength", type=float, default=None, metavar="S",
                   help="start from the static-flow field's motion (where the image should move) and run "
                        "this share of the DDIM steps, 0 < S <= 1; 1 = plain sampling from noise (default: "
                        "the model card's choice, predict.DEFAULT_INIT_STRENGTH)")
    p.add_argument("--frames", type=int, default=None, help="number of frames (default: one full loop)")
    p.add_argument("--fps", type=float, default=30.0, help="output frame rate (default 30)")
    p.add_argument("--amplitude", type=float, default=1.0, help="motion amplitude scale (default 1)")
    p.add_argument("--slowmo", type=float, default=1.0, help="slow-motion factor, 2 = half speed (default 1)")
    p.add_argument("--format", choices=["png", "exr", "mp4", "gif"], default="png")
    p.add_argument("--renderer", choices=["auto", "neural", "splat"], default="auto")
    p.add_argument("--device", choices=["auto", "gpu", "cpu"], default="auto")
    p.add_argument("--backend", choices=["auto", "onnx", "torch"], default="auto",
                   help="auto: torch for the prior when installed, else onnxruntime (frames always onnxruntime "
                        "unless torch)")
    p.add_argument("--no-preview", action="store_true", help="no GIF preview beside a PNG/EXR sequence")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=cmd_animate)

    p = sub.add_parser("predict", help="sample a spectral volume for a still with the learned prior")
    p.add_argument("image")
    p.add_argument("-o", "--output", required=True, help="output .gidsv file")
    p.add_argument("--seed", type=_seed, default=0, help="random seed, 0 .. 2**63-1 (default 0)")
    p.add_argument("--steps", type=int, default=None,
                   help="DDIM steps (default: the model's, 50, on a GPU; 25 on the CPU)")
    p.add_argument("--device", choices=["auto", "gpu", "cpu"], default="auto")
    p.add_argument("--init-strength", type=float, default=None, metavar="S",
                   help="start from the static-flow field's motion (where the image should move) and run "
                        "this share of the DDIM steps, 0 < S <= 1; 1 = plain sampling from noise (default: "
                        "the model card's choice, predict.DEFAULT_INIT_STRENGTH)")
    p.add_argument("--weights", default=None,
                   help="weights folder, torch or ONNX (default: the shipped one; its ONNX export is "
                        "the sibling folder NAME_onnx)")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto",
                   help="torch, onnx (numpy + onnxruntime, seamless loops by projection), or auto: torch "
                        "when it and the weights are installed, else onnx")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("eval",
                       help="evaluate the learned prior or the neural renderer on held-out data (markdown table)")
    p.add_argument("what", nargs="?", choices=["prior", "render"], default="prior")
    p.add_argument("--weights", default=None, help="weights folder (default: the shipped one)")
    p.add_argument("--n", type=int, default=None, help="held-out synthetic pairs (split 'eval'; default 8, render 32)")
    p.add_argument("--real", nargs="*", default=None,
                   help="held-out real clips (default: prior samples/tree.avi; render those of samples/clips.json)")
    p.add_argument("--real-pairs", type=int, default=2, help="pairs taken from each real clip")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the model's)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed, 0 .. 2**63-1 (default 0)")
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
    _add_module_commands(sub)
    for command in sub.choices.values():  # every command estimates its cost before working
        command.add_argument("--memory-budget", type=float, default=None, metavar="GIB",
                             help="refuse work estimated to need more memory than this (GiB; default "
                                  "GID_MEMORY_BUDGET or 2)")
    return parser


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
