"""``gid demo``: the README's main job on the samples shipped in the repository.

Until the learned motion prior lands, the still is animated with motion *extracted* from the
shipped reference clip (`samples/tree.avi`): extract -> spectral volume -> seamless loop (PNG
sequence + GIF preview) -> displacement maps for Blender's compositor.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from ..gid_engine.errors import InputError
from ..gid_engine.rendering.pipeline import RenderOptions, displace_to_dir, render_to_dir
from ..gid_engine.repo_data import TREE_CLIP, TREE_STILL



def run_demo(out_dir: Path, overwrite: bool = False, log: Callable[[str], None] = print) -> dict[str, Path]:
    from ..gid_engine.motion.extract import extract_motion
    from ..gid_engine.media.imaging import load_image
    from ..gid_engine.motion.sv_file import save_spectral_volume

    clip, still = TREE_CLIP, TREE_STILL
    for p in (clip, still):
        if not p.is_file():
            raise InputError(f"demo sample missing: {p} (run the demo from a clone of the repository)")
    out_dir.mkdir(parents=True, exist_ok=True)
    motion_path = out_dir / "tree.gidsv"
    image = load_image(still)
    log(f"1/3 extracting motion from {clip.name} ...")
    sv = extract_motion(clip, resolution=(image.width, image.height))
    save_spectral_volume(sv, motion_path, overwrite=overwrite)
    log(f"    {motion_path} ({sv.width}x{sv.height}, K={sv.K}, {sv.period_seconds:g} s loop)")

    log("2/3 rendering a seamless 150-frame loop ...")
    options = RenderOptions(amplitude=2.0)  # the clip's motion is subtle; magnify it for the demo
    loop = render_to_dir(still, sv, out_dir / "loop", options, fmt="png", preview="gif", overwrite=overwrite, log=log)
    log(f"    {loop.frames} frames in {out_dir / 'loop'} (provider {loop.provider}), preview {loop.files[-1].name}")

    log("3/3 writing displacement maps for Blender's Displace node ...")
    disp = displace_to_dir((image.width, image.height), sv, out_dir / "displacement", options,
                           overwrite=overwrite, source_image=str(still))
    log(f"    {len(disp)} files in {out_dir / 'displacement'}")
    return {"motion": motion_path, "loop": out_dir / "loop", "displacement": out_dir / "displacement"}


# ----------------------------------------------------------------------------- gid demo
def add_commands(sub: Any) -> None:
    """``gid demo``: added to the CLI's subcommands (``cli.COMMAND_MODULES``)."""
    p = sub.add_parser("demo", help="the README's main job on the shipped sample")
    p.add_argument("-o", "--output", default="out/demo")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_command)


def _command(args: argparse.Namespace) -> None:
    from ..gid_engine.cli import say

    run_demo(Path(args.output), overwrite=args.overwrite, log=say)
