"""Registering the add-on adds exactly its classes, properties and handlers (the interactive
dynamics' included: one registration path); unregistering removes them all, and both work twice
in a row (enable/disable/enable in one session)."""

from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")

from gid import addon
from gid.addon import dynamics, handlers, live, loops, motion, ops, props, ui
from gid.addon.dynamics import overlay, pokes

from blender_helpers import fresh_blend

OPERATORS = ["predict_motion", "extract_motion", "bake_loop", "bake_displacement",
             "setup_compositor_loop", "cancel_job", "live_motion", "remove_live_motion", "live_dynamics",
             "live_geometry"]
INTERACTIVE_OPERATORS = ["add_poke", "remove_poke", "drag_poke", "refresh_preview", "new_mask", "bake_interaction"]
SCENE_PROPS = ("gid_pokes", "gid_poke_index", "gid_interactive")
CORE_OPERATORS = [*motion.CLASSES, *loops.CLASSES, ops.GID_OT_cancel_job, *live.ops.CLASSES,
                  *live.geometry.CLASSES]


def _state() -> dict:
    return {
        "image_gid": hasattr(bpy.types.Image, "gid"),
        "scene_gid": hasattr(bpy.types.Scene, "gid"),
        "wm_gid": hasattr(bpy.types.WindowManager, "gid"),
        "scene_props": sum(hasattr(bpy.types.Scene, a) for a in SCENE_PROPS),
        "classes": sum(bool(getattr(c, "is_registered", False)) for c in addon.classes()),
        "ops": sum(hasattr(bpy.types, f"GID_OT_{name}") for name in OPERATORS + INTERACTIVE_OPERATORS),
        "panels": sum(hasattr(bpy.types, c.__name__) for c in [*ui.CLASSES, *live.ui.CLASSES, *dynamics.ui.CLASSES]),
        "handlers": sum(fn in getattr(bpy.app.handlers, name)
                        for name, fn in handlers.HANDLERS + live.HANDLERS + dynamics.HANDLERS),
        "draw": len(overlay.draw_handles),
    }


OFF = {"image_gid": False, "scene_gid": False, "wm_gid": False, "scene_props": 0, "classes": 0, "ops": 0,
       "panels": 0, "handlers": 0, "draw": 0}
ON = {"image_gid": True, "scene_gid": True, "wm_gid": True, "scene_props": 3, "classes": 26, "ops": 16,
      "panels": 5, "handlers": 9, "draw": 1}


def test_register_unregister_twice() -> None:
    fresh_blend()
    enabled_by_blender = addon.is_registered()  # as in the installed-extension legs
    addon.unregister()
    assert _state() == OFF
    assert len(addon.classes()) == (len(props.CLASSES) + len(CORE_OPERATORS) + len(ui.CLASSES)
                                    + len(live.ui.CLASSES) + len(dynamics.CLASSES)) == 12 + 4 + 10 == 26
    try:
        for _ in range(2):
            fresh_blend()
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
            scene = bpy.context.scene
            pokes.add_poke(scene, 7, (0.25, 0.75), (0.0, -1.0), 4.0)
            assert (len(scene.gid_pokes), scene.gid_poke_index, scene.gid_pokes[0].frame) == (1, 0, 7)
            assert scene.gid_interactive.damping == pytest.approx(0.03)
            assert bpy.ops.gid.drag_poke.poll() is False  # no Image Editor in a headless session
            addon.unregister()
            assert _state() == OFF
            addon.unregister()
            assert _state() == OFF
    finally:
        addon.unregister()
        if enabled_by_blender:
            addon.register()


def test_operator_ids_and_options() -> None:
    assert [c.bl_idname for c in CORE_OPERATORS] == [f"gid.{name}" for name in OPERATORS]
    assert sorted(c.bl_idname for c in dynamics.ops.CLASSES) == sorted(f"gid.{n}" for n in INTERACTIVE_OPERATORS)
    for cls in CORE_OPERATORS:
        assert cls.__doc__ and cls.bl_label
        if cls is not ops.GID_OT_cancel_job:
            assert cls.bl_options == {"REGISTER", "UNDO"}
    (live_panel,) = live.ui.CLASSES
    assert (live_panel.bl_parent_id, live_panel.bl_category) == ("GID_PT_image_editor", "GID")
    for cls in ui.CLASSES:
        assert (cls.bl_region_type, cls.bl_category) == ("UI", "GID")
    assert {c.bl_space_type for c in ui.CLASSES} == {"IMAGE_EDITOR", "NODE_EDITOR"}
    (sub,) = [c for c in dynamics.ui.CLASSES if issubclass(c, bpy.types.Panel)]
    assert (sub.bl_idname, sub.bl_parent_id, sub.bl_category) == ("GID_PT_interactive", "GID_PT_image_editor", "GID")


def test_one_registration_path() -> None:
    """Every class is registered through ``addon.register`` in feature order: property groups
    before what refers to them, the GID panel before its sub-panel; no feature registers itself."""
    names = [c.__name__ for c in addon.classes()]
    assert len(names) == len(set(names))
    assert names.index("GID_ImageSettings") < names.index("GID_PT_image_editor") < names.index("GID_PT_interactive")
    assert names.index("GID_Poke") < names.index("GID_InteractiveSettings")
    assert [f.__name__.rsplit(".", 1)[1] for f in addon.features()] == list(addon.FEATURES)
