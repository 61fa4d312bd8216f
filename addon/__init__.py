"""The Blender side of gid: properties, operators, panels, handlers (the only code importing bpy).

``register()`` adds the classes of ``props``, ``ops`` and ``panel`` (in that order: operators
and panels refer to the property groups), then the pointer properties (``Image.gid``,
``Scene.gid``, ``WindowManager.gid``), the app handlers and the interactive-dynamics module
``pokes`` (pokes on the scene, preview handler, Image Editor overlay); ``unregister()`` undoes it in
reverse, cancelling a running job first. Both may be called repeatedly (enable/disable,
reloading scripts, tests): a second register or unregister in a row is a no-op, and
``is_registered()`` tells which state the session is in.
"""

from __future__ import annotations

import atexit

from . import handlers, ops, panel, pokes, props, worker

CLASSES: list[type] = [*props.CLASSES, *ops.CLASSES, *panel.CLASSES]

_registered = False
_atexit_hooked = False


def is_registered() -> bool:
    """Whether gid's classes are registered in this Blender session (by Blender enabling the
    extension, or by a script calling ``register``)."""
    return _registered


def register() -> None:
    import bpy

    global _registered, _atexit_hooked
    if _registered:
        return
    if not _atexit_hooked:
        # The bpy module (headless Blender) hangs at interpreter exit while Python handlers or
        # classes of ours are still registered; scripts and tests often just exit.
        atexit.register(unregister)
        _atexit_hooked = True
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    props.register_pointers()
    handlers.register()
    pokes.register()  # after the core panels: its sub-panel is a child of GID_PT_image_editor
    _registered = True


def unregister() -> None:
    import bpy

    global _registered
    if not _registered:
        return
    worker.cancel_current(wait=10.0)  # a worker must not outlive the code that collects it
    pokes.unregister()
    handlers.unregister()
    props.unregister_pointers()
    for cls in reversed(CLASSES):
        if getattr(cls, "is_registered", False):
            bpy.utils.unregister_class(cls)
    _registered = False
_atexit_hooked = False
