"""Operators of the interactive dynamics: add, remove and drag pokes, refresh the preview, make a
mask, and bake the interaction (through ``Engine.bake_interaction``)."""

from __future__ import annotations

from typing import Optional

import bpy
from bpy.props import FloatProperty, FloatVectorProperty, IntProperty

from ...gid_engine.dynamics.interactive import DISPLACEMENT_PREFIX, FRAME_PREFIX
from ...gid_engine.errors import InputError
from ...gid_engine.progress import Job
from .. import blender_io as bio
from .. import nodes
from ..ops import GidJobOperator, Report, Task, load_or_reload
from ..utils import engines, paths
from ..utils.errors import NoImageError
from ..utils.pokes import drag_to_poke
from . import overlay, pokes, preview

MASK_NAME = "GID Mask"


def editor_image(context: bpy.types.Context) -> Optional[bpy.types.Image]:
    """The image of the Image Editor the operator runs in, if any."""
    space = getattr(context, "space_data", None)
    return space.image if space is not None and getattr(space, "type", "") == "IMAGE_EDITOR" else None


def ensure_source(context: bpy.types.Context) -> None:
    """Pokes made in an Image Editor showing a still make that still the source (if none yet)."""
    settings = context.scene.gid_interactive
    image = editor_image(context)
    if settings.source_image is None and image is not None and image != settings.preview_image:
        settings.source_image = image


class GID_OT_add_poke(bpy.types.Operator):
    """Add a poke at the current frame"""

    bl_idname = "gid.add_poke"
    bl_label = "Add Poke"
    bl_options = {"REGISTER", "UNDO"}

    frame: IntProperty(name="Frame", default=1, options={"SKIP_SAVE"},
                       description="Scene frame (default: the current frame)")  # type: ignore[valid-type]
    position: FloatVectorProperty(name="Position", size=2, default=(0.5, 0.5), subtype="XYZ")  # type: ignore[valid-type]
    direction: FloatVectorProperty(name="Direction", size=2, default=(1.0, 0.0), subtype="XYZ")  # type: ignore[valid-type]
    strength: FloatProperty(name="Strength", default=3.0)  # type: ignore[valid-type]
    radius: FloatProperty(name="Radius", default=0.05, min=0.0)  # type: ignore[valid-type]
    duration: FloatProperty(name="Duration", default=0.0, min=0.0)  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        frame = self.frame if self.properties.is_property_set("frame") else scene.frame_current
        ensure_source(context)
        pokes.add_poke(scene, frame, tuple(self.position), tuple(self.direction), self.strength, self.radius,
                       self.duration)
        preview.refresh_preview(scene)
        return {"FINISHED"}


class GID_OT_remove_poke(bpy.types.Operator):
    """Remove the active poke (and its keyframes)"""

    bl_idname = "gid.remove_poke"
    bl_label = "Remove Poke"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(name="Index", default=-1, options={"SKIP_SAVE"},
                       description="Which poke; -1 = the active one")  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        scene = getattr(context, "scene", None)
        return scene is not None and len(scene.gid_pokes) > 0

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        index = scene.gid_poke_index if self.index < 0 else self.index
        if not 0 <= index < len(scene.gid_pokes):
            self.report({"ERROR"}, f"there is no poke {index}")
            return {"CANCELLED"}
        pokes.remove_poke(scene, index)
        preview.refresh_preview(scene)
        return {"FINISHED"}


