"""Headless Blender demo: a .blend with an animated backdrop and a rendered compositor loop.

Run with the real ``bpy`` module (``python -m gid.addon.demo -o out/blender_demo``; `make demo`
does). It drives the add-on exactly as an artist would, through its operators: a plane with the
shipped still as an Image Texture, motion extracted from the shipped clip, a baked loop wired in
beside the user's node, a compositor loop, a few rendered frames, and the saved .blend.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import bpy

from ..gid_engine.repo_data import TREE_CLIP, TREE_STILL
from . import is_registered, props, register, unregister


@contextmanager
def empty_file_with_gid() -> Iterator[None]:
    """An empty file from Blender's factory startup, with gid registered, for a script's duration.

    The preferences stay as they are (``read_factory_settings`` would reset them, which disables
    every enabled extension, gid included, and uninstalls their wheels). gid is registered only if
    it is not already (as when Blender enabled the extension) and unregistered after only then.
    """
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    ours = not is_registered()
    register()
    try:
        yield
    finally:
        if ours:
            unregister()


def build_scene(still: Path) -> tuple[bpy.types.Image, bpy.types.Material]:
    """A backdrop plane whose material shows ``still`` through an Image Texture node."""
    image = bpy.data.images.load(str(still))
    bpy.ops.mesh.primitive_plane_add(size=2.0)
    plane = bpy.context.active_object
    plane.scale.x = image.size[0] / image.size[1]
    material = bpy.data.materials.new("Backdrop")
    if material.node_tree is None:  # 5.0+ materials always have nodes (use_nodes is deprecated)
        material.use_nodes = True
    tree = material.node_tree
    texture = tree.nodes.new("ShaderNodeTexImage")
    texture.image = image
    texture.location = (-400, 300)
    tree.links.new(texture.outputs["Color"], tree.nodes["Principled BSDF"].inputs["Base Color"])
    tree.nodes.active = texture
    plane.data.materials.append(material)
    return image, material


def run(out_dir: Path, frames: int = 150, render_frames: int = 24, amplitude: float = 2.0,
        still: Path = TREE_STILL, clip: Path = TREE_CLIP) -> Path:
    """Build, bake, render and save the demo scene under ``out_dir``; returns the saved .blend.

    ``still`` and ``clip`` default to the repository's samples, which the installed extension
    does not carry: from an installed extension, pass them.
    """
    for what, path in (("still", still), ("clip", clip)):
        if not Path(path).is_file():
            raise FileNotFoundError(f"the demo's {what} {path} is not a file (pass --{what})")
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with empty_file_with_gid():
        blend = out_dir / "gid_demo.blend"
        bpy.ops.wm.save_as_mainfile(filepath=str(blend))  # relative paths need a saved .blend
        image, _ = build_scene(Path(still))
        settings = image.gid
        settings.video_path = str(clip)
        settings.amplitude = amplitude
        settings.frames = frames
        t0 = time.perf_counter()
        bpy.ops.gid.extract_motion(image=image.name)
        print(f"extracted motion: {settings.motion_path} ({time.perf_counter() - t0:.1f}s)")
        t0 = time.perf_counter()
        bpy.ops.gid.bake_loop(image=image.name)
        print(f"baked loop: {props.loop_image(settings).name}, {settings.loop_frames} frames "
              f"({time.perf_counter() - t0:.1f}s)")
        bpy.ops.gid.setup_compositor_loop(image=image.name)
        scene = bpy.context.scene
        scene.frame_end = scene.frame_start + render_frames - 1
        scene.view_settings.view_transform = "Standard"
        scene.render.image_settings.file_format = "PNG"
        scene.render.filepath = str(out_dir / "render" / "loop_")
        t0 = time.perf_counter()
        bpy.ops.render.render(animation=True)
        print(f"rendered {render_frames} compositor frames to {out_dir / 'render'} ({time.perf_counter() - t0:.1f}s)")
        bpy.ops.wm.save_mainfile()
        print(f"saved {blend}")
        return blend


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gid.addon.demo", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="out/blender_demo")
    parser.add_argument("--frames", type=int, default=150, help="frames in the baked loop")
    parser.add_argument("--render-frames", type=int, default=24, help="compositor frames to render")
    parser.add_argument("--still", type=Path, default=TREE_STILL, help="the backdrop image (default: the sample)")
    parser.add_argument("--clip", type=Path, default=TREE_CLIP, help="the reference video (default: the sample)")
    args = parser.parse_args(argv)
    try:
        run(Path(args.output), args.frames, args.render_frames, still=args.still, clip=args.clip)
    except (RuntimeError, FileNotFoundError) as exc:  # an operator's ERROR report, or no sample
        print(f"gid demo: error: {str(exc).strip().splitlines()[-1]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
