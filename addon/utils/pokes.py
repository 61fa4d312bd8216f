"""Pokes without Blender: their F-curves evaluated, turned into engine ``Poke``s, re-indexed.

The bpy side (``addon/dynamics/pokes.py``) hands in what Blender holds: the scene's pokes (any
objects with ``frame``, ``position``, ``direction``, ``strength``, ``radius``, ``duration`` and
``enabled``) and its F-curves (any objects with ``data_path``, ``array_index``, ``mute`` and
``evaluate(frame)``), so everything here runs, and is tested, without bpy.

Conventions: Blender's values are UV-like (x right, y UP, [0, 1]); the engine's image convention
is y down, so ``y = 1 - v`` and ``dy = -dv``. An animated value is read from its F-curve *at the
time the poke acts* (an impulse at its frame; a drag at the start of each frame it covers,
piecewise constant), never from the value the scene shows at the current frame.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Optional

from ...gid_engine.dynamics.modal import Poke

ANIMATED_FIELDS = ("position", "direction", "strength", "radius", "duration", "enabled")
POKE_PATH = re.compile(r"^gid_pokes\[(\d+)\]\.(\w+)$")

Curves = Mapping[tuple[str, int], Any]  # (property, array index) -> F-curve


def parse_poke_path(data_path: str) -> Optional[tuple[int, str]]:
    """``gid_pokes[3].strength`` -> ``(3, "strength")``; None for any other data path."""
    m = POKE_PATH.match(data_path)
    return (int(m.group(1)), m.group(2)) if m is not None else None


def poke_path(index: int, name: str) -> str:
    """The data path of poke ``index``'s property ``name`` (what keyframes are stored under)."""
    return f"gid_pokes[{index}].{name}"


def group_poke_curves(fcurves: Optional[Iterable[Any]]) -> dict[int, dict[tuple[str, int], Any]]:
    """``{poke index: {(property, array index): fcurve}}`` of the pokes' animated, unmuted values."""
    out: dict[int, dict[tuple[str, int], Any]] = {}
    for fc in fcurves if fcurves is not None else ():
        parsed = parse_poke_path(fc.data_path)
        if parsed is not None and not fc.mute:
            out.setdefault(parsed[0], {})[(parsed[1], fc.array_index)] = fc
    return out


def poke_values(poke: Any, curves: Curves, frame: float) -> dict[str, Any]:
    """The poke's values at scene ``frame``: animated ones from their F-curves, others as set."""

    def scalar(name: str) -> float:
        fc = curves.get((name, 0))
        return float(fc.evaluate(frame)) if fc is not None else float(getattr(poke, name))

    def vector(name: str) -> tuple[float, float]:
        current = getattr(poke, name)
        return tuple(float(curves[(name, i)].evaluate(frame)) if (name, i) in curves else float(current[i])
                     for i in range(2))

    enabled = curves.get(("enabled", 0))
    return {
        "position": vector("position"), "direction": vector("direction"), "strength": scalar("strength"),
        "radius": max(0.0, scalar("radius")), "duration": max(0.0, scalar("duration")),
        "enabled": (enabled.evaluate(frame) >= 0.5) if enabled is not None else bool(poke.enabled),
    }


def to_engine_poke(frame: float, values: Mapping[str, Any], duration: Optional[float] = None) -> Optional[Poke]:
    """Blender values (UV, y up) -> an engine ``Poke`` (y down); None if it does nothing."""
    (u, v), (du, dv) = values["position"], values["direction"]
    if not values["enabled"] or (du == 0.0 and dv == 0.0):
        return None
    return Poke(frame=frame, x=u, y=1.0 - v, dx=du, dy=-dv, strength=values["strength"], radius=values["radius"],
                duration=values["duration"] if duration is None else duration)