class GID_OT_drag_poke(bpy.types.Operator):
    """Click on the image and drag to poke it at the current frame (Esc or right-click cancels)"""

    bl_idname = "gid.drag_poke"
    bl_label = "Drag Poke"
    bl_options = {"REGISTER", "UNDO"}

    sensitivity: FloatProperty(name="Sensitivity", default=0.1, min=1e-4, soft_max=1.0,
                               description="Poke strength per image pixel dragged")  # type: ignore[valid-type]
    radius: FloatProperty(name="Radius", default=0.05, min=0.0, soft_max=0.5)  # type: ignore[valid-type]
    duration: FloatProperty(name="Duration", default=0.0, min=0.0)  # type: ignore[valid-type]

    _region = None  # plain attributes (not annotations): the WINDOW region being dragged in

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        area = getattr(context, "area", None)
        return area is not None and area.type == "IMAGE_EDITOR"

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        region = next((r for r in context.area.regions if r.type == "WINDOW"), None)
        if region is None or editor_image(context) is None:
            self.report({"ERROR"}, "open the image in this Image Editor first")
            return {"CANCELLED"}
        self._region = region
        overlay.drag.clear()
        overlay.drag.update(region=region.as_pointer(), start=None, end=None)
        overlay.add_draw_handler()
        context.window_manager.modal_handler_add(self)
        context.area.header_text_set("Poke: click and drag on the image; Esc / right-click cancels")
        return {"RUNNING_MODAL"}

    def _mouse(self, event: bpy.types.Event) -> tuple[float, float]:
        return float(event.mouse_x - self._region.x), float(event.mouse_y - self._region.y)

    def _inside(self, x: float, y: float) -> bool:
        return 0 <= x < self._region.width and 0 <= y < self._region.height

    def _end(self, context: bpy.types.Context) -> None:
        overlay.drag.clear()
        if context.area is not None:
            context.area.header_text_set(None)
            context.area.tag_redraw()

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type in {"ESC", "RIGHTMOUSE"} and event.value == "PRESS":
            self._end(context)
            return {"CANCELLED"}
        x, y = self._mouse(event)
        if event.type == "LEFTMOUSE" and event.value == "PRESS":
            if not self._inside(x, y):
                return {"PASS_THROUGH"}
            overlay.drag["start"] = overlay.drag["end"] = (x, y)
            context.area.tag_redraw()
            return {"RUNNING_MODAL"}
        if event.type == "MOUSEMOVE" and overlay.drag.get("start") is not None:
            overlay.drag["end"] = (x, y)
            context.area.tag_redraw()
            return {"RUNNING_MODAL"}
        if event.type == "LEFTMOUSE" and event.value == "RELEASE" and overlay.drag.get("start") is not None:
            view = self._region.view2d
            start_uv = view.region_to_view(*overlay.drag["start"])
            end_uv = view.region_to_view(x, y)
            ensure_source(context)
            source = context.scene.gid_interactive.source_image or editor_image(context)
            size = tuple(source.size[:]) if source is not None and 0 not in source.size[:] else (1, 1)
            poke = drag_to_poke(start_uv, end_uv, size, self.sensitivity)
            if poke is None:
                overlay.drag["start"] = None
                self.report({"WARNING"}, "drag from where to poke in the direction to push")
                return {"RUNNING_MODAL"}
            position, direction, strength = poke
            scene = context.scene
            pokes.add_poke(scene, scene.frame_current, position, direction, strength, self.radius, self.duration)
            self._end(context)
            preview.refresh_preview(scene)
            self.report({"INFO"}, f"Poke at frame {scene.frame_current}: strength {strength:.2f}")
            return {"FINISHED"}
        return {"PASS_THROUGH"}

    def cancel(self, context: bpy.types.Context) -> None:
        self._end(context)


