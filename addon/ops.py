"""Operators: predict or extract motion, bake a loop or displacement maps, set up the compositor.

Every long operation is split in three, so the UI (threaded, modal) and scripts (synchronous
``execute``) run exactly the same code:

1. ``prepare_*`` (main thread, bpy): find the image, check every input and the output folder,
   and capture plain values in a ``Task``. All user errors surface here, before any work.
2. ``Task.run(job)`` (worker thread in the UI, inline in ``execute``): engine calls only, no bpy.
3. ``Task.finish(context, result)`` (main thread, bpy): load what was written, make datablocks
   and nodes. Never called after a cancel or an error, so those create no datablocks.

Errors users can cause (``GidError``, ``ExportError``) become one ERROR report and CANCELLED.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import bpy
from bpy.props import BoolProperty, StringProperty

from . import blender_io as bio
from . import nodes
from . import props
from . import worker
from ..exporters.errors import ExportError
from ..exporters.sidecar import read_sidecar
from ..gid_engine.errors import GidError
from ..gid_engine.progress import Job

Report = tuple[str, str]  # (level, message) for Operator.report


# ----------------------------------------------------------------------------- plain logic
def render_options(frames: int, fps: float, scene_fps: float, slowmo: float, amplitude: float,
                   device: str) -> Any:
    """Panel settings -> engine options: 0 frames is one full loop, 0 fps the scene's rate."""
    from ..gid_engine.rendering.pipeline import RenderOptions

    return RenderOptions(frames=frames or None, fps=fps or scene_fps, slowmo=slowmo, amplitude=amplitude,
                         device=device.lower())


def scene_fps(scene: bpy.types.Scene) -> float:
    return scene.render.fps / (scene.render.fps_base or 1.0)


def overwrite_policy(folder: Path, prefix: str, ext: str) -> bool:
    """Whether to overwrite: our previous bake yes, nobody's files no, someone else's refuse."""
    owner = bio.own_sequence(folder, prefix, ext)
    if owner is False:
        raise bio.OutputConflictError(
            f"{folder} already holds {prefix}_####.{ext} files that are not a GID bake; "
            "choose another output folder or move them")
    return owner is True


def motion_overwrite_policy(target: Path) -> bool:
    """A ``.gidsv`` that loads is one of ours (it carries our format and checksum): replace it."""
    if not target.exists():
        return False
    from ..gid_engine.motion.sv_file import load_spectral_volume

    try:
        load_spectral_volume(target)
    except (GidError, ExportError):
        raise bio.OutputConflictError(f"{target} exists and is not a GID motion file; "
                                      "choose another output folder or move it") from None
    return True


# ----------------------------------------------------------------------------- tasks
@dataclass
class Task:
    """One operation: a bpy-free ``run(job)`` and a main-thread ``finish(context, result)``."""

    label: str
    source: bio.SourceRef
    run: Callable[[Job], Any]
    finish: Callable[[bpy.types.Context, Any], list[Report]]
    reports: list[Report] = field(default_factory=list)  # said when the task starts (e.g. "replacing")


def _settings(ref: bio.SourceRef) -> bpy.types.PropertyGroup:
    image = ref.image()
    if image is None:
        raise bio.NoImageError(f"image {ref.image_name!r} is gone (deleted or undone while GID worked)")
    return image.gid


def _source_file(image: bpy.types.Image) -> Optional[Path]:
    """The still's file when it has one on disk (extraction does not need it)."""
    if image is None or image.source != "FILE" or image.packed_file is not None or not image.filepath:
        return None
    try:
        path = bio.image_path(image)
    except (ValueError, RuntimeError):
        return None
    return path if path.is_file() else None


def _checked_source(context: bpy.types.Context, image_name: str) -> tuple[bio.SourceRef, Path]:
    ref = bio.source_from_context(context, image_name)
    bio.check_local(ref.image())  # the job's results are stored on the image
    path = bio.check_source_image(ref.image(), bio.max_pixels(context))
    return ref, path


