"""The interactive dynamics' data, saved with the .blend.

* ``Scene.gid_pokes`` (``GID_Poke`` items) and ``Scene.gid_poke_index``: forces on the source
  image. ``position``/``direction`` are UV-like, Blender's convention (x right, y UP, [0, 1]);
  the engine's image convention (y down) is ``y = 1 - v``, ``dy = -dv``. ``frame`` is a scene
  frame; ``duration`` 0 is an impulse, > 0 a drag held that many frames. Every value except
  ``frame`` is animatable (keyframes on the scene's action, data paths ``gid_pokes[i].strength``).
* ``Scene.gid_interactive`` (``GID_InteractiveSettings``): source image (whose ``gid.motion_path``
  holds the spectral volume), physics (damping ratio, stiffness, mass, which modes), the motion
  mask image (paint it in Texture Paint), preview and bake options and results.

Changing any of them redraws the live preview (``preview.refresh_preview``), except while
``pokes.batch()`` sets several values at once.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    FloatVectorProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from ...gid_engine.dynamics.interactive import DEFAULT_PREVIEW_SIDE
from ...gid_engine.dynamics.modal import DEFAULT_DAMPING
from ..props import PATH_OPTIONS
from . import pokes, preview


def _poke_changed(self: Any, context: Any) -> None:
    if not pokes.updates_suspended():
        preview.refresh_preview(self.id_data)


def _settings_changed(self: Any, context: Any) -> None:
    if not pokes.updates_suspended():
        preview.refresh_preview(self.id_data)


class GID_Poke(bpy.types.PropertyGroup):
    """One force on the image, keyed to a scene frame (``Scene.gid_pokes``)."""

    frame: IntProperty(name="Frame", default=1, options=set(), update=_poke_changed,
                       description="Scene frame at which the poke acts")  # type: ignore[valid-type]
    position: FloatVectorProperty(name="Position", size=2, subtype="XYZ", default=(0.5, 0.5), soft_min=0.0,
                                  soft_max=1.0, precision=3, update=_poke_changed,
                                  description="Where the poke hits, as UV (0,0 bottom left, 1,1 top right)"
                                  )  # type: ignore[valid-type]
    direction: FloatVectorProperty(name="Direction", size=2, subtype="XYZ", default=(1.0, 0.0), precision=3,
                                   update=_poke_changed,
                                   description="Direction of the push (x right, y up); its length does not matter"
                                   )  # type: ignore[valid-type]
    strength: FloatProperty(name="Strength", default=3.0, soft_min=-20.0, soft_max=20.0, update=_poke_changed,
                            description="How far the dominant mode swings, in pixels of the motion "
                                        "(negative pushes the other way)")  # type: ignore[valid-type]
    radius: FloatProperty(name="Radius", default=0.05, min=0.0, soft_max=0.5, precision=3, update=_poke_changed,
                          description="Size of the poke (Gaussian sigma) as a fraction of the image width; "
                                      "0 = a point")  # type: ignore[valid-type]
    duration: FloatProperty(name="Duration", default=0.0, min=0.0, soft_max=250.0, update=_poke_changed,
                            description="Frames the force is held (a drag); 0 = an impulse")  # type: ignore[valid-type]
    enabled: BoolProperty(name="Enabled", default=True, update=_poke_changed,
                          description="Whether the poke acts")  # type: ignore[valid-type]


FREQUENCY_MODES = [
    ("ALL", "All", "Every frequency bin of the motion is a mode"),
    ("PEAKS", "Peaks", "Only the most powerful frequency bins are modes"),
]


class GID_InteractiveSettings(bpy.types.PropertyGroup):
    """Interactive dynamics of one scene (``Scene.gid_interactive``)."""

    source_image: PointerProperty(name="Image", type=bpy.types.Image, update=_settings_changed,
                                  description="The still to poke; its GID motion file drives the dynamics"
                                  )  # type: ignore[valid-type]
    motion_path: StringProperty(name="Motion Override", subtype="FILE_PATH", default="", options=PATH_OPTIONS,
                                update=_settings_changed,
                                description="A spectral volume (.gidsv) to use instead of the image's "
                                            "motion; empty = the image's")  # type: ignore[valid-type]
    damping: FloatProperty(name="Damping", default=DEFAULT_DAMPING, min=0.0, soft_max=1.0, max=100.0, precision=3,
                           update=_settings_changed,
                           description="Damping ratio of every mode (0 rings forever, 1 critical)"
                           )  # type: ignore[valid-type]
    stiffness_scale: FloatProperty(name="Stiffness", default=1.0, min=1e-4, soft_max=10.0, max=1e4,
                                   update=_settings_changed,
                                   description="Scales the stiffness: higher swings faster and less far"
                                   )  # type: ignore[valid-type]
    mass_scale: FloatProperty(name="Mass", default=1.0, min=1e-4, soft_max=10.0, max=1e4, update=_settings_changed,
                              description="Scales the mass: heavier moves less for the same poke"
                              )  # type: ignore[valid-type]
    frequencies: EnumProperty(name="Modes", items=FREQUENCY_MODES, default="ALL", update=_settings_changed,
                              description="Which frequency bins of the motion become modes")  # type: ignore[valid-type]
    num_peaks: IntProperty(name="Peaks", default=4, min=1, max=64, update=_settings_changed,
                           description="How many of the most powerful bins to use")  # type: ignore[valid-type]
    mask_image: PointerProperty(name="Mask", type=bpy.types.Image, update=_settings_changed,
                                description="Motion mask: white moves, black stays still (alpha if the image "
                                            "has transparency, else brightness); paint it in Texture Paint"
                                )  # type: ignore[valid-type]
    preview_enabled: BoolProperty(name="Live Preview", default=True, update=_settings_changed,
                                  description="Show the simulation in the 'GID Preview' image as frames change"
                                  )  # type: ignore[valid-type]
    preview_max_side: IntProperty(name="Preview Size", default=DEFAULT_PREVIEW_SIDE, min=16, max=8192,
                                  update=_settings_changed,
                                  description="Longest side of the preview image in pixels")  # type: ignore[valid-type]
    preview_image: PointerProperty(name="Preview", type=bpy.types.Image,
                                   description="The image the live preview is drawn into")  # type: ignore[valid-type]
    show_overlay: BoolProperty(name="Show Pokes", default=True,
                               description="Draw the pokes as arrows in the Image Editor")  # type: ignore[valid-type]
    bake_images: BoolProperty(name="Images", default=True,
                              description="Bake a PNG sequence of the poked image")  # type: ignore[valid-type]
    bake_displacement: BoolProperty(name="Displacement Maps", default=False,
                                    description="Bake displacement maps (raw pixels and Displace-node vectors)"
                                    )  # type: ignore[valid-type]
    baked_image: PointerProperty(name="Baked", type=bpy.types.Image,
                                 description="The baked interaction (an image sequence)")  # type: ignore[valid-type]
    baked_frames: IntProperty(name="Baked Frames", default=0, min=0)  # type: ignore[valid-type]
    baked_start: IntProperty(name="Baked Start", default=1)  # type: ignore[valid-type]
    baked_displacement_image: PointerProperty(name="Baked Displacement", type=bpy.types.Image,
                                              description="The baked Displace-node maps (Non-Color sequence)"
                                              )  # type: ignore[valid-type]
    baked_displacement_scale: FloatProperty(name="Displace Scale", default=0.0, min=0.0)  # type: ignore[valid-type]


CLASSES: list[type] = [GID_Poke, GID_InteractiveSettings]


def register() -> None:
    """Attach ``Scene.gid_pokes``, ``Scene.gid_poke_index`` and ``Scene.gid_interactive``."""
    bpy.types.Scene.gid_pokes = CollectionProperty(type=GID_Poke)
    bpy.types.Scene.gid_poke_index = IntProperty(name="Active Poke", default=0, min=0)
    bpy.types.Scene.gid_interactive = PointerProperty(type=GID_InteractiveSettings)


def unregister() -> None:
    for attr in ("gid_interactive", "gid_poke_index", "gid_pokes"):
        if hasattr(bpy.types.Scene, attr):
            delattr(bpy.types.Scene, attr)
