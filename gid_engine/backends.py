"""Backends and commands that packages beside the runtime add to it.

The runtime samples the prior and renders frames through onnxruntime. The development tooling
(``gid_tools``) adds a torch backend (the reference pipeline, the torch splatters) and its ``gid``
subcommands (train, eval, export-onnx, bench, selftest, ...). It announces them as entry points of
the installed ``gid`` distribution, so the runtime finds them without naming the tooling, and
inside Blender, where the extension carries no distribution metadata and no tooling, there are
none to find:

* group ``gid.backends``: a name -> an object with ``available()``, ``prior_pipeline(weights_dir,
  device)``, ``splatter(threads, device)`` and ``neural_renderer(threads, device)``;
* group ``gid.commands``: a name -> ``add_commands(subparsers)``, which adds the subcommands and
  sets each one's ``func``.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Callable, Protocol

BACKEND_GROUP = "gid.backends"
COMMAND_GROUP = "gid.commands"
_BACKENDS: dict[str, Any] = {}
_LOADED = False


class TorchLikeBackend(Protocol):
    """What the prior and the renderer ask of an added backend."""

    def available(self) -> bool: ...

    def prior_pipeline(self, weights_dir: Any, device: str) -> Any: ...

    def splatter(self, threads: int | None, device: str) -> Any: ...

    def neural_renderer(self, threads: int | None, device: str) -> Any: ...


def register_backend(name: str, backend: TorchLikeBackend) -> None:
    """Make ``backend`` reachable as ``backend=name`` (tests and embedders may register directly)."""
    _BACKENDS[name] = backend


def backend(name: str) -> TorchLikeBackend | None:
    """The added backend called ``name`` when one is installed and can run here, else None."""
    _load_backends()
    found = _BACKENDS.get(name)
    return found if found is not None and found.available() else None


def _load_backends() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for ep in _entry_points(BACKEND_GROUP):
        if ep.name in _BACKENDS:
            continue
        try:
            _BACKENDS[ep.name] = ep.load()()
        except ImportError:  # its package is there without its dependencies (torch): not available
            continue


def command_adders() -> list[Callable[[Any], None]]:
    """The ``add_commands`` functions of every installed package that adds ``gid`` subcommands."""
    adders = []
    for ep in _entry_points(COMMAND_GROUP):
        try:
            adders.append(ep.load())
        except ImportError:
            continue
    return adders


def _entry_points(group: str) -> list:
    """The group's entry points of the ``gid`` distribution, in a stable order."""
    try:
        found = entry_points(group=group)
    except Exception:  # broken metadata of some other distribution: no additions
        return []
    return sorted((ep for ep in found if ep.value.startswith("gid.")), key=lambda ep: ep.name)