class GID_OT_refresh_preview(bpy.types.Operator):
    """Recompute the interactive preview (after painting the mask or editing keyframes)"""

    bl_idname = "gid.refresh_preview"
    bl_label = "Refresh Preview"
    bl_options = {"REGISTER"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        preview.forget_inputs(scene)  # re-read the mask and the still (painted or edited since)
        if not preview.refresh_preview(scene) and scene.gid_interactive.preview_enabled:
            self.report({"ERROR"}, preview.preview_status(scene))
            return {"CANCELLED"}
        return {"FINISHED"}


class GID_OT_new_mask(bpy.types.Operator):
    """Make a white motion mask the size of the image, to paint black where nothing may move"""

    bl_idname = "gid.new_mask"
    bl_label = "New Mask"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.gid_interactive
        source = settings.source_image
        if source is None or 0 in source.size[:]:
            self.report({"ERROR"}, "choose the image to poke first")
            return {"CANCELLED"}
        w, h = source.size[:]
        mask = bpy.data.images.new(MASK_NAME, w, h, alpha=False)
        mask.generated_color = (1.0, 1.0, 1.0, 1.0)
        mask.colorspace_settings.name = nodes.colorspace_name(nodes.COLOR_DATA)
        settings.mask_image = mask
        return {"FINISHED"}


def prepare_bake(context: bpy.types.Context, image_name: str = "") -> Task:
    """Frames ``frame_start..frame_end`` of the scene's interaction -> ``<output>/interactive/``."""
    scene = context.scene
    settings = scene.gid_interactive
    if image_name:
        image = bpy.data.images.get(image_name)
        if image is None:
            raise NoImageError(f"there is no image named {image_name!r} in this .blend")
    else:
        image = settings.source_image
    if image is None:
        raise NoImageError("choose the image to poke (Image in the GID Interactive panel)")
    if not (settings.bake_images or settings.bake_displacement):
        raise InputError("nothing to bake: tick Images and/or Displacement Maps")
    image_path = bio.check_source_image(image, bio.max_pixels(context))
    _, sim = preview.get_simulator(scene, image)
    found = pokes.read_pokes(scene)
    start, end = scene.frame_start, scene.frame_end
    frames = list(range(start, end + 1))
    template = image.gid.output_dir if hasattr(image, "gid") else paths.DEFAULT_OUTPUT_DIR
    root = bio.resolve_output_dir(template, image.name, image_path)
    folder = root / paths.INTERACTIVE_SUBDIR
    sets = []
    if settings.bake_images:
        sets.append((FRAME_PREFIX, "png"))
    if settings.bake_displacement:
        sets += [(DISPLACEMENT_PREFIX, "exr"), (f"{DISPLACEMENT_PREFIX}_node", "exr")]
    overwrite = any([paths.overwrite_policy(folder, prefix, ext) for prefix, ext in sets])
    previous = {prefix: paths.previous_frame_count(folder, prefix) for prefix, _ in sets}
    device = preview.image_device(image)
    engine = engines.engine(device)
    preview.get_splatter(device)  # made here, on the main thread, where the preview makes it too
    want_images, want_disp = settings.bake_images, settings.bake_displacement
    ref = bio.SourceRef(image.name)
    scene_name = scene.name

    def run(job: Job) -> dict:
        return engine.bake_interaction(image_path, sim, found, frames, folder, images=want_images,
                                       displacement=want_disp, overwrite=overwrite, job=job)

    def finish(context: bpy.types.Context, result: dict) -> list[Report]:
        count = result["count"]
        for prefix, ext in sets:
            if previous.get(prefix, 0) > count:
                paths.remove_stale_frames(folder, prefix, ext, count, previous[prefix])
        target = bpy.data.scenes.get(scene_name) or context.scene
        s = target.gid_interactive
        reports: list[Report] = []
        if want_images:
            first = folder / paths.frame_file_name(FRAME_PREFIX, 1, "png")
            s.baked_image = load_or_reload(s.baked_image, first, count, f"GID interactive {image.name}", None)
            s.baked_frames, s.baked_start = count, start
            nodes.configure_users(s.baked_image, count, start=start, cyclic=False)
        if want_disp:
            first = folder / paths.frame_file_name(f"{DISPLACEMENT_PREFIX}_node", 1, "exr")
            s.baked_displacement_image = load_or_reload(s.baked_displacement_image, first, count,
                                                        f"GID interactive displacement {image.name}",
                                                        nodes.COLOR_DATA)
            s.baked_displacement_scale = float(result["scale"])
            nodes.configure_users(s.baked_displacement_image, count, start=start, cyclic=False)
        verb = "Re-baked" if overwrite else "Baked"
        reports.append(("INFO", f"{verb} frames {start}-{end} ({count}) of the interaction into "
                                f"{bio.blender_relpath(folder)}"))
        return reports

    return Task("Baking interaction", ref,
                paths.leave_no_trace(run, folder, claim=(root, image.name, image_path)), finish)


class GID_OT_bake_interaction(GidJobOperator, bpy.types.Operator):
    """Bake the poked image over the scene's frame range (PNG sequence and/or displacement maps)"""

    bl_idname = "gid.bake_interaction"
    bl_label = "Bake Interaction"

    def prepare(self, context: bpy.types.Context) -> Task:
        return prepare_bake(context, self.image)


CLASSES: list[type] = [
    GID_OT_add_poke,
    GID_OT_remove_poke,
    GID_OT_drag_poke,
    GID_OT_refresh_preview,
    GID_OT_new_mask,
    GID_OT_bake_interaction,
]
