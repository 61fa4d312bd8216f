"""The "GID" sidebar tab in the Image Editor and the Shader Editor: the image's settings and the
buttons of the motion and loop features (the interactive dynamics add their sub-panel,
``dynamics/ui.py``).

Panels only draw: they read the image's settings and the WindowManager's job state and place
operator buttons; all work happens in the features' ``ops``. No gpu drawing here, so nothing to
guard for headless runs.
"""

from __future__ import annotations

from typing import Optional

import bpy

from . import blender_io as bio
from . import props
from .loops.ops import GID_OT_bake_displacement, GID_OT_bake_loop, GID_OT_setup_compositor_loop
from .motion.ops import GID_OT_extract_motion, GID_OT_predict_motion
from .ops import GID_OT_cancel_job


def panel_image(context: bpy.types.Context) -> Optional[bpy.types.Image]:
    """The image the operators would use, or None (drawing must never raise)."""
    try:
        return bio.source_from_context(context).image()
    except Exception:
        return None


def result_labels(settings: props.GID_ImageSettings) -> list[tuple[str, str]]:
    """(text, icon) of each baked result the image still has: one removed or renamed since the
    bake is not listed, as if never baked (the operators then ask for a bake)."""
    labels = []
    loop = props.loop_image(settings)
    if loop is not None:
        labels.append((f"Loop: {loop.name} ({settings.loop_frames} frames)", "SEQUENCE"))
    disp = props.displacement_image(settings)
    if disp is not None:
        labels.append((f"Displacement: {disp.name} (scale {settings.displacement_scale:.3g})", "MOD_DISPLACE"))
    return labels


class _GidPanel:
    bl_region_type = "UI"
    bl_category = "GID"
    bl_label = "Generative Image Dynamics"

    def draw(self, context: bpy.types.Context) -> None:
        draw_panel(self.layout, context)


def draw_panel(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    state = context.window_manager.gid
    image = panel_image(context)
    if image is None:
        layout.label(text="Select an Image Texture node or open an image", icon="INFO")
        return
    settings = image.gid
    layout.label(text=image.name, icon="IMAGE_DATA")
    layout.prop(settings, "mode")

    col = layout.column(align=True)
    col.prop(settings, "frames")
    col.prop(settings, "fps")
    col.prop(settings, "amplitude")
    col.prop(settings, "slowmo")

    box = layout.box()
    box.label(text="Motion", icon="FORCE_HARMONIC")
    box.prop(settings, "video_path")
    box.prop(settings, "motion_path")
    row = box.row(align=True)
    row.prop(settings, "seed")
    row.prop(settings, "steps")
    box.prop(settings, "variation", slider=True)

    layout.prop(settings, "device")
    layout.prop(settings, "output_dir")

    busy = state.running
    col = layout.column(align=True)
    col.enabled = not busy
    col.operator(GID_OT_predict_motion.bl_idname, icon="OUTLINER_DATA_LIGHTPROBE")
    col.operator(GID_OT_extract_motion.bl_idname, icon="FILE_MOVIE")
    col.separator()
    if settings.mode == "INTERACTIVE":
        col.label(text="Pokes, preview and bake: see GID Interactive below", icon="INFO")
    col.operator(GID_OT_bake_loop.bl_idname, icon="RENDER_ANIMATION")
    col.operator(GID_OT_bake_displacement.bl_idname, icon="MOD_DISPLACE")
    col.prop(settings, "displacement_compositor")
    col.operator(GID_OT_setup_compositor_loop.bl_idname, icon="NODE_COMPOSITING")

    if busy:
        box = layout.box()
        box.label(text=state.message or state.operation, icon="TIME")
        box.prop(state, "progress", text=state.operation or "Progress", slider=True)
        box.operator(GID_OT_cancel_job.bl_idname, icon="CANCEL")

    for text, icon in result_labels(settings):
        layout.label(text=text, icon=icon)
    if settings.status:
        layout.label(text=settings.status, icon="ERROR" if settings.status.startswith("Error") else "CHECKMARK")
    layout.prop(context.scene.gid, "max_pixels")
    layout.prop(context.scene.gid, "memory_budget")


class GID_PT_image_editor(_GidPanel, bpy.types.Panel):
    """GID in the Image Editor: works on the image shown there."""

    bl_space_type = "IMAGE_EDITOR"
    bl_idname = "GID_PT_image_editor"


class GID_PT_shader_editor(_GidPanel, bpy.types.Panel):
    """GID in the Shader Editor: works on the active Image Texture node's image."""

    bl_space_type = "NODE_EDITOR"
    bl_idname = "GID_PT_shader_editor"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        space = context.space_data
        return space is not None and getattr(space, "tree_type", "") == "ShaderNodeTree"


CLASSES: list[type] = [GID_PT_image_editor, GID_PT_shader_editor]
