"""Operators: Live Motion (insert the node group in front of the image's texture nodes) and Remove.

``gid.live_motion`` computes the image's backward spectral volume in the worker (the engine's
``Engine.live_volume``), packs it into the .blend as one half-float atlas, builds the "GID Live
Motion <image>" node group and puts it in front of every Image Texture node that shows the image:
the node's Vector input comes from the group, which gets what the node had (or the UV coordinates).
The user's image, nodes and links are otherwise untouched; ``gid.remove_live_motion`` restores the
links and removes what was added. Amplitude and Speed start at the image's GID settings and are
the group node's own inputs afterwards (keyframable, and no driver that needs the extension).
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import StringProperty

from ...exporters.frames import encode_exr
from ...gid_engine.errors import InputError
from ...gid_engine.motion.sv_file import load_spectral_volume
from ...gid_engine.progress import Job
from ...gid_engine.rendering.live import ATLAS_PAD
from ...gid_engine.rendering.render import check_aspect
from .. import blender_io as bio
from ..ops import GidJobOperator, Report, Task, checked_source
from ..utils import engines
from . import nodes

TAG_NODE = "gid_live_image"  # custom property on the nodes this feature adds: the image they serve
TAG_SOURCE = "gid_live_source"  # on the group node: the socket path that fed the texture node, if any
TAG_TARGET = "gid_live_target"  # on the group node: the texture node it feeds (found even if its group is gone)


def group_name(image_name: str) -> str:
    return f"{nodes.GROUP_PREFIX} {image_name}"


def atlas_name(image_name: str) -> str:
    return f"{nodes.ATLAS_PREFIX} {image_name}"


def texture_users(image: bpy.types.Image) -> list[tuple[bpy.types.Material, bpy.types.Node]]:
    """Every Image Texture node of a material's tree that shows ``image``."""
    found = []
    for mat in bpy.data.materials:
        if mat.node_tree is None or mat.library is not None:
            continue
        for node in mat.node_tree.nodes:
            if node.bl_idname == "ShaderNodeTexImage" and node.image == image:
                found.append((mat, node))
    return found


def _insert(mat: bpy.types.Material, tex: bpy.types.Node, group: bpy.types.NodeTree, image_name: str,
            scene: bpy.types.Scene, amplitude: float, speed: float) -> bpy.types.Node:
    tree = mat.node_tree
    vector = tex.inputs["Vector"]
    node = tree.nodes.new("ShaderNodeGroup")
    node.node_tree, node.label, node[TAG_NODE], node[TAG_TARGET] = group, "GID Live Motion", image_name, tex.name
    node.location = (tex.location.x - 220, tex.location.y)
    node.width = 200
    if vector.is_linked:
        link = vector.links[0]
        source = link.from_socket
        node[TAG_SOURCE] = f"{link.from_node.name}|{source.identifier}"
        tree.links.remove(link)
    else:
        coords = tree.nodes.new("ShaderNodeTexCoord")
        coords[TAG_NODE] = image_name
        coords.location = (node.location.x - 200, node.location.y)
        source = coords.outputs["UV"]
    tree.links.new(source, node.inputs["Vector"])
    tree.links.new(node.outputs["Vector"], vector)
    node.inputs["Amplitude"].default_value = amplitude
    node.inputs["Speed"].default_value = speed
    nodes.drive_time(node, scene)
    return node


def _live_nodes(image_name: str) -> list[tuple[bpy.types.Material, bpy.types.Node]]:
    return [(mat, n) for mat in bpy.data.materials if mat.node_tree is not None and mat.library is None
            for n in mat.node_tree.nodes if n.get(TAG_NODE) == image_name and n.bl_idname == "ShaderNodeGroup"
            and n.node_tree is not None]


def remove_live(image_name: str) -> int:
    """Undo ``gid.live_motion`` for ``image_name`` in every material: links back as they were, the
    added nodes, the group and its atlas gone. Returns how many texture nodes were restored."""
    restored = 0
    for mat in bpy.data.materials:
        tree = mat.node_tree
        if tree is None or mat.library is not None:
            continue
        for node in [n for n in tree.nodes if n.get(TAG_NODE) == image_name and n.bl_idname == "ShaderNodeGroup"]:
            target = tree.nodes.get(node.get(TAG_TARGET, ""))
            targets = [target.inputs["Vector"]] if target is not None and "Vector" in target.inputs else []
            source = None
            saved = node.get(TAG_SOURCE)
            if saved:
                name, ident = saved.split("|", 1)
                src_node = tree.nodes.get(name)
                if src_node is not None:
                    source = next((s for s in src_node.outputs if s.identifier == ident), None)
            if tree.animation_data is not None:
                for fc in list(tree.animation_data.drivers):
                    if fc.data_path.startswith(f'nodes["{node.name}"]'):
                        tree.animation_data.drivers.remove(fc)
            tree.nodes.remove(node)
            for target in targets:
                if source is not None:
                    tree.links.new(source, target)
                restored += 1
        for node in [n for n in tree.nodes if n.get(TAG_NODE) == image_name]:
            tree.nodes.remove(node)  # the Texture Coordinate nodes it added
    for data, name in ((bpy.data.node_groups, group_name(image_name)), (bpy.data.images, atlas_name(image_name))):
        found = data.get(name)
        if found is not None:
            data.remove(found)
    return restored