def _save_motion(run_motion: Callable[[Job], Any], target: Path, overwrite: bool) -> Callable[[Job], dict]:
    """Wrap a job that yields a SpectralVolume so it ends by writing ``target`` atomically."""
    from ..gid_engine.motion.sv_file import save_spectral_volume

    def run(job: Job) -> dict:
        sv = run_motion(job)
        job.check()  # a cancel during the last step must not write the file
        save_spectral_volume(sv, target, overwrite=overwrite)
        return {"path": target, "size": (sv.width, sv.height), "source": sv.source,
                "padding": sv.extra.get("padding") if isinstance(sv.extra, dict) else None}

    return run


def _finish_motion(ref: bio.SourceRef, verb: str) -> Callable[[bpy.types.Context, dict], list[Report]]:
    def finish(context: bpy.types.Context, result: dict) -> list[Report]:
        settings = _settings(ref)
        settings.motion_path = bio.blender_relpath(result["path"])
        w, h = result["size"]
        note = " (short clip: played forwards and backwards)" if result.get("padding") == "mirror" else ""
        return [("INFO", f"{verb} {w}x{h} motion into {settings.motion_path}{note}")]

    return finish


def prepare_extract(context: bpy.types.Context, image_name: str = "") -> Task:
    """Video -> spectral volume -> ``<output>/motion.gidsv``, remembered as ``motion_path``."""
    from ..gid_engine.motion.extract import extract_motion

    ref = bio.source_from_context(context, image_name)
    bio.check_local(ref.image())  # the motion file is remembered on the image
    settings = ref.image().gid
    if not settings.video_path:
        raise bio.MotionMissingError("choose a video to extract the motion from (Video in the GID panel)")
    video = bio.file_path(settings.video_path, "video")
    if not video.exists():
        raise bio.MotionMissingError(f"video not found: {video}")
    source = _source_file(ref.image())
    folder = bio.resolve_output_dir(settings.output_dir, ref.image_name, source)
    target = folder / bio.MOTION_FILE
    overwrite = motion_overwrite_policy(target)
    run = bio.leave_no_trace(_save_motion(lambda job: extract_motion(video, job=job), target, overwrite), folder,
                             claim=(folder, ref.image_name, source))
    reports = [("INFO", f"replacing the previous GID motion file {target}")] if overwrite else []
    return Task("Extracting motion", ref, run, _finish_motion(ref, "Extracted"), reports)


def prepare_predict(context: bpy.types.Context, image_name: str = "") -> Task:
    """Image -> learned motion prior -> ``<output>/motion.gidsv`` (needs the shipped weights)."""
    from ..gid_engine.media.imaging import load_image
    from ..gid_engine.prediction.predict import predict_motion

    ref, path = _checked_source(context, image_name)
    settings = ref.image().gid
    folder = bio.resolve_output_dir(settings.output_dir, ref.image_name, path)
    target = folder / bio.MOTION_FILE
    overwrite = motion_overwrite_policy(target)
    # 0 is "automatic": the engine picks the model's steps on a GPU and fewer on the CPU
    seed, steps, device = settings.seed, settings.steps or None, settings.device.lower()
    strength = settings.variation

    def predict(job: Job) -> Any:
        return predict_motion(load_image(path), seed=seed, steps=steps, device=device, job=job,
                              init_strength=strength)

    run = bio.leave_no_trace(_save_motion(predict, target, overwrite), folder, claim=(folder, ref.image_name, path))
    return Task("Predicting motion", ref, run, _finish_motion(ref, "Predicted"))


