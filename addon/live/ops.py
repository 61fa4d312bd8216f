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
from . import geometry, nodes

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
            scene: bpy.types.Scene, amplitude: float, speed: float, timed: bool = True) -> bpy.types.Node:
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
    if timed:
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
        for node in [n for n in tree.nodes if n.get(TAG_NODE) == image_name and n.bl_idname == "ShaderNodeGroup"
                     and not n.get(TAG_DYNAMICS)]:
            restored += _unlink_group(tree, node)
        for node in [n for n in tree.nodes if n.get(TAG_NODE) == image_name and n.bl_idname == "ShaderNodeTexCoord"
                     and not any(o.is_linked for o in n.outputs)]:
            tree.nodes.remove(node)  # the Texture Coordinate nodes it added, once nothing uses them
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


TAG_DYNAMICS = "gid_live_dynamics"  # on a dynamics group node: the image whose pokes it follows


def dynamics_group_name(image_name: str) -> str:
    return f"GID Live Dynamics {image_name}"


def dynamics_nodes(scene: bpy.types.Scene) -> list[bpy.types.Node]:
    """The live dynamics group nodes of every material (their keys follow ``scene``'s pokes)."""
    return [n for mat in bpy.data.materials if mat.node_tree is not None and mat.library is None
            for n in mat.node_tree.nodes if n.get(TAG_DYNAMICS) and n.node_tree is not None]


def write_dynamics_keys(scene: bpy.types.Scene) -> int:
    """Key every live dynamics group node to the simulation of the scene's pokes, on every frame of
    the scene's range; returns how many nodes were keyed."""
    from ...gid_engine.rendering.live import modal_coordinates
    from ..dynamics import pokes as scene_pokes
    from ..dynamics import preview

    found = dynamics_nodes(scene)
    if not found:
        return 0
    _key, sim = preview.get_simulator(scene)
    frames = list(range(scene.frame_start, scene.frame_end + 1))
    q = modal_coordinates(sim, scene_pokes.read_pokes(scene), frames)
    for node in found:
        nodes.write_modal_keys(node, frames, q)
    return len(found)


class GID_OT_live_dynamics(bpy.types.Operator):
    """Show the interactive dynamics live in Cycles and EEVEE: the modes as a packed image in a node
    group in front of the image's texture nodes, their coordinates keyed on every frame to the
    simulation of the pokes (keyed again whenever the pokes change); no bake, no Python at render time"""

    bl_idname = "gid.live_dynamics"
    bl_label = "Live Dynamics"
    bl_options = {"REGISTER", "UNDO"}

    image: StringProperty(name="Image", default="", description="Image to animate (default: the poked one)")

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ...gid_engine.errors import GidError
        from ...gid_engine.rendering.live import modal_volume
        from ..dynamics import preview

        scene = context.scene
        try:
            image = bpy.data.images.get(self.image) if self.image else scene.gid_interactive.source_image
            if image is None:
                raise InputError("choose the image to poke (Image in the GID Interactive panel)")
            _key, sim = preview.get_simulator(scene, image)
            modal = modal_volume(sim.basis)
            users = texture_users(image)
            if not users:
                raise InputError(f"no material shows {image.name!r} through an Image Texture node; add one first")
            atlas = nodes.pack_atlas(f"GID Live Dynamics Atlas {image.name}", encode_exr(modal.atlas(), "half", "zip"))
            layout = nodes.Layout(modal.bins, modal.width, modal.height, 1, 1.0, ATLAS_PAD)
            for mat in bpy.data.materials:  # computed again: the old nodes come off first
                if mat.node_tree is not None:
                    for node in [n for n in mat.node_tree.nodes if n.get(TAG_DYNAMICS) == image.name]:
                        _unlink_group(mat.node_tree, node)
            group = nodes.build_modal_group(dynamics_group_name(image.name), atlas, layout)
            for mat, tex in users:
                node = _insert(mat, tex, group, image.name, scene, 1.0, 1.0, timed=False)
                node[TAG_DYNAMICS] = image.name
                node.label = "GID Live Dynamics"
            write_dynamics_keys(scene)
        except GidError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Live dynamics on {len(users)} texture node(s) of {image.name!r}: "
                              f"{modal.bins} modes keyed on frames {scene.frame_start}-{scene.frame_end}")
        return {"FINISHED"}


def _unlink_group(tree: bpy.types.NodeTree, node: bpy.types.Node) -> bool:
    """Take one added group node out (its drivers and the Texture Coordinate node it added too), its
    texture node fed as before. Returns whether that texture node is still there."""
    target = tree.nodes.get(node.get(TAG_TARGET, ""))
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
    coords = [link.from_node for link in node.inputs["Vector"].links] if "Vector" in node.inputs else []
    tree.nodes.remove(node)
    for c in coords:
        if c.get(TAG_NODE) and c.bl_idname == "ShaderNodeTexCoord" and not any(o.is_linked for o in c.outputs):
            tree.nodes.remove(c)
    if target is None or "Vector" not in target.inputs:
        return False
    if source is not None:
        tree.links.new(source, target.inputs["Vector"])
    return True


class GID_OT_live_motion(GidJobOperator, bpy.types.Operator):
    """Animate the image in Cycles and EEVEE at any frame, with no baked files: a node group in front
    of every Image Texture node that shows it (saved in the .blend; renders without the extension)"""

    bl_idname = "gid.live_motion"
    bl_label = "Live Motion"

    image: StringProperty(name="Image", default="", description="Image to animate (default: the active one)")

    def prepare(self, context: bpy.types.Context) -> Task:
        return prepare_live_motion(context, self.image)


class GID_OT_remove_live_motion(bpy.types.Operator):
    """Take the live motion off the image's texture nodes and meshes: links back as they were, the
    Geometry Nodes modifiers, the groups and their packed volumes removed"""

    bl_idname = "gid.remove_live_motion"
    bl_label = "Remove Live Motion"
    bl_options = {"REGISTER", "UNDO"}

    image: StringProperty(name="Image", default="", description="Image whose live motion to remove")

    def execute(self, context: bpy.types.Context) -> set[str]:
        name = self.image or getattr(bio.source_from_context(context, "").image(), "name", "")
        restored, moved = remove_live(name), geometry.remove_geometry(name)
        self.report({"INFO"}, f"Removed live motion from {restored} texture node(s) and {moved} mesh modifier(s) "
                              f"of {name!r}")
        return {"FINISHED"}


CLASSES = (GID_OT_live_motion, GID_OT_remove_live_motion, GID_OT_live_dynamics)
