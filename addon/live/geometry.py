"""Live motion on geometry: a Geometry Nodes modifier moves a mesh's vertices by the image's motion.

``gid.live_geometry`` packs the image's forward series (``gid_engine.rendering.live.forward_volume``,
numpy only, no splatting) as a half-float atlas, builds the "GID Live Motion Geometry <image>"
geometry group (``nodes.build_geometry_group``) and adds it as a Geometry Nodes modifier to a mesh
that shows the image through its UVs (e.g. a subdivided plane): each vertex moves as the point of
the still under its UV moves. The modifier's Amplitude and Speed start at the image's GID settings
and are its own inputs afterwards; its FPS input is driven by the scene's frame rate (a simple
expression) and time is the scene's, so the .blend renders without the extension. The mesh data
is untouched; ``remove_geometry`` takes the modifiers, their drivers, the group and its atlas off.
"""

from __future__ import annotations

from typing import Any

import bpy
import numpy as np
from bpy.props import StringProperty

from ...exporters.frames import encode_exr
from ...gid_engine.errors import InputError
from ...gid_engine.motion.sv_file import load_spectral_volume
from ...gid_engine.rendering.live import ATLAS_PAD, forward_volume
from ...gid_engine.rendering.render import check_aspect
from .. import blender_io as bio
from . import nodes

TAG_IMAGE = "gid_live_image"  # custom property on the geometry group: the image whose motion it holds
KEPT = ("Amplitude", "Speed", "Time Offset", "Anchor Frame")  # the user's inputs, kept when computed again
FEW_VERTICES = 100  # below this a mesh shows little of the motion: the report says to subdivide it


def geometry_group_name(image_name: str) -> str:
    return f"{nodes.GROUP_PREFIX} Geometry {image_name}"


def geometry_atlas_name(image_name: str) -> str:
    return f"{nodes.ATLAS_PREFIX} Geometry {image_name}"


def geometry_users(image_name: str) -> list[tuple[bpy.types.Object, bpy.types.Modifier]]:
    """Every Geometry Nodes modifier (of a local object) that runs the image's geometry group."""
    return [(obj, mod) for obj in bpy.data.objects if obj.library is None for mod in obj.modifiers
            if mod.type == "NODES" and mod.node_group is not None
            and mod.node_group.get(TAG_IMAGE) == image_name and mod.node_group.get(nodes.TAG) == "geometry"]


def target_mesh(context: bpy.types.Context, object_name: str) -> bpy.types.Object:
    """The mesh object to move: ``object_name`` if given, else the active object; refused with one
    line when it is missing, not a mesh, or has no UV map."""
    obj = bpy.data.objects.get(object_name) if object_name else getattr(context, "active_object", None)
    if obj is None:
        raise InputError(f"there is no object named {object_name!r}" if object_name else
                         "no mesh to move: make a mesh with UVs that shows the image (a subdivided plane) active")
    if obj.type != "MESH":
        raise InputError(f"{obj.name!r} is a {obj.type.lower()} object, not a mesh: Live Geometry moves mesh vertices")
    if obj.library is not None:
        raise InputError(f"{obj.name!r} is linked from a library: make it local first")
    if obj.data.uv_layers.active is None:
        raise InputError(f"mesh {obj.name!r} has no UV map: the motion is placed by UVs, unwrap it first")
    return obj


def uv_size(mesh: bpy.types.Mesh) -> tuple[float, float]:
    """How far the mesh's X and Y (object space) move across the whole UV square: the slopes of
    the least-squares fit ``x = a u + ..., y = b v + ...`` over its face corners."""
    loops = len(mesh.loops)
    uv = np.empty(loops * 2, np.float64)
    mesh.uv_layers.active.data.foreach_get("uv", uv)
    index = np.empty(loops, np.int64)
    mesh.loops.foreach_get("vertex_index", index)
    co = np.empty(len(mesh.vertices) * 3, np.float64)
    mesh.vertices.foreach_get("co", co)
    xyz = co.reshape(-1, 3)[index]
    flat = uv.reshape(-1, 2)
    size = (0.0, 0.0)
    if loops and min(np.ptp(flat[:, 0]), np.ptp(flat[:, 1])) > 1e-6:
        fit = np.linalg.lstsq(np.column_stack([flat, np.ones(loops)]), xyz[:, :2], rcond=None)[0]
        size = float(fit[0, 0]), float(fit[1, 1])
    if min(abs(size[0]), abs(size[1])) < 1e-9:
        raise InputError(f"the UVs of mesh {mesh.name!r} do not spread over its X/Y plane: the motion moves "
                         "vertices in X and Y of the UV layout")
    return size