def prepare_bake_loop(context: bpy.types.Context, image_name: str = "", add_node: bool = True) -> Task:
    """Still + motion -> ``<output>/loop/frame_####.png`` -> an image sequence (+ a texture node)."""
    from ..gid_engine.rendering.pipeline import render_to_dir

    ref, image_path = _checked_source(context, image_name)
    settings = ref.image().gid
    motion = bio.motion_file(settings)
    root = bio.resolve_output_dir(settings.output_dir, ref.image_name, image_path)
    folder = root / bio.LOOP_SUBDIR
    overwrite = overwrite_policy(folder, bio.LOOP_PREFIX, "png")
    previous = bio.previous_frame_count(folder, bio.LOOP_PREFIX) if overwrite else 0
    options = render_options(settings.frames, settings.fps, scene_fps(context.scene), settings.slowmo,
                             settings.amplitude, settings.device)

    def run(job: Job) -> Any:
        return render_to_dir(image_path, motion, folder, options, fmt="png", prefix=bio.LOOP_PREFIX,
                             overwrite=overwrite, job=job)

    def finish(context: bpy.types.Context, result: Any) -> list[Report]:
        reports: list[Report] = [("INFO", m) for m in result.messages]
        count = result.frames
        if previous > count:
            bio.remove_stale_frames(folder, bio.LOOP_PREFIX, "png", count, previous)
        first = folder / bio.frame_file_name(bio.LOOP_PREFIX, 1, "png")
        settings = _settings(ref)
        seq = _load_or_reload(props.loop_image(settings), first, count, f"GID loop {ref.image_name}", None)
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
    return Task("Baking loop", ref, bio.leave_no_trace(run, folder, claim=(root, ref.image_name, image_path)),
                finish, reports)


def prepare_bake_displacement(context: bpy.types.Context, image_name: str = "",
                              setup_compositor: Optional[bool] = None) -> Task:
    """Motion -> ``<output>/displacement/disp_####.exr`` + ``disp_node_####.exr`` -> a Non-Color
    sequence of the Displace-node maps and its scale (+ the compositor setup on request)."""
    from ..gid_engine.rendering.pipeline import displace_to_dir

    ref, image_path = _checked_source(context, image_name)
    image = ref.image()
    settings = image.gid
    size = tuple(image.size[:])
    motion = bio.motion_file(settings)
    root = bio.resolve_output_dir(settings.output_dir, ref.image_name, image_path)
    folder = root / bio.DISPLACEMENT_SUBDIR
    overwrite_pixels = overwrite_policy(folder, bio.DISPLACEMENT_PREFIX, "exr")
    overwrite_node = overwrite_policy(folder, bio.DISPLACE_NODE_PREFIX, "exr")
    previous = {p: bio.previous_frame_count(folder, p) for p in (bio.DISPLACEMENT_PREFIX, bio.DISPLACE_NODE_PREFIX)}
    options = render_options(settings.frames, settings.fps, scene_fps(context.scene), settings.slowmo,
                             settings.amplitude, settings.device)
    compositor = settings.displacement_compositor if setup_compositor is None else setup_compositor

    def run(job: Job) -> dict:
        # Two transactions, so a failure in the second must take the first one's files away too.
        common = dict(job=job, source_image=str(image_path))
        pixels = displace_to_dir(size, motion, folder, options, kind="pixels", prefix=bio.DISPLACEMENT_PREFIX,
                                 overwrite=overwrite_pixels, **common)
        try:
            node_files = displace_to_dir(size, motion, folder, options, kind="displace-node",
                                         prefix=bio.DISPLACEMENT_PREFIX, overwrite=overwrite_node, **common)
        except BaseException:
            for p in pixels:
                p.unlink(missing_ok=True)
            raise
        doc = read_sidecar(folder / f"{bio.DISPLACE_NODE_PREFIX}.json")
        return {"files": pixels + node_files, "scale": float(doc["params"]["scale"]),
                "count": int(doc["files"]["count"])}

    def finish(context: bpy.types.Context, result: dict) -> list[Report]:
        count, scale = result["count"], result["scale"]
        for prefix, before in previous.items():
            if before > count:
                bio.remove_stale_frames(folder, prefix, "exr", count, before)
        first = folder / bio.frame_file_name(bio.DISPLACE_NODE_PREFIX, 1, "exr")
        settings = _settings(ref)
        seq = _load_or_reload(props.displacement_image(settings), first, count,
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
                bio.leave_no_trace(run, folder, claim=(root, ref.image_name, image_path)), finish, reports)


