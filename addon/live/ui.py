"""The Live Motion sub-panel: insert or remove the node group, and its inputs where it is in use."""

from __future__ import annotations

import bpy

from .. import blender_io as bio
from . import geometry, ops


def live_nodes(image: bpy.types.Image) -> list[bpy.types.Node]:
    """The group nodes ``gid.live_motion`` put in front of the image's texture nodes."""
    return [n for mat in bpy.data.materials if mat.node_tree is not None for n in mat.node_tree.nodes
            if n.get(ops.TAG_NODE) == image.name and n.bl_idname == "ShaderNodeGroup"]


class GID_PT_live(bpy.types.Panel):
    bl_label = "Live Motion"
    bl_space_type = "IMAGE_EDITOR"
    bl_region_type = "UI"
    bl_category = "GID"
    bl_idname = "GID_PT_live"
    bl_parent_id = "GID_PT_image_editor"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        try:
            image = bio.source_from_context(context, "").image()
        except Exception:  # no image: the parent panel says so
            image = None
        if image is None:
            return
        found = live_nodes(image)
        row = layout.row(align=True)
        row.operator(ops.GID_OT_live_motion.bl_idname, icon="NODETREE").image = image.name
        layout.operator(geometry.GID_OT_live_geometry.bl_idname, icon="GEOMETRY_NODES").image = image.name
        layout.operator(ops.GID_OT_live_dynamics.bl_idname, icon="FORCE_WIND").image = image.name
        moved = geometry.geometry_users(image.name)
        if moved and not found:
            row.operator(ops.GID_OT_remove_live_motion.bl_idname, icon="X", text="").image = image.name
        if moved:
            layout.label(text=f"Moving {len(moved)} mesh(es): {', '.join(obj.name for obj, _m in moved[:3])}",
                         icon="MOD_WAVE")
        if found:
            row.operator(ops.GID_OT_remove_live_motion.bl_idname, icon="X", text="").image = image.name
            node = found[0]
            col = layout.column(align=True)
            for name in ("Amplitude", "Speed", "Time Offset", "Anchor Frame"):
                col.prop(node.inputs[name], "default_value", text=name)
            if len(found) > 1:
                layout.label(text=f"{len(found)} texture nodes; these are the first one's inputs", icon="INFO")
            problem = ops.check_live(image)
            if problem:
                layout.label(text=problem, icon="ERROR")


CLASSES = (GID_PT_live,)
