"""What every feature's operators share: the job operator and the Cancel operator.

Every long operation (predict, extract, bake loop / displacement / interaction) is split in
three, so the UI (threaded, modal) and scripts (synchronous ``execute``) run exactly the same code:

1. ``prepare_*`` (main thread, bpy; in each feature's ``ops``): find the image, check every input
   and the output folder, and capture plain values in a ``Task``. All user errors surface here,
   before any work.
2. ``Task.run(job)`` (worker thread in the UI, inline in ``execute``): engine calls only, through
   ``utils.engines``, no bpy.
3. ``Task.finish(context, result)`` (main thread, bpy): load what was written, make datablocks
   and nodes. Never called after a cancel or an error, so those create no datablocks.

Errors users can cause (``GidError``, ``ExportError``) become one ERROR report and CANCELLED.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import bpy
from bpy.props import StringProperty

from . import blender_io as bio
from . import nodes
from ..exporters.errors import ExportError
from ..gid_engine.errors import GidError
from ..gid_engine.progress import Job
from .utils import worker
from .utils.errors import NoImageError

Report = tuple[str, str]  # (level, message) for Operator.report


# ----------------------------------------------------------------------------- tasks
@dataclass
class Task:
    """One operation: a bpy-free ``run(job)`` and a main-thread ``finish(context, result)``."""

    label: str
    source: bio.SourceRef
    run: Callable[[Job], Any]
    finish: Callable[[bpy.types.Context, Any], list[Report]]
    reports: list[Report] = field(default_factory=list)  # said when the task starts (e.g. "replacing")


def image_settings(ref: bio.SourceRef) -> bpy.types.PropertyGroup:
    """The GID settings of ``ref``'s image, looked up again (a finishing step runs after the
    worker: the image may have been deleted or undone meanwhile)."""
    image = ref.image()
    if image is None:
        raise NoImageError(f"image {ref.image_name!r} is gone (deleted or undone while GID worked)")
    return image.gid


def checked_source(context: bpy.types.Context, image_name: str) -> tuple[bio.SourceRef, Path]:
    """The image to work on, refused unless it is local and its file can be read, and that file."""
    ref = bio.source_from_context(context, image_name)
    bio.check_local(ref.image())  # the job's results are stored on the image
    path = bio.check_source_image(ref.image(), bio.max_pixels(context))
    return ref, path


def load_or_reload(existing: Optional[bpy.types.Image], first: Path, count: int, name: str,
                   colorspace: Optional[str], relative: bool = True) -> bpy.types.Image:
    """Reuse our image of an earlier bake into the same files (reloaded), else load a new one.

    Re-baking must not pile up ``GID loop.001``, ``.002``...: the files are the same, only
    their content and count changed.
    """
    if existing is not None and existing.source == "SEQUENCE" and existing.filepath \
            and bio.abspath(existing.filepath) == first:
        existing.reload()
        return existing
    return nodes.load_image_sequence(str(first), count, name, colorspace=colorspace, relative=relative)


# ----------------------------------------------------------------------------- operators
class GidJobOperator:
    """Shared by the long-running operators: ``execute`` inline, ``invoke`` threaded + modal."""

    bl_options = {"REGISTER", "UNDO"}

    image: StringProperty(name="Image", default="", options={"SKIP_SAVE"},
                          description="Name of the image to use; empty: the selected one")  # type: ignore[valid-type]

    # Plain class attributes, deliberately not annotated: Blender evaluates an operator's
    # annotations as property definitions (non-property ones kept bpy 4.5 from exiting).
    _worker = None  # utils.worker.Worker while running modal
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


CLASSES: list[type] = [GID_OT_cancel_job]
