"""The Blender side of gid (the only code importing bpy), one package per feature.

* ``props``, ``ops``, ``ui``, ``handlers``, ``blender_io``, ``nodes``: what the features share
  (the image's settings, the job operator and Cancel, the GID panel, file load/save handlers,
  bpy glue, image sequences and compositor setups);
* ``motion``: predict or extract the image's motion; ``loops``: bake loops and displacement
  maps, play them in the compositor; ``live``: the motion as node groups Blender's renderers
  evaluate at any frame; ``dynamics``: pokes and the interactive preview;
* ``utils``: the logic that needs no Blender (output paths, errors, the worker thread, the
  engines, the pokes' F-curve evaluation, caches), importable and tested without bpy.

Register-only: ``register()`` adds every feature's ``CLASSES`` (in ``FEATURES`` order: property
groups before what refers to them, the GID panel before the sub-panels under it), then calls
each feature's ``register()`` hook for what is not a class (pointer properties, app handlers,
the overlay); ``unregister()`` undoes it in reverse, cancelling a running job first. Both may be
called repeatedly (enable/disable, reloading scripts, tests): a second register or unregister in
a row is a no-op, and ``is_registered()`` tells which state the session is in. The features are
imported on the first call, so importing ``addon`` (or ``addon.utils``) needs no bpy.
"""

from __future__ import annotations

import atexit
from importlib import import_module
from types import ModuleType

# Registration order. Each names a module of this package with ``CLASSES`` and/or
# ``register()``/``unregister()`` hooks.
FEATURES = ("props", "ops", "motion", "loops", "ui", "live", "handlers", "dynamics")

_registered = False
_atexit_hooked = False


def features() -> list[ModuleType]:
    """The feature modules, in registration order (imports bpy)."""
    return [import_module(f"{__name__}.{name}") for name in FEATURES]


def classes() -> list[type]:
    """Every class the add-on registers, in registration order."""
    return [cls for feature in features() for cls in getattr(feature, "CLASSES", ())]


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
    for cls in classes():
        bpy.utils.register_class(cls)
    for feature in features():
        hook = getattr(feature, "register", None)
        if hook is not None:
            hook()
    _registered = True


def unregister() -> None:
    import bpy

    from .utils import engines, worker

    global _registered
    if not _registered:
        return
    worker.cancel_current(wait=10.0)  # a worker must not outlive the code that collects it
    for feature in reversed(features()):
        hook = getattr(feature, "unregister", None)
        if hook is not None:
            hook()
    for cls in reversed(classes()):
        if getattr(cls, "is_registered", False):
            bpy.utils.unregister_class(cls)
    engines.release()  # the onnxruntime sessions of a disabled add-on
    _registered = False
