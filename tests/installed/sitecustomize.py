"""Start-up hook of the installed-extension test legs: ``import gid`` means the installed extension.

``tools/blender_matrix.py`` installs the built zip into a fresh ``bpy`` the way a user does (*Install
from Disk*, in an isolated Blender user folder), then runs the add-on suite with this folder on
``PYTHONPATH`` and ``GID_INSTALLED_EXTENSION`` naming the installed package
(``bl_ext.user_default.gid``). Python imports ``sitecustomize`` at start-up, in the pytest process
and in every process a test starts, so in all of them ``gid`` and each ``gid.X`` resolve to that
package's modules: the same module objects Blender registered, never a second copy from the
source tree. The tests stay written against ``gid``; what they exercise is what users install.

Nothing happens without ``GID_INSTALLED_EXTENSION`` (the source-tree legs), and ``bpy`` is imported
only when ``gid`` is first imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType
from typing import Optional, Sequence

ALIAS = "gid"


def _enable(package: str) -> None:
    """Enable the installed extension in this process if Blender did not already (a process whose
    preferences were reset, or one that started before they were saved)."""
    import bpy  # noqa: F401 - sets up Blender's Python: addon_utils, bl_ext

    import addon_utils

    if not addon_utils.check(package)[1]:
        addon_utils.extensions_refresh(ensure_wheels=True)
        if addon_utils.enable(package, default_set=True, handle_error=None) is None:
            raise ImportError(f"the installed extension {package} could not be enabled")


class InstalledExtensionAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves ``gid`` and ``gid.X`` to the already imported ``<package>`` and ``<package>.X``."""

    def __init__(self, package: str) -> None:
        self.package = package
        self._enabled = False
        self._own_specs: dict[str, Optional[importlib.machinery.ModuleSpec]] = {}

    def _real_name(self, name: str) -> str:
        return self.package + name[len(ALIAS):]

    def _alias_name(self, name: str) -> str:
        return ALIAS + name[len(self.package):]

    def find_spec(self, name: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        if name != ALIAS and not name.startswith(ALIAS + "."):
            return None
        if not self._enabled:
            self._enabled = True
            _enable(self.package)
        real = importlib.import_module(self._real_name(name))
        return importlib.util.spec_from_loader(name, self, origin=getattr(real, "__file__", None),
                                               is_package=hasattr(real, "__path__"))

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = sys.modules[self._real_name(spec.name)]
        self._own_specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system has just set module.__spec__ to the alias spec: give back its own.
        module.__spec__ = self._own_specs.pop(self._alias_name(module.__name__), module.__spec__)

    def get_code(self, fullname: str):
        real = importlib.util.find_spec(self._real_name(fullname))
        return real.loader.get_code(real.name)  # type: ignore[union-attr]


def activate(package: str) -> None:
    if not any(isinstance(f, InstalledExtensionAlias) for f in sys.meta_path):
        sys.meta_path.insert(0, InstalledExtensionAlias(package))


if os.environ.get("GID_INSTALLED_EXTENSION"):
    activate(os.environ["GID_INSTALLED_EXTENSION"])
