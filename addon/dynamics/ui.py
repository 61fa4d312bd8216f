"""The interactive dynamics' UI: the pokes list and the *GID Interactive* sub-panel of the Image
Editor's GID tab (a child of ``GID_PT_image_editor``, so it registers after the GID panel)."""

from __future__ import annotations

import bpy

from . import ops, preview


class GID_UL_pokes(bpy.types.UIList):
    """The scene's pokes: on/off, frame, strength."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0, flt_flag=0):
        row = layout.row(align=True)
        row.prop(item, "enabled", text="")
        row.label(text=f"#{index + 1}  F{item.frame}" + (f"+{item.duration:g}" if item.duration else ""),
                  icon="FORCE_FORCE")
        row.prop(item, "strength", text="", emboss=False)


class GID_PT_interactive(bpy.types.Panel):
    """Pokes, physics, mask, preview and bake of the interactive dynamics."""

    bl_space_type = "IMAGE_EDITOR"
    bl_region_type = "UI"
    bl_category = "GID"
    bl_label = "GID Interactive"
    bl_idname = "GID_PT_interactive"
    bl_parent_id = "GID_PT_image_editor"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        scene = context.scene
        settings = scene.gid_interactive
        layout.prop(settings, "source_image")
        layout.prop(settings, "motion_path")

        box = layout.box()
        box.label(text="Pokes", icon="FORCE_FORCE")
        row = box.row()
        row.template_list("GID_UL_pokes", "", scene, "gid_pokes", scene, "gid_poke_index", rows=3)
        col = row.column(align=True)
        col.operator(ops.GID_OT_add_poke.bl_idname, icon="ADD", text="")
        col.operator(ops.GID_OT_remove_poke.bl_idname, icon="REMOVE", text="")
        box.operator(ops.GID_OT_drag_poke.bl_idname, icon="MOUSE_LMB_DRAG")
        if 0 <= scene.gid_poke_index < len(scene.gid_pokes):
            item = scene.gid_pokes[scene.gid_poke_index]
            col = box.column(align=True)
            col.prop(item, "frame")
            col.prop(item, "position")
            col.prop(item, "direction")
            col.prop(item, "strength")
            col.prop(item, "radius")
            col.prop(item, "duration")

        box = layout.box()
        box.label(text="Physics", icon="PHYSICS")
        col = box.column(align=True)
        col.prop(settings, "damping")
        col.prop(settings, "stiffness_scale")
        col.prop(settings, "mass_scale")
        row = box.row(align=True)
        row.prop(settings, "frequencies", expand=True)
        if settings.frequencies == "PEAKS":
            box.prop(settings, "num_peaks")
        row = box.row(align=True)
        row.prop(settings, "mask_image")
        row.operator(ops.GID_OT_new_mask.bl_idname, text="", icon="FILE_NEW")

        box = layout.box()
        row = box.row(align=True)
        row.prop(settings, "preview_enabled")
        row.prop(settings, "show_overlay")
        box.prop(settings, "preview_max_side")
        box.operator(ops.GID_OT_refresh_preview.bl_idname, icon="FILE_REFRESH")
        status = preview.preview_status(scene)
        if status:
            box.label(text=status, icon="ERROR" if status.startswith("Error") else "INFO")

        box = layout.box()
        row = box.row(align=True)
        row.prop(settings, "bake_images")
        row.prop(settings, "bake_displacement")
        busy = getattr(getattr(context.window_manager, "gid", None), "running", False)
        sub = box.column()
        sub.enabled = not busy
        sub.operator(ops.GID_OT_bake_interaction.bl_idname, icon="RENDER_ANIMATION")
        if settings.baked_image is not None:
            box.label(text=f"{settings.baked_image.name} ({settings.baked_frames} frames from "
                           f"{settings.baked_start})", icon="SEQUENCE")


CLASSES: list[type] = [GID_UL_pokes, GID_PT_interactive]
