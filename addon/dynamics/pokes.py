"""The scene's pokes: read through the scene's F-curves into engine ``Poke``s, added, removed.

The evaluation itself needs no Blender (``utils/pokes.py``); here the scene's action and
collection are handed to it. The simulation runs in scene frames from rest at frame 0, so what
``read_pokes`` returns depends only on the pokes and their keyframes, never on the frame the
scene is on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bpy

from ...gid_engine.dynamics.modal import Poke
from ..utils.pokes import engine_pokes, group_poke_curves, removal_plan

_suspended = [0]  # > 0 while several values are set: one preview update at the end, not six


@contextmanager
def batch() -> Iterator[None]:
    """Within the block, changing a poke or the interactive settings does not redraw the preview
    (the caller refreshes it once after)."""
    _suspended[0] += 1
    try:
        yield
    finally:
        _suspended[0] -= 1


def updates_suspended() -> bool:
    """Whether a ``batch()`` is running (the properties' update callbacks then do nothing)."""
    return _suspended[0] > 0


def scene_fcurves(scene: bpy.types.Scene) -> Any:
    """The F-curve collection of the scene's action (its slot's channelbag on 4.4+/5.x), or None."""
    anim = scene.animation_data
    action = anim.action if anim is not None else None
    if action is None:
        return None
    slot = getattr(anim, "action_slot", None)
    if slot is not None:
        try:
            from bpy_extras.anim_utils import action_get_channelbag_for_slot
        except ImportError:
            pass
        else:
            bag = action_get_channelbag_for_slot(action, slot)
            return bag.fcurves if bag is not None else None
    return getattr(action, "fcurves", None)


def poke_curves(scene: bpy.types.Scene) -> dict[int, dict[tuple[str, int], Any]]:
    """``{poke index: {(property, array index): fcurve}}`` for the pokes' animated values."""
    return group_poke_curves(scene_fcurves(scene))


def read_pokes(scene: bpy.types.Scene) -> tuple[Poke, ...]:
    """The scene's pokes as engine ``Poke``s, independent of the scene's current frame
    (``utils.pokes.engine_pokes``)."""
    return engine_pokes(scene.gid_pokes, poke_curves(scene))


def add_poke(scene: bpy.types.Scene, frame: int, position: tuple[float, float], direction: tuple[float, float],
             strength: float = 3.0, radius: float = 0.05, duration: float = 0.0) -> Any:
    """Append a poke to the scene and make it the active one (the caller refreshes the preview)."""
    with batch():
        item = scene.gid_pokes.add()
        item.frame = int(frame)
        item.position = position
        item.direction = direction
        item.strength = strength
        item.radius = radius
        item.duration = duration
        scene.gid_poke_index = len(scene.gid_pokes) - 1
    return item


def remove_poke(scene: bpy.types.Scene, index: int) -> None:
    """Remove poke ``index`` and its F-curves; later pokes' F-curves move down with them."""
    fcurves = scene_fcurves(scene)
    remove, renames = removal_plan(fcurves, index)
    for fc in remove:
        fcurves.remove(fc)
    for fc, path in renames:
        fc.data_path = path
    scene.gid_pokes.remove(index)
    scene.gid_poke_index = min(max(0, scene.gid_poke_index), max(0, len(scene.gid_pokes) - 1))
