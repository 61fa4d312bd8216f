"""Helpers for tests that drive the real ``bpy`` module (headless Blender as a Python module).

Import only from tests that have already done ``pytest.importorskip("bpy")``.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from gid.addon.utils import worker
from gid.exporters.frames import decode_frame


def fresh_blend() -> bpy.types.Scene:
    """An empty factory scene, so no test sees another's datablocks or settings.

    The preferences stay: ``read_factory_settings`` would also reset them, which disables every
    enabled extension and makes Blender uninstall its wheels, so in the installed-extension legs
    (``tools/blender_matrix.py``) the extension Blender installed would be gone for the next test.
    """
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    return bpy.context.scene


def save_blend(path: Path) -> None:
    """Save the current file (needed before paths can be stored relative to it)."""
    bpy.ops.wm.save_as_mainfile(filepath=str(path), check_existing=False)


def render_compositor_frame(scene: bpy.types.Scene, frame: int, filepath: Path | str, size: tuple[int, int],
                            exr: bool = False) -> np.ndarray:
    """Render scene ``frame`` through the compositor only and read the written file back.

    ``size`` is (width, height): the compositor canvas is the render size. The view transform is
    'Standard' with no look, exposure 0 and gamma 1, so PNG output equals the sRGB-encoded result
    (EXR output is scene-linear float). Workbench is the cheapest engine; with no Render Layers node
    in the tree no 3D render happens at all, and no camera is needed. Returns HxWxC (top row first)
    in the file's dtype.
    """
    r = scene.render
    r.engine = "BLENDER_WORKBENCH"
    r.use_compositing = True
    r.use_sequencer = False
    r.resolution_x, r.resolution_y = size
    r.resolution_percentage = 100
    vs = scene.view_settings
    vs.view_transform = "Standard"
    vs.look = "None"
    vs.exposure = 0.0
    vs.gamma = 1.0
    settings = r.image_settings
    if exr:
        settings.file_format = "OPEN_EXR"
        settings.color_mode = "RGB"
        settings.color_depth = "32"
    else:
        settings.file_format = "PNG"
        settings.color_mode = "RGB"
        settings.color_depth = "8"
    r.use_file_extension = False
    r.filepath = str(filepath)
    scene.frame_set(frame)
    result = bpy.ops.render.render(write_still=True, scene=scene.name)
    assert result == {"FINISHED"}, result
    return decode_frame(filepath)


def image_pixels_top_down(image: bpy.types.Image) -> np.ndarray:
    """The pixels Blender holds for ``image`` (its last loaded frame), as HxWx4 float, top row first.

    Blender stores rows bottom-up; files and numpy arrays here are top-down.
    """
    w, h = image.size[:]
    flat = np.empty(w * h * image.channels, dtype=np.float32)
    image.pixels.foreach_get(flat)
    return flat.reshape(h, w, image.channels)[::-1]


def add_material_with_texture(image: bpy.types.Image) -> tuple:
    """A mesh object whose active material's active node is an Image Texture node of ``image``."""
    mesh = bpy.data.meshes.new("quad")
    obj = bpy.data.objects.new("backdrop", mesh)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    mat = bpy.data.materials.new("backdrop")
    if mat.node_tree is None:  # 5.0+ materials always have nodes (use_nodes is deprecated)
        mat.use_nodes = True
    obj.data.materials.append(mat)
    tree = mat.node_tree
    tex = tree.nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.location = (-400.0, 300.0)
    bsdf = tree.nodes["Principled BSDF"]
    tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    tree.nodes.active = tex
    return mat, tex


def use_motion(image: bpy.types.Image, motion: Path) -> None:
    """Make ``motion`` the image's motion file (relative to the .blend when it is saved)."""
    image.gid.motion_path = bpy.path.relpath(str(motion)) if bpy.data.filepath else str(motion)


class CancelAfterFirstFrame(worker.Worker):
    """A real worker thread whose job is cancelled as soon as the first frame is reported."""

    def _progress(self, done: int, total: int, what: str) -> None:
        super()._progress(done, total, what)
        self.cancel()
