"""The Blender side of gid: operators, panels, properties, handlers (the only code importing bpy).

The user interface is built in the Blender-extension issue; until then registration is a no-op
so the extension installs and enables cleanly.
"""

CLASSES: list[type] = []


def register() -> None:
    import bpy

    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    import bpy

    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