def check_live(image: bpy.types.Image) -> str:
    """What is wrong with the image's live motion, in one line ("" when nothing): the group or its
    atlas deleted or replaced by hand, or made for another image shape."""
    group = bpy.data.node_groups.get(group_name(image.name))
    if group is None:
        return "its node group was deleted: run Live Motion again or remove it"
    atlas = bpy.data.images.get(atlas_name(image.name))
    if atlas is None or atlas.get(nodes.TAG) != "atlas" or atlas.packed_file is None:
        return "its packed motion image is missing or was replaced: run Live Motion again"
    size = group.get("gid_size")
    if size is not None and image.size[1] and size[1]:
        aspect, motion = image.size[0] / image.size[1], size[0] / size[1]
        if abs(aspect / motion - 1.0) > 0.02:
            return f"it was made for a {size[0]}x{size[1]} motion, not this {image.size[0]}x{image.size[1]} image"
    return ""


def prepare_live_motion(context: bpy.types.Context, image_name: str = "") -> Task:
    """The image's motion -> its backward spectral volume -> the node group in front of its textures."""
    ref, _image_path = checked_source(context, image_name)
    image = ref.image()
    settings = image.gid
    motion = bio.motion_file(settings)
    if not texture_users(image):
        raise InputError(f"no material shows {image.name!r} through an Image Texture node; add one first")
    engine = engines.engine(settings.device)
    amplitude, speed = float(settings.amplitude), 1.0 / max(float(settings.slowmo), 1e-6)

    size = tuple(image.size[:])

    def run(job: Job) -> Any:
        volume = load_spectral_volume(motion)
        check_aspect(volume, *size)  # motion made for another shape would be stretched
        live = engine.live_volume(volume, job=job)
        return live, encode_exr(live.atlas(), "half", "zip")

    def finish(context: bpy.types.Context, result: Any) -> list[Report]:
        live, exr = result
        image = ref.image()
        if image is None:
            return [("ERROR", f"image {ref.image_name!r} is gone (deleted or undone while GID worked)")]
        # Computed again: the old group comes off first, each texture node keeping its amplitude and speed.
        kept = {(mat.name, node.get(TAG_TARGET, "")): (node.inputs["Amplitude"].default_value,
                                                       node.inputs["Speed"].default_value)
                for mat, node in _live_nodes(image.name)}
        remove_live(image.name)
        atlas = nodes.pack_atlas(atlas_name(image.name), exr)
        layout = nodes.Layout(live.bins, live.width, live.height, live.period, live.fps, ATLAS_PAD)
        group = nodes.build_group(group_name(image.name), atlas, layout)
        users = texture_users(image)
        for mat, tex in users:
            _insert(mat, tex, group, image.name, context.scene, *kept.get((mat.name, tex.name), (amplitude, speed)))
        return [("INFO", f"Live motion on {len(users)} texture node(s) of {image.name!r}: {live.bins} bins, "
                         f"99.9 % of the backward fields within {live.extra['p999_error_px']:.3f} px")]

    return Task("Computing live motion", ref, run, finish, [])


class GID_OT_live_motion(GidJobOperator, bpy.types.Operator):
    """Animate the image in Cycles and EEVEE at any frame, with no baked files: a node group in front
    of every Image Texture node that shows it (saved in the .blend; renders without the extension)"""

    bl_idname = "gid.live_motion"
    bl_label = "Live Motion"

    image: StringProperty(name="Image", default="", description="Image to animate (default: the active one)")

    def prepare(self, context: bpy.types.Context) -> Task:
        return prepare_live_motion(context, self.image)


class GID_OT_remove_live_motion(bpy.types.Operator):
    """Take the live motion off the image's texture nodes: links back as they were, the group and its
    packed volume removed"""

    bl_idname = "gid.remove_live_motion"
    bl_label = "Remove Live Motion"
    bl_options = {"REGISTER", "UNDO"}

    image: StringProperty(name="Image", default="", description="Image whose live motion to remove")

    def execute(self, context: bpy.types.Context) -> set[str]:
        name = self.image or getattr(bio.source_from_context(context, "").image(), "name", "")
        restored = remove_live(name)
        self.report({"INFO"}, f"Removed live motion from {restored} texture node(s) of {name!r}")
        return {"FINISHED"}


CLASSES = (GID_OT_live_motion, GID_OT_remove_live_motion)
