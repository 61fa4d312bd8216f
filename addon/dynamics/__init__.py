"""Interactive dynamics in Blender: pokes keyframed on the timeline drive a modal simulation
(paper §6), shown live in the "GID Preview" image and baked like a loop.

* ``props``: the scene's pokes and interactive settings (saved with the .blend);
* ``pokes``: the scene's pokes read through their F-curves (the evaluation itself is
  ``utils/pokes.py``, bpy-free), added and removed;
* ``preview``: the cached simulator and renderer, and the preview image;
* ``overlay``: the Image Editor's arrows (gpu, never in background mode);
* ``ops``, ``ui``, ``handlers``: operators, the sub-panel, the app handlers.

``register()``/``unregister()`` add and remove what is not a class (scene properties, app
handlers, the overlay); ``addon/__init__.py`` registers ``CLASSES`` first.
"""

from . import handlers, ops, overlay, preview, props, ui

CLASSES: list[type] = [*props.CLASSES, *ops.CLASSES, *ui.CLASSES]
HANDLERS = handlers.HANDLERS


def register() -> None:
    props.register()
    handlers.register()
    overlay.add_draw_handler()


def unregister() -> None:
    overlay.remove_draw_handlers()
    handlers.unregister()
    props.unregister()
    preview.clear_caches()
