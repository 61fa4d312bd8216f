"""The add-on's front door to the engine: one ``Engine`` per device setting, for the session.

Every operator reaches the engine through ``engine(device)``: prediction, extraction, loops,
displacement maps and the interactive bake and preview. The ``Engine`` owns what is costly to
make (onnxruntime sessions of the renderers) and the device choice, so a second bake on the same
device reuses the first one's sessions and the preview and the bake share theirs. ``release()``
drops them all (the add-on does when it is unregistered).

What the engine says (a GPU that fell back to the CPU) is heard by whoever listens in the current
thread (``listening()``: the operator turns it into reports) and printed to the system console
otherwise.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Optional

from ...gid_engine.engine import Engine
from ...gid_engine.rendering.pipeline import RenderOptions

_engines: dict[str, Engine] = {}
_lock = threading.Lock()
# What the engines said in this context (a worker thread has its own): None when nobody listens.
_heard: ContextVar[Optional[list[str]]] = ContextVar("gid_addon_heard", default=None)


def _say(message: str) -> None:
    heard = _heard.get()
    if heard is not None:
        heard.append(message)
    else:
        print(f"GID: {message}", file=sys.stderr)


def engine(device: str = "auto") -> Engine:
    """The engine for the panel's device setting (AUTO, GPU, CPU; any case), made once."""
    key = device.lower()
    with _lock:
        found = _engines.get(key)
        if found is None:
            found = _engines[key] = Engine(device=key, log=_say)
        return found


def release() -> None:
    """Forget every engine (and with them their sessions)."""
    with _lock:
        _engines.clear()


@contextmanager
def listening() -> Iterator[list[str]]:
    """Within the block, what the engines say in this thread is collected in the list yielded."""
    heard: list[str] = []
    token = _heard.set(heard)
    try:
        yield heard
    finally:
        _heard.reset(token)


def render_options(frames: int, fps: float, scene_fps: float, slowmo: float, amplitude: float,
                   device: str) -> RenderOptions:
    """Panel settings -> the engine's render options: 0 frames is one full loop, 0 fps the scene's rate."""
    return engine(device).render_options(frames=frames or None, fps=fps or scene_fps, slowmo=slowmo,
                                         amplitude=amplitude)