def _load_or_reload(existing: Optional[bpy.types.Image], first: Path, count: int, name: str,
                    colorspace: Optional[str]) -> bpy.types.Image:
    """Reuse our image of an earlier bake into the same files (reloaded), else load a new one.

    Re-baking must not pile up ``GID loop.001``, ``.002``...: the files are the same, only
    their content and count changed.
    """
    if existing is not None and existing.source == "SEQUENCE" and existing.filepath \
            and bio.abspath(existing.filepath) == first:
        existing.reload()
        return existing
    return nodes.load_image_sequence(str(first), count, name, colorspace=colorspace, relative=True)


# ----------------------------------------------------------------------------- operators
class GidJobOperator:
    """Shared by the long-running operators: ``execute`` inline, ``invoke`` threaded + modal."""

    bl_options = {"REGISTER", "UNDO"}

    image: StringProperty(name="Image", default="", options={"SKIP_SAVE"},
                          description="Name of the image to use; empty: the selected one")  # type: ignore[valid-type]

    # Plain class attributes, deliberately not annotated: Blender evaluates an operator's
    # annotations as property definitions (non-property ones kept bpy 4.5 from exiting).
    _worker = None  # worker.Worker while running modal
    _timer = None  # the window-manager timer that drains the worker's queue
    _task = None  # the Task being run

    def prepare(self, context: bpy.types.Context) -> Task:
        raise NotImplementedError

    # -- shared ends
    def _status(self, ref: Optional[bio.SourceRef], text: str) -> None:
        image = ref.image() if ref is not None else None
        if image is not None:
            image.gid.status = text

    def _fail(self, ref: Optional[bio.SourceRef], message: str) -> set[str]:
        self._status(ref, f"Error: {message}")
        self.report({"ERROR"}, message)
        return {"CANCELLED"}

    def _prepare(self, context: bpy.types.Context) -> Optional[Task]:
        try:
            bio.apply_memory_budget(context)
            return self.prepare(context)
        except (GidError, ExportError) as exc:
            self._fail(None, worker.user_message(exc))
            return None

    def _conclude(self, context: bpy.types.Context, task: Task, outcome: worker.Outcome) -> set[str]:
        if outcome.status == "cancelled":
            self._status(task.source, "Cancelled; nothing was written")
            self.report({"WARNING"}, f"{task.label} cancelled; nothing was written")
            return {"CANCELLED"}
        if outcome.status == "error":
            return self._fail(task.source, outcome.error)
        try:
            reports = task.finish(context, outcome.result)
        except (GidError, ExportError, ValueError, FileNotFoundError) as exc:
            return self._fail(task.source, worker.user_message(exc) if isinstance(exc, (GidError, ExportError))
                              else str(exc))
        for level, message in task.reports + reports:
            self.report({level}, message)
        self._status(task.source, reports[-1][1] if reports else f"{task.label}: done")
        return {"FINISHED"}

    # -- synchronous (scripts, background)
    def execute(self, context: bpy.types.Context) -> set[str]:
        task = self._prepare(context)
        if task is None:
            return {"CANCELLED"}
        return self._conclude(context, task, worker.run_job(task.run, Job()))

    # -- threaded (UI)
    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background or context.window is None:
            return self.execute(context)  # no event loop to drive a modal operator
        task = self._prepare(context)
        if task is None:
            return {"CANCELLED"}
        try:
            self._start(context, task)
        except GidError as exc:
            return self._fail(task.source, str(exc))
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC" and event.value == "PRESS":
            self._worker.cancel()
            context.window_manager.gid.message = "Cancelling..."
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":  # Event has no timer id; any timer tick just polls (cheap)
            return {"PASS_THROUGH"}
        return self._tick(context)

    def _start(self, context: bpy.types.Context, task: Task) -> None:
        """Start the worker thread and show the job in the panel and the status bar."""
        self._worker = worker.start(task.run, name=f"gid-{task.label}")
        self._task = task
        wm = context.window_manager
        wm.progress_begin(0, 1000)
        state = wm.gid
        state.running, state.operation, state.image_name = True, task.label, task.source.image_name
        state.progress, state.message = 0.0, f"{task.label}..."
        _status_text(context, f"{task.label}... (Esc to cancel)")
        self._status(task.source, f"{task.label}...")

    def _tick(self, context: bpy.types.Context) -> set[str]:
        """One timer tick on the main thread: show progress; when the worker ended, finish."""
        progress, outcome = self._worker.poll()
        wm = context.window_manager
        if progress is not None:
            done, total, what = progress
            fraction = worker.progress_fraction(done, total)
            wm.progress_update(int(fraction * 1000))
            wm.gid.progress = fraction
            if not self._worker.job.cancelled:
                wm.gid.message = f"{what or self._task.label} {done}/{total}"
            _status_text(context, f"{self._task.label}: {what} {done}/{total} (Esc to cancel)")
            _redraw(context)
        if outcome is None:
            return {"RUNNING_MODAL"}
        self._cleanup(context)
        return self._conclude(context, self._task, outcome)

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender ends the modal (file load, window closed): stop the worker, forget its result."""
        if self._worker is not None:
            self._worker.cancel()
            self._worker.join(10.0)
        self._cleanup(context)

    def _cleanup(self, context: bpy.types.Context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        if self._worker is not None:
            worker.release(self._worker)
            self._worker = None
        wm.progress_end()
        wm.gid.running = False
        wm.gid.progress = 0.0
        wm.gid.message = ""
        _status_text(context, None)
        _redraw(context)


def _status_text(context: bpy.types.Context, text: Optional[str]) -> None:
    workspace = getattr(context, "workspace", None)
    if workspace is not None:
        workspace.status_text_set(text)


def _redraw(context: bpy.types.Context) -> None:
    screen = getattr(context, "screen", None)
    for area in screen.areas if screen is not None else ():
        if area.type in {"IMAGE_EDITOR", "NODE_EDITOR", "STATUSBAR"}:
            area.tag_redraw()


class GID_OT_predict_motion(GidJobOperator, bpy.types.Operator):
    """Predict the image's motion with the learned motion prior (writes motion.gidsv)"""

    bl_idname = "gid.predict_motion"
    bl_label = "Predict Motion"

    def prepare(self, context: bpy.types.Context) -> Task:
        return prepare_predict(context, self.image)


