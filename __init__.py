"""Blender extension entry point (the repository root is the extension package).

Register-only, as Blender's own add-ons do it: everything Blender-facing lives in ``addon/``,
which is the only code that imports ``bpy``. The engine is imported by the add-on, never here.
"""


def register() -> None:
    from .addon import register as _register

    _register()


def unregister() -> None:
    from .addon import unregister as _unregister

    _unregister()