def engine_pokes(items: Iterable[Any], curves: Mapping[int, Curves]) -> tuple[Poke, ...]:
    """The pokes ``items`` (with ``curves`` from ``group_poke_curves``) as engine ``Poke``s,
    independent of the scene's current frame.

    An impulse takes its values at its own frame. A drag with animated values becomes one
    1-frame drag per frame it covers, each with the values at that frame's start (so a keyed
    position moves the grip, a keyed strength ramps the force); unanimated, it stays one drag.
    """
    out: list[Poke] = []
    for i, item in enumerate(items):
        mine = curves.get(i, {})
        start = float(item.frame)
        values = poke_values(item, mine, start)
        duration = values["duration"]
        if duration == 0.0 or not mine:
            poke = to_engine_poke(start, values)
            if poke is not None:
                out.append(poke)
            continue
        k = 0
        while k < duration:
            t = start + k
            seg = poke_values(item, mine, t) if k else values
            poke = to_engine_poke(t, seg, duration=min(1.0, duration - k))
            if poke is not None and poke.strength != 0.0:
                out.append(poke)
            k += 1
    return tuple(out)


def removal_plan(fcurves: Optional[Iterable[Any]], index: int) -> tuple[list[Any], list[tuple[Any, str]]]:
    """What removing poke ``index`` does to the F-curves: (those to remove, (fcurve, new data
    path) for each of a later poke's, which moves down one, in index order)."""
    remove: list[Any] = []
    moved: list[tuple[int, Any, str]] = []
    for fc in list(fcurves) if fcurves is not None else ():
        parsed = parse_poke_path(fc.data_path)
        if parsed is None:
            continue
        i, name = parsed
        if i == index:
            remove.append(fc)
        elif i > index:
            moved.append((i, fc, name))
    return remove, [(fc, poke_path(i - 1, name)) for i, fc, name in sorted(moved, key=lambda x: x[0])]


def drag_to_poke(start_uv: tuple[float, float], end_uv: tuple[float, float], image_size: tuple[int, int],
                 sensitivity: float) -> Optional[tuple[tuple[float, float], tuple[float, float], float]]:
    """A mouse drag in UV (y up) -> (position, unit direction, strength); None for a click.

    Strength is ``sensitivity`` per image pixel dragged (0.1: a 30 px drag pokes with 3).
    """
    w, h = image_size
    du = (end_uv[0] - start_uv[0]) * w
    dv = (end_uv[1] - start_uv[1]) * h
    length = math.hypot(du, dv)
    if length < 1e-6:
        return None
    return (float(start_uv[0]), float(start_uv[1])), (du / length, dv / length), float(sensitivity * length)


def arrow_lines(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    """Line segments (pairs of points) of an arrow from (x0, y0) to (x1, y1), head at the end."""
    dx, dy = x1 - x0, y1 - y0
    length = math.hypot(dx, dy)
    lines = [(x0, y0), (x1, y1)]
    if length > 1e-3:
        ux, uy = dx / length, dy / length
        head = min(12.0, 0.4 * length)
        for s in (1, -1):
            hx = x1 - head * (ux * 0.866 - s * uy * 0.5)
            hy = y1 - head * (uy * 0.866 + s * ux * 0.5)
            lines += [(x1, y1), (hx, hy)]
    return lines


def overlay_arrow(position: tuple[float, float], direction: tuple[float, float], strength: float,
                  to_region: Any) -> Optional[list[tuple[float, float]]]:
    """The overlay's arrow of a poke, in region pixels (``to_region(u, v) -> (x, y)``): from its
    position along its direction (against it for negative strength), longer for stronger pokes;
    None for a poke without a direction."""
    (u, v), (du, dv) = position, direction
    n = math.hypot(du, dv)
    if n == 0:
        return None
    x0, y0 = to_region(u, v)
    length = 12.0 + 6.0 * min(abs(strength), 10.0)
    sign = 1.0 if strength >= 0 else -1.0
    return arrow_lines(x0, y0, x0 + sign * length * du / n, y0 + sign * length * dv / n)


def is_active(frame: float, duration: float, now: float) -> bool:
    """Whether the overlay shows a poke as acting at ``now`` (an impulse for 3 frames)."""
    return frame <= now <= frame + max(duration, 3.0)
