"""Live motion: the image's motion evaluated by Blender's own renderers at any frame, with no bake.

* ``nodes``: the "GID Live Motion" shader node group (backward series, for Image Texture nodes)
  and its Geometry Nodes twin (forward series, for vertices), the packed atlas, the time drivers;
* ``ops``: ``gid.live_motion``, ``gid.remove_live_motion`` and ``gid.live_dynamics``; ``geometry``:
  ``gid.live_geometry`` (the Geometry Nodes modifier on a mesh with UVs); ``ui``: the
  Live Motion sub-panel; ``handlers``: live dynamics keyed again when the pokes change.
"""

from . import geometry, handlers, ops, ui

CLASSES: list[type] = [*ops.CLASSES, *geometry.CLASSES, *ui.CLASSES]
HANDLERS = handlers.HANDLERS


def register() -> None:
    handlers.register()


def unregister() -> None:
    handlers.unregister()
