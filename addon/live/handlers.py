"""Keeps live dynamics keyed to the pokes: after any change, if the scene's pokes (or the
simulation settings) differ from those the keys were written for, the keys are written again."""

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


@persistent
def on_depsgraph_update_post(scene: Any, *_args: Any) -> None:
    """Rewrite the keys when the pokes changed; never raises (a handler error would repeat forever)."""
    try:
        if not ops.dynamics_nodes(scene):
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