class GID_OT_extract_motion(GidJobOperator, bpy.types.Operator):
    """Extract the motion of the reference video into a spectral volume (motion.gidsv)"""

    bl_idname = "gid.extract_motion"
    bl_label = "Extract Motion from Video"

    def prepare(self, context: bpy.types.Context) -> Task:
        return prepare_extract(context, self.image)


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
                raise bio.MotionMissingError(f"image {source.name!r} has no baked loop yet: bake a loop first")
            first = bio.abspath(seq.filepath)
            if not first.is_file():  # else the compositor would play missing (pink) frames
                raise bio.MotionMissingError(f"baked loop not found: {first}; bake the loop again")
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


class GID_OT_cancel_job(bpy.types.Operator):
    """Cancel the running GID job; whatever it was writing is removed"""

    bl_idname = "gid.cancel_job"
    bl_label = "Cancel"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        current = worker.current()
        return current is not None and current.alive

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not worker.cancel_current():
            self.report({"WARNING"}, "no GID job is running")
            return {"CANCELLED"}
        context.window_manager.gid.message = "Cancelling..."
        self.report({"INFO"}, "Cancelling the GID job...")
        return {"FINISHED"}


CLASSES: list[type] = [
    GID_OT_predict_motion,
    GID_OT_extract_motion,
    GID_OT_bake_loop,
    GID_OT_bake_displacement,
    GID_OT_setup_compositor_loop,
    GID_OT_cancel_job,
]
