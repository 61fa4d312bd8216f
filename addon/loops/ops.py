"""Operators that bake the image's motion: Bake Loop, Bake Displacement, Set Up Compositor Loop.

The bakes write through the engine (``Engine.render_to_dir``, ``Engine.displace_to_dir``) into
``<output>/loop/`` and ``<output>/displacement/``, then load what was written as image sequences
(new datablocks and nodes; the user's image and nodes are never changed).
"""

from __future__ import annotations

from typing import Any, Optional

import bpy
from bpy.props import BoolProperty, StringProperty

from .. import blender_io as bio
from .. import nodes, props
from ..ops import GidJobOperator, Report, Task, checked_source, image_settings, load_or_reload
from ...exporters.atomic import AllOrNothing
from ...exporters.errors import ExportError
from ...exporters.sidecar import read_sidecar
from ...gid_engine.errors import GidError
from ...gid_engine.progress import Job
from ..utils import engines, paths, worker
from ..utils.errors import MotionMissingError


def _options(context: bpy.types.Context, settings: bpy.types.PropertyGroup) -> Any:
    return engines.render_options(settings.frames, settings.fps, bio.scene_fps(context.scene), settings.slowmo,
                                  settings.amplitude, settings.device)


def prepare_bake_loop(context: bpy.types.Context, image_name: str = "", add_node: bool = True) -> Task:
    """Still + motion -> ``<output>/loop/frame_####.png`` -> an image sequence (+ a texture node)."""
    ref, image_path = checked_source(context, image_name)
    settings = ref.image().gid
    motion = bio.motion_file(settings)
    root = bio.resolve_output_dir(settings.output_dir, ref.image_name, image_path)
    folder = root / paths.LOOP_SUBDIR
    overwrite = paths.overwrite_policy(folder, paths.LOOP_PREFIX, "png")
    previous = paths.previous_frame_count(folder, paths.LOOP_PREFIX) if overwrite else 0
    options = _options(context, settings)
    engine = engines.engine(settings.device)

    def run(job: Job) -> Any:
        return engine.render_to_dir(image_path, motion, folder, options, fmt="png", prefix=paths.LOOP_PREFIX,
                                    overwrite=overwrite, job=job)

    def finish(context: bpy.types.Context, result: Any) -> list[Report]:
        reports: list[Report] = [("INFO", m) for m in result.messages]
        count = result.frames
        if previous > count:
            paths.remove_stale_frames(folder, paths.LOOP_PREFIX, "png", count, previous)
        first = folder / paths.frame_file_name(paths.LOOP_PREFIX, 1, "png")
        settings = image_settings(ref)
        seq = load_or_reload(props.loop_image(settings), first, count, f"GID loop {ref.image_name}", None)
        props.set_loop_image(settings, seq)
        settings.loop_frames = count
        nodes.configure_users(seq, count)
        user_node, tree = ref.node(), ref.node_tree()
        if add_node and user_node is not None and tree is not None:
            if not any(n.bl_idname == "ShaderNodeTexImage" and n.image == seq for n in tree.nodes):
                node = nodes.add_sequence_texture_node(tree, seq, count, beside=user_node)
                reports.append(("INFO", f"added Image Texture node {node.name!r} playing the loop"))
        verb = "Re-baked" if overwrite else "Baked"
        reports.append(("INFO", f"{verb} {count} frames into {bio.blender_relpath(folder)}"))
        return reports

    reports = [("INFO", f"replacing the previous GID loop in {folder}")] if overwrite else []
    return Task("Baking loop", ref, paths.leave_no_trace(run, folder, claim=(root, ref.image_name, image_path)),
                finish, reports)


