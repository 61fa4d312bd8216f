"""Registering the add-on adds exactly its classes, properties and handlers; unregistering
removes them all, and both work twice in a row (enable/disable/enable in one session)."""

from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")

from gid import addon
from gid.addon import handlers, ops, panel, props

from blender_helpers import fresh_blend

OPERATORS = ["predict_motion", "extract_motion", "bake_loop", "bake_displacement",
             "setup_compositor_loop", "cancel_job"]


def _state() -> dict:
    return {
        "image_gid": hasattr(bpy.types.Image, "gid"),
        "scene_gid": hasattr(bpy.types.Scene, "gid"),
        "wm_gid": hasattr(bpy.types.WindowManager, "gid"),
        "classes": sum(bool(getattr(c, "is_registered", False)) for c in addon.CLASSES),
        "ops": sum(hasattr(bpy.types, f"GID_OT_{name}") for name in OPERATORS),
        "panels": sum(hasattr(bpy.types, c.__name__) for c in panel.CLASSES),
        "handlers": sum(fn in getattr(bpy.app.handlers, name) for name, fn in handlers.HANDLERS),
    }


OFF = {"image_gid": False, "scene_gid": False, "wm_gid": False, "classes": 0, "ops": 0, "panels": 0, "handlers": 0}
ON = {"image_gid": True, "scene_gid": True, "wm_gid": True, "classes": 11, "ops": 6, "panels": 2, "handlers": 3}


def test_register_unregister_twice() -> None:
    fresh_blend()
    enabled_by_blender = addon.is_registered()  # as in the installed-extension legs
    addon.unregister()
    assert _state() == OFF
    assert len(addon.CLASSES) == len(props.CLASSES) + len(ops.CLASSES) + len(panel.CLASSES) == 11
    try:
        for _ in range(2):
            addon.register()
            assert _state() == ON
            addon.register()  # a second register in a row is a no-op, not a "already registered" error
            assert _state() == ON
            # Working, not just present: a property round-trips and an operator runs.
            image = bpy.data.images.new("x", 4, 4)
            image.gid.amplitude = 2.5
            assert image.gid.amplitude == 2.5 and image.gid.output_dir == "//gid/{image}/"
            assert bpy.context.window_manager.gid.running is False
            assert bpy.ops.gid.cancel_job.poll() is False  # nothing runs
            bpy.data.images.remove(image)
            addon.unregister()
            assert _state() == OFF
            addon.unregister()
            assert _state() == OFF
    finally:
        addon.unregister()
        if enabled_by_blender:
            addon.register()


def test_operator_ids_and_options() -> None:
    assert [c.bl_idname for c in ops.CLASSES] == [f"gid.{name}" for name in OPERATORS]
    for cls in ops.CLASSES:
        assert cls.__doc__ and cls.bl_label
        if cls is not ops.GID_OT_cancel_job:
            assert cls.bl_options == {"REGISTER", "UNDO"}
    for cls in panel.CLASSES:
        assert (cls.bl_region_type, cls.bl_category) == ("UI", "GID")
    assert {c.bl_space_type for c in panel.CLASSES} == {"IMAGE_EDITOR", "NODE_EDITOR"}
