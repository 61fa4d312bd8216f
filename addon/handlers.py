"""App handlers: keep jobs and paths consistent across file loads and "Save As".

* ``load_pre``: a running job would finish into data that is about to be freed, so it is
  cancelled (its exporters discard what they staged) before the new file replaces it.
* ``load_post``: job state shown in the panel is reset; nothing runs in a freshly opened file.
  Baked results an older version referenced by pointer are moved to the name references
  (``props.migrate_legacy_references``): only right after a load can those pointers be read safely.
* ``save_pre``: Blender remaps the relative paths of its own datablocks on "Save As" into
  another folder, but not paths stored in add-on properties; ``motion_path`` and
  ``video_path`` are remapped here so they keep pointing at the same files.

Every handler is ``@persistent`` (they must survive file loads) and removed in ``unregister``:
a handler left behind keeps the bpy module from exiting in headless runs.
"""

from __future__ import annotations

from typing import Any, Optional

import bpy

from . import props
from .utils import worker
from .utils.paths import remap_relative
from .utils.paths import save_as_dirs as dirs_of_save

REMAPPED_PATHS = ("motion_path", "video_path")


@bpy.app.handlers.persistent
def on_load_pre(*_args: Any) -> None:
    worker.cancel_current(wait=10.0)


@bpy.app.handlers.persistent
def on_load_post(*_args: Any) -> None:
    wm = bpy.context.window_manager
    current = worker.current()
    if wm is not None and hasattr(wm, "gid") and (current is None or not current.alive):
        wm.gid.running = False
        wm.gid.progress = 0.0
        wm.gid.message = ""
    migrate_all_images()


def migrate_all_images() -> int:
    """Move the legacy baked-result pointers of every local image to names; how many images had one.

    Linked images are read-only here; theirs stay unread (the library file migrates when opened).
    """
    moved = 0
    for image in bpy.data.images:
        settings = getattr(image, "gid", None)
        if settings is not None and image.library is None and props.migrate_legacy_references(settings):
            moved += 1
    return moved


def save_as_dirs(filepath: Optional[str]) -> Optional[tuple[str, str]]:
    """(old, new) folder of a save of the open .blend that may move it; None for a first save."""
    return dirs_of_save(bpy.data.filepath, filepath)


@bpy.app.handlers.persistent
def on_save_pre(filepath: Optional[str] = None, *_args: Any) -> None:
    dirs = save_as_dirs(filepath)
    if dirs is None:
        return
    old_dir, new_dir = dirs
    for image in bpy.data.images:
        settings = getattr(image, "gid", None)
        if settings is None:
            continue
        for name in REMAPPED_PATHS:
            value = getattr(settings, name)
            remapped = remap_relative(value, old_dir, new_dir)
            if remapped != value:
                setattr(settings, name, remapped)


HANDLERS: list[tuple[str, Any]] = [
    ("load_pre", on_load_pre),
    ("load_post", on_load_post),
    ("save_pre", on_save_pre),
]


def add_app_handlers(pairs: list[tuple[str, Any]]) -> None:
    """Append each ``(bpy.app.handlers list name, function)`` once (registering twice adds nothing)."""
    for name, fn in pairs:
        handlers = getattr(bpy.app.handlers, name)
        if fn not in handlers:
            handlers.append(fn)


def remove_app_handlers(pairs: list[tuple[str, Any]]) -> None:
    """Remove every copy of each ``(name, function)``, in reverse order."""
    for name, fn in reversed(pairs):
        handlers = getattr(bpy.app.handlers, name)
        while fn in handlers:
            handlers.remove(fn)


def register() -> None:
    add_app_handlers(HANDLERS)


def unregister() -> None:
    remove_app_handlers(HANDLERS)