def prepare_bake_displacement(context: bpy.types.Context, image_name: str = "",
                              setup_compositor: Optional[bool] = None) -> Task:
    """Motion -> ``<output>/displacement/disp_####.exr`` + ``disp_node_####.exr`` -> a Non-Color
    sequence of the Displace-node maps and its scale (+ the compositor setup on request)."""
    ref, image_path = checked_source(context, image_name)
    image = ref.image()
    settings = image.gid
    size = tuple(image.size[:])
    motion = bio.motion_file(settings)
    root = bio.resolve_output_dir(settings.output_dir, ref.image_name, image_path)
    folder = root / paths.DISPLACEMENT_SUBDIR
    overwrite_pixels = paths.overwrite_policy(folder, paths.DISPLACEMENT_PREFIX, "exr")
    overwrite_node = paths.overwrite_policy(folder, paths.DISPLACE_NODE_PREFIX, "exr")
    prefixes = (paths.DISPLACEMENT_PREFIX, paths.DISPLACE_NODE_PREFIX)
    previous = {p: paths.previous_frame_count(folder, p) for p in prefixes}
    options = _options(context, settings)
    engine = engines.engine(settings.device)
    compositor = settings.displacement_compositor if setup_compositor is None else setup_compositor

    def run(job: Job) -> dict:
        common = dict(prefix=paths.DISPLACEMENT_PREFIX, job=job, source_image=str(image_path))
        # Two sets, each replacing only its own earlier bake: one output, all or nothing.
        with AllOrNothing(folder) as outputs:
            outputs.add(engine.displace_to_dir(size, motion, folder, options, kind="pixels",
                                               overwrite=overwrite_pixels, **common))
            outputs.add(engine.displace_to_dir(size, motion, folder, options, kind="displace-node",
                                               overwrite=overwrite_node, **common))
        doc = read_sidecar(folder / f"{paths.DISPLACE_NODE_PREFIX}.json")
        return {"files": outputs.paths, "scale": float(doc["params"]["scale"]), "count": int(doc["files"]["count"])}

    def finish(context: bpy.types.Context, result: dict) -> list[Report]:
        count, scale = result["count"], result["scale"]
        for prefix, before in previous.items():
            if before > count:
                paths.remove_stale_frames(folder, prefix, "exr", count, before)
        first = folder / paths.frame_file_name(paths.DISPLACE_NODE_PREFIX, 1, "exr")
        settings = image_settings(ref)
        seq = load_or_reload(props.displacement_image(settings), first, count,
                             f"GID displacement {ref.image_name}", nodes.COLOR_DATA)
        props.set_displacement_image(settings, seq)
        settings.displacement_frames = count
        settings.displacement_scale = scale
        nodes.configure_users(seq, count)
        reports: list[Report] = [("INFO", f"Baked {count} displacement maps (scale {scale:.4g} px) into "
                                          f"{bio.blender_relpath(folder)}")]
        if compositor:
            nodes.setup_compositor_displace(context.scene, ref.image(), seq, count, scale)
            reports.append(("INFO", "compositor: the image displaced by the maps, in the 'GID' frame"))
        return reports

    reports = [("INFO", f"replacing the previous GID displacement maps in {folder}")] \
        if (overwrite_pixels or overwrite_node) else []
    return Task("Baking displacement", ref,
                paths.leave_no_trace(run, folder, claim=(root, ref.image_name, image_path)), finish, reports)


class GID_OT_bake_loop(GidJobOperator, bpy.types.Operator):
    """Bake a seamless loop of the animated image as a PNG sequence and load it"""

    bl_idname = "gid.bake_loop"
    bl_label = "Bake Loop"

    add_node: BoolProperty(name="Add Texture Node", default=True, options={"SKIP_SAVE"},
                           description="Add an Image Texture node playing the loop beside the "
                                       "active one (the user's node is not changed)")  # type: ignore[valid-type]

    def prepare(self, context: bpy.types.Context) -> Task:
        return prepare_bake_loop(context, self.image, self.add_node)


class GID_OT_bake_displacement(GidJobOperator, bpy.types.Operator):
    """Bake per-frame displacement maps for the compositor's Displace node"""

    bl_idname = "gid.bake_displacement"
    bl_label = "Bake Displacement"

    setup_compositor: BoolProperty(name="Set Up Compositor", default=False, options={"SKIP_SAVE"},
                                   description="Also build the compositor setup (default: the "
                                               "image's setting)")  # type: ignore[valid-type]

    def prepare(self, context: bpy.types.Context) -> Task:
        explicit = self.properties.is_property_set("setup_compositor")
        return prepare_bake_displacement(context, self.image, self.setup_compositor if explicit else None)


class GID_OT_setup_compositor_loop(bpy.types.Operator):
    """Play the baked loop in the compositor (an Image node into the output, no 3D render)"""

    bl_idname = "gid.setup_compositor_loop"
    bl_label = "Set Up Compositor Loop"
    bl_options = {"REGISTER", "UNDO"}

    image: StringProperty(name="Image", default="", options={"SKIP_SAVE"},
                          description="Name of the image whose loop to use; empty: the selected one")  # type: ignore[valid-type]
    match_scene: BoolProperty(name="Match Scene", default=True, options={"SKIP_SAVE"},
                              description="Set the render size to the image and the frame range "
                                          "to one loop")  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            ref = bio.source_from_context(context, self.image)
            source = ref.image()
            settings = source.gid
            seq = props.loop_image(settings)  # None too when the baked image was removed or renamed
            if seq is None or settings.loop_frames < 1:
                raise MotionMissingError(f"image {source.name!r} has no baked loop yet: bake a loop first")
            first = bio.abspath(seq.filepath)
            if not first.is_file():  # else the compositor would play missing (pink) frames
                raise MotionMissingError(f"baked loop not found: {first}; bake the loop again")
            nodes.setup_compositor_loop(context.scene, seq, settings.loop_frames, set_range=self.match_scene)
            if self.match_scene:
                nodes.match_render_size(context.scene, source)
        except (GidError, ExportError, ValueError) as exc:
            message = worker.user_message(exc) if not isinstance(exc, ValueError) else str(exc)
            self.report({"ERROR"}, message)
            return {"CANCELLED"}
        text = f"Compositor plays {seq.name!r} ({settings.loop_frames} frames)"
        if self.match_scene:
            w, h = context.scene.render.resolution_x, context.scene.render.resolution_y
            text += f"; render size {w}x{h}, frames 1-{settings.loop_frames}"
        settings.status = text
        self.report({"INFO"}, text)
        return {"FINISHED"}


CLASSES: list[type] = [GID_OT_bake_loop, GID_OT_bake_displacement, GID_OT_setup_compositor_loop]
