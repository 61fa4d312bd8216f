"""The interactive dynamics' app handlers: the preview follows the timeline, file loads, saves,
undo and redo. Every one is ``@persistent`` and removed in ``unregister``."""

from __future__ import annotations

from typing import Any, Optional

import bpy

from ..handlers import add_app_handlers, remove_app_handlers, save_as_dirs
from ..utils.paths import remap_relative
from . import pokes, preview


@bpy.app.handlers.persistent
def on_frame_change_post(scene: Any, *_args: Any) -> None:
    preview.refresh_preview(scene)


@bpy.app.handlers.persistent
def on_load_post(*_args: Any) -> None:
    """A new file: drop every cache (names may now mean other data) and redraw its previews."""
    preview.clear_caches()
    for scene in bpy.data.scenes:
        preview.refresh_preview(scene)


@bpy.app.handlers.persistent
def on_save_pre(filepath: Optional[str] = None, *_args: Any) -> None:
    """"Save As" elsewhere: keep the motion override's ``//`` path pointing at the same file
    (Blender remaps its own datablocks' paths, not add-on properties)."""
    dirs = save_as_dirs(filepath)
    if dirs is None:
        return
    old_dir, new_dir = dirs
    for scene in bpy.data.scenes:
        settings = getattr(scene, "gid_interactive", None)
        if settings is not None and settings.motion_path:
            remapped = remap_relative(settings.motion_path, old_dir, new_dir)
            if remapped != settings.motion_path:
                with pokes.batch():
                    settings.motion_path = remapped


@bpy.app.handlers.persistent
def on_undo_redo(*_args: Any) -> None:
    """Undo/redo can add or remove pokes and reset the preview image: draw it again."""
    preview.caches.last.clear()
    for scene in bpy.data.scenes:
        preview.refresh_preview(scene)


HANDLERS = [("frame_change_post", on_frame_change_post), ("load_post", on_load_post), ("save_pre", on_save_pre),
            ("undo_post", on_undo_redo), ("redo_post", on_undo_redo)]


def register() -> None:
    add_app_handlers(HANDLERS)


def unregister() -> None:
    remove_app_handlers(HANDLERS)
