"""``gid make-data``: the simulated-data command (scenes → shards, the GT check, the contact sheet)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ...gid_engine.errors import InputError
from .scenes import ALL_KINDS


def cmd_make_data(args: argparse.Namespace) -> None:
    from .make import MakeSettings, make_data

    out = Path(args.output)
    w, _, h = args.size.partition("x")
    try:
        width, height = int(w), int(h)
    except ValueError:
        raise InputError(f"--size must look like 256x160, got {args.size!r}") from None
    if args.verify:
        from .verify import verify_scenes

        report = verify_scenes(out, args.verify, MakeSettings(split=args.split, width=width, height=height,
                                                               samples=args.samples, kind=args.kind),
                               start=args.start)
        print(json.dumps(report["summary"], indent=2))
        return
    if args.contact_sheet:
        from .contact import contact_sheet

        print(contact_sheet(out, Path(args.contact_sheet), split=args.split, count=args.sheet_count))
        return
    if not 0.0 <= args.closeups <= 1.0:
        raise InputError(f"--closeups must be in [0, 1], got {args.closeups}")
    if not 0.0 < args.leaf_density <= 10.0:
        raise InputError(f"--leaf-density must be in (0, 10], got {args.leaf_density}")
    lo, hi = args.amplitude
    if not 0.0 < lo <= hi <= 64.0:
        raise InputError(f"--amplitude needs 0 < LO <= HI <= 64 (px at 256 wide), got {lo:g} {hi:g}")
    settings = MakeSettings(split=args.split, width=width, height=height, cameras=args.cameras,
                            samples=args.samples, triple_fraction=args.triples, kind=args.kind,
                            closeups=args.closeups, leaf_density=args.leaf_density, amplitude_px=(lo, hi))
    summary = make_data(out, args.scenes, settings, start=args.start, workers=args.workers)
    print(json.dumps(summary, indent=2))


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``make-data`` to the ``gid`` parser's subcommands ``sub``."""
    p = sub.add_parser("make-data", help="simulate scenes in Blender (exact motion) and write training shards",
                       description="Procedural trees, grass, flags, water, candle flames and (--kind stream) "
                                   "streams moved by wind-driven oscillators and currents, rendered with Cycles: "
                                   "stills with their exact spectral volumes "
                                   "(motion-prior pairs) and later frames with exact motion (renderer triples). "
                                   "Deterministic by seed; a re-run resumes.")
    p.add_argument("-o", "--output", required=True, help="folder of shards (created; resumed when it exists)")
    p.add_argument("--scenes", type=int, default=100, help="how many scenes (each gives up to --cameras views)")
    p.add_argument("--start", type=int, default=0, help="first scene index")
    p.add_argument("--split", choices=["train", "eval"], default="train",
                   help="eval: held-out scenes (seeds apart, held-out stills as textures)")
    p.add_argument("--workers", type=int, default=max(1, (__import__("os").cpu_count() or 1)),
                   help="parallel Blender processes, one core each (default: every core)")
    p.add_argument("--cameras", type=int, default=4, help="cameras per scene")
    p.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel (denoised)")
    p.add_argument("--triples", type=float, default=0.35, help="share of views that also render a later frame")
    p.add_argument("--kind", choices=list(ALL_KINDS), default=None,
                   help="make every scene of this kind instead of a drawn mix")
    p.add_argument("--closeups", type=float, default=0.0, metavar="P",
                   help="share of the tree cameras that look into the crown, the leaves filling the view")
    p.add_argument("--leaf-density", type=float, default=1.0, metavar="X",
                   help="a tree's leaves per twig relative to the default (25-45)")
    p.add_argument("--amplitude", type=float, nargs=2, default=(0.75, 6.0), metavar=("LO", "HI"),
                   help="each view's motion is scaled so its 99th-percentile displacement is drawn from "
                        "LO..HI px (log-uniform, at 256 px wide); larger motion opens wider disocclusions")
    p.add_argument("--size", default="256x160", help="image and volume size WxH (multiples of 4)")
    p.add_argument("--verify", type=int, default=0, metavar="N",
                   help="instead: render N scenes' whole windows and compare the exact volume with gid extract's")
    p.add_argument("--contact-sheet", default=None, metavar="FILE",
                   help="instead: draw the folder's stills with their motion-magnitude maps into FILE")
    p.add_argument("--sheet-count", type=int, default=24, help="views on the contact sheet")
    p.set_defaults(func=cmd_make_data)