def remove_geometry(image_name: str) -> int:
    """Take the image's geometry live motion off: its modifiers (and their drivers), the group and
    its atlas. Returns how many modifiers were removed."""
    users = geometry_users(image_name)
    for obj, mod in users:
        _remove_modifier(obj, mod)
    for data, name in ((bpy.data.node_groups, geometry_group_name(image_name)),
                       (bpy.data.images, geometry_atlas_name(image_name))):
        found = data.get(name)
        if found is not None:
            data.remove(found)
    return len(users)


def _remove_modifier(obj: bpy.types.Object, mod: bpy.types.Modifier) -> None:
    if obj.animation_data is not None:
        for fc in list(obj.animation_data.drivers):
            if fc.data_path.startswith(f'modifiers["{mod.name}"]'):
                obj.animation_data.drivers.remove(fc)
    obj.modifiers.remove(mod)


def add_geometry_motion(context: bpy.types.Context, image_name: str, object_name: str = "") -> tuple[
        bpy.types.Object, bpy.types.Modifier, Any]:
    """The image's forward series as the geometry group, on the target mesh (and, computed again,
    on every mesh that had it, each keeping its own inputs). Returns the object, its modifier and
    the forward volume."""
    image = bio.source_from_context(context, image_name).image()
    obj = target_mesh(context, object_name)
    settings = image.gid
    volume = load_spectral_volume(bio.motion_file(settings))
    check_aspect(volume, *image.size[:])
    live = forward_volume(volume)
    defaults = {"Amplitude": float(settings.amplitude), "Speed": 1.0 / max(float(settings.slowmo), 1e-6)}
    kept: dict[str, dict[str, Any]] = {}
    places: dict[str, int] = {}  # where in its stack each modifier was (a Subdivision before it stays before)
    for user, mod in geometry_users(image.name):
        kept[user.name] = {name: nodes.modifier_input(mod, name) for name in KEPT}
        places[user.name] = list(user.modifiers).index(mod)
    targets = [target_mesh(context, name) for name in kept if name != obj.name] + [obj]
    sizes = [uv_size(user.data) for user in targets]  # every refusal before anything is removed
    remove_geometry(image.name)
    atlas = nodes.pack_atlas(geometry_atlas_name(image.name), encode_exr(live.atlas(), "half", "zip"))
    layout = nodes.Layout(live.bins, live.width, live.height, live.period, live.fps, ATLAS_PAD)
    group = nodes.build_geometry_group(geometry_group_name(image.name), atlas, layout)
    group[TAG_IMAGE] = image.name
    added = None
    for user, size in zip(targets, sizes):
        added = _add_modifier(user, group, context.scene, {**defaults, **kept.get(user.name, {})}, size)
        if user.name in places:
            user.modifiers.move(len(user.modifiers) - 1, min(places[user.name], len(user.modifiers) - 1))
    return obj, added, live


def _add_modifier(obj: bpy.types.Object, group: bpy.types.NodeTree, scene: bpy.types.Scene,
                  values: dict[str, Any], size: tuple[float, float]) -> bpy.types.Modifier:
    mod = obj.modifiers.new(group.name, "NODES")
    mod.node_group = group
    for name, value in values.items():
        nodes.set_modifier_input(mod, name, value)
    nodes.set_modifier_input(mod, "Size", (size[0], size[1], 0.0))
    nodes.set_modifier_input(mod, "UV Map", obj.data.uv_layers.active.name)
    nodes.drive_modifier_fps(obj, mod, scene)
    obj.update_tag()
    return mod


class GID_OT_live_geometry(bpy.types.Operator):
    """Move a mesh's vertices by the image's motion at any frame, with no bake: a Geometry Nodes
    modifier placed by the mesh's UVs (a subdivided plane showing the image); renders without the
    extension"""

    bl_idname = "gid.live_geometry"
    bl_label = "Live Geometry"
    bl_options = {"REGISTER", "UNDO"}

    image: StringProperty(name="Image", default="",
                          description="Image whose motion moves the mesh (default: the active one)")
    object: StringProperty(name="Object", default="", description="Mesh object to move (default: the active object)")

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ...gid_engine.errors import GidError

        try:
            obj, _mod, live = add_geometry_motion(context, self.image, self.object)
        except GidError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        count = len(obj.data.vertices)
        if count < FEW_VERTICES:
            self.report({"WARNING"}, f"{obj.name!r} has only {count} vertices: subdivide it for the motion to show")
        self.report({"INFO"}, f"Live geometry on {obj.name!r}: {live.bins} bins of the forward motion, "
                              f"placed by UV map {obj.data.uv_layers.active.name!r}")
        return {"FINISHED"}


CLASSES = (GID_OT_live_geometry,)
