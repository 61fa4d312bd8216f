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
from pathlib import Path

import bpy

from ..gid_engine.repo_data import TREE_CLIP, TREE_STILL
from . import props, register, unregister


def build_scene(still: Path) -> tuple[bpy.types.Image, bpy.types.Material]:
    """A backdrop plane whose material shows ``still`` through an Image Texture node."""
    image = bpy.data.images.load(str(still))
    bpy.ops.mesh.primitive_plane_add(size=2.0)
    plane = bpy.context.active_object
    plane.scale.x = image.size[0] / image.size[1]
    material = bpy.data.materials.new("Backdrop")
    material.use_nodes = True
    tree = material.node_tree
    texture = tree.nodes.new("ShaderNodeTexImage")
    texture.image = image
    texture.location = (-400, 300)
    tree.links.new(texture.outputs["Color"], tree.nodes["Principled BSDF"].inputs["Base Color"])
    tree.nodes.active = texture
    plane.data.materials.append(material)
    return image, material


def run(out_dir: Path, frames: int = 150, render_frames: int = 24, amplitude: float = 2.0) -> Path:
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    register()
    try:
        blend = out_dir / "gid_demo.blend"
        bpy.ops.wm.save_as_mainfile(filepath=str(blend))  # relative paths need a saved .blend
        image, _ = build_scene(TREE_STILL)
        settings = image.gid
        settings.video_path = str(TREE_CLIP)
        settings.amplitude = amplitude
        settings.frames = frames
        t0 = time.perf_counter()
        bpy.ops.gid.extract_motion(image=image.name)
        print(f"extracted motion: {settings.motion_path} ({time.perf_counter() - t0:.1f}s)")
        t0 = time.perf_counter()
        bpy.ops.gid.bake_loop(image=image.name)
        print(f"baked loop: {props.loop_image(settings).name}, {settings.loop_frames} frames ({time.perf_counter() - t0:.1f}s)")
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
    finally:
        unregister()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gid.addon.demo", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="out/blender_demo")
    parser.add_argument("--frames", type=int, default=150, help="frames in the baked loop")
    parser.add_argument("--render-frames", type=int, default=24, help="compositor frames to render")
    args = parser.parse_args(argv)
    try:
        run(Path(args.output), args.frames, args.render_frames)
    except RuntimeError as exc:  # an operator's ERROR report
        print(f"gid demo: error: {str(exc).strip().splitlines()[-1]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
