"""Keeps live dynamics keyed to the pokes: after a change to the scene (its pokes, their keyframes,
the simulation settings, the frame range) or to an image (the motion, the mask), if the pokes or
settings differ from those the keys were written for, the keys are written again.

The handler runs after every depsgraph update (each transform of an object while it is dragged);
it looks at the update's list first, so an update that touches neither the scene nor an image or
action costs one pass over that list and nothing else.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.app.handlers import persistent

from ..handlers import add_app_handlers, remove_app_handlers
from . import ops

_written: dict[str, Any] = {}  # scene name -> what its keys were written for


def _state(scene: bpy.types.Scene) -> Any:
    from ..dynamics import pokes as scene_pokes
    from ..dynamics import preview

    key, _sim = preview.get_simulator(scene)
    return (key, scene_pokes.read_pokes(scene), scene.frame_start, scene.frame_end)


def touches_pokes(scene: bpy.types.Scene, depsgraph: Any) -> bool:
    """Whether the update may have changed what the keys follow: it updated ``scene`` (pokes,
    settings and frame range are its properties; keyframed pokes update it too), an action or an
    image. Without a depsgraph (a caller of its own) the answer is yes."""
    if depsgraph is None:
        return True
    for update in depsgraph.updates:
        changed = update.id
        if isinstance(changed, bpy.types.Scene):
            if getattr(changed, "original", changed) == scene:
                return True
        elif isinstance(changed, (bpy.types.Image, bpy.types.Action)):
            return True
    return False


@persistent
def on_depsgraph_update_post(scene: Any, depsgraph: Any = None, *_args: Any) -> None:
    """Rewrite the keys when the pokes changed; never raises (a handler error would repeat forever)."""
    try:
        if not touches_pokes(scene, depsgraph) or not ops.dynamics_nodes(scene):
            return
        state = _state(scene)
        if _written.get(scene.name) == state:
            return
        _written[scene.name] = state
        ops.write_dynamics_keys(scene)
    except Exception:  # no source image, no motion yet: nothing to key
        return


HANDLERS = [("depsgraph_update_post", on_depsgraph_update_post)]


def register() -> None:
    add_app_handlers(HANDLERS)


def unregister() -> None:
    remove_app_handlers(HANDLERS)
    _written.clear()
