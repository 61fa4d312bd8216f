"""The ``gid`` command line.

Every user-caused failure prints one line (``gid: error: ...``) and exits 2; Ctrl-C exits 130
after the outputs in progress are removed, and SIGTERM/SIGHUP do the same (exit 128 + signal);
nothing is half-written. A genuine bug prints one line too, and its traceback only with
``GID_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, NoReturn, Optional, Sequence

from ..exporters.atomic import name_too_long, protected_inputs, refuse_inputs, short_name
from ..exporters.errors import ExportError

from . import __version__, arguments
from .backends import command_adders
from .budget import set_memory_budget
from .errors import Cancelled, GidError, InputError
from .signals import Terminated, terminate_as_interrupt
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


def seed_type(text: str) -> int:
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
    from .rendering.pipeline import RenderOptions

    return RenderOptions(frames=args.frames, fps=args.fps, slowmo=args.slowmo, loop=not args.no_loop,
                         amplitude=args.amplitude, anchor=not args.no_anchor, fit=args.fit,
                         backend=getattr(args, "backend", "onnx"), device=getattr(args, "device", "auto"),
                         renderer=getattr(args, "renderer", "auto"),
                         splat_resolution=getattr(args, "splat_resolution", "auto"),
                         motion_upsample=getattr(args, "motion_upsample", "guided"))


# --------------------------------------------------------------------------------- commands
def cmd_extract(args: argparse.Namespace) -> None:
    from .engine import Engine

    out = Path(args.output)
    refuse_inputs([out])  # before any work
    if out.exists() and not args.overwrite:
        raise InputError(f"{out} already exists; pass --overwrite to replace it")
    engine = Engine(log=say)
    job, close = progress_job()
    t0 = time.perf_counter()
    try:
        sv = engine.extract(args.video, fps=args.fps, start_frame=args.start, max_side=args.max_side,
                            resolution=args.size, method=args.method, job=job)
    finally:
        close()
    engine.save_motion(sv, out, overwrite=args.overwrite)
    peak = float(sv.mean_magnitude().max())
    say(f"wrote {out}: {sv.width}x{sv.height}, K={sv.K}, {sv.fps:g} fps x {sv.num_frames} frames "
         f"from {sv.source} in {time.perf_counter() - t0:.1f}s (largest mean displacement {peak:.2f} px)")


def _frames_engine(args: argparse.Namespace):
    from .engine import Engine

    return Engine(device=getattr(args, "device", "auto"), backend=getattr(args, "backend", "onnx"),
                  renderer=getattr(args, "renderer", "auto"), log=say)


def cmd_render(args: argparse.Namespace) -> None:
    engine = _frames_engine(args)
    job, close = progress_job()
    t0 = time.perf_counter()
    try:
        result = engine.render_to_dir(args.image, args.motion, args.output, _render_options(args), fmt=args.format,
                                      depth=args.depth, prefix=args.prefix, preview=args.preview,
                                      overwrite=args.overwrite, job=job)
    finally:
        close()
    dt = time.perf_counter() - t0
    say(f"wrote {result.frames} frames to {args.output} ({result.provider}, {dt:.1f}s, "
         f"{result.frames / max(dt, 1e-9):.1f} frames/s)")


def cmd_displace(args: argparse.Namespace) -> None:
    from .media.imaging import load_image

    size = args.size
    if size is None:
        image = load_image(args.image)
        size = (image.width, image.height)
    engine = _frames_engine(args)
    job, close = progress_job()
    try:
        files = engine.displace_to_dir(size, args.motion, args.output, _render_options(args), kind=args.kind,
                                       prefix=args.prefix, overwrite=args.overwrite, job=job, source_image=args.image)
    finally:
        close()
    say(f"wrote {len(files)} files to {args.output}")


def cmd_info(args: argparse.Namespace) -> None:
    import json

    from .motion.sv_file import load_spectral_volume

    sv = load_spectral_volume(args.motion)
    meta = sv.metadata()
    meta["peak_coefficient_px"] = float(abs(sv.complex_coeffs()).max())
    meta["mean_displacement_px"] = float(sv.mean_magnitude().mean())
    print_result(json.dumps(meta, indent=2))


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
    from .engine import Engine
    from .media.imaging import load_image
    from .prediction.eulerian_init import check_strength, steps_run

    if args.init_strength is not None:
        check_strength(args.init_strength)  # the CLI's wording of the range
    out = Path(args.output)
    refuse_inputs([out])  # before any work
    if out.exists() and not args.overwrite:
        raise InputError(f"{out} already exists; pass --overwrite to replace it")
    image = load_image(args.image)
    engine = Engine(device=args.device, backend=args.backend, log=say, weights_dir=args.weights)
    job, close = progress_job()
    t0 = time.perf_counter()
    try:
        sv = engine.predict(image, seed=args.seed, steps=args.steps, job=job, init_strength=args.init_strength)
    finally:
        close()
    dt = time.perf_counter() - t0
    engine.save_motion(sv, out, overwrite=args.overwrite)
    start, n = sv.extra.get("init_strength"), sv.extra.get("steps")
    steps = f"{n} steps" + (f" from the Eulerian start ({steps_run(n, start)} run)" if start else "")
    say(f"wrote {out}: {sv.width}x{sv.height}, K={sv.K}, {sv.fps:g} fps x {sv.num_frames} frames, "
         f"seed {args.seed}, {steps} ({sv.extra.get('backend', 'torch')}) in {dt:.1f}s "
         f"(largest mean displacement {float(sv.mean_magnitude().max()):.2f} px)")


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


def _add_module_commands(sub: argparse._SubParsersAction) -> None:
    """Subcommands of the packages installed beside the runtime (``backends.command_adders``)."""
    for add_commands in command_adders():
        add_commands(sub)


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

    p = sub.add_parser("animate", help="one still in, a seamless loop out: predict motion, render, export")
    p.add_argument("image")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--seed", type=seed_type, default=0, help="random seed, 0 .. 2**63-1 (default 0)")
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
    p.add_argument("--seed", type=seed_type, default=0, help="random seed, 0 .. 2**63-1 (default 0)")
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

    _add_module_commands(sub)
    for command in sub.choices.values():  # every command estimates its cost before working
        command.add_argument("--memory-budget", type=float, default=None, metavar="GIB",
                             help="refuse work estimated to need more memory than this (GiB; default "
                                  "GID_MEMORY_BUDGET or 2)")
    return parser


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
