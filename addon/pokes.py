"""Interactive dynamics in Blender: pokes keyframed on the timeline, a live preview, a bake.

Data (all saved with the .blend):

* ``Scene.gid_pokes`` (``GID_Poke`` items) and ``Scene.gid_poke_index``: forces on the source
  image. ``position``/``direction`` are UV-like, Blender's convention (x right, y UP, [0, 1]);
  the engine's image convention (y down) is ``y = 1 - v``, ``dy = -dv``. ``frame`` is a scene
  frame; ``duration`` 0 is an impulse, > 0 a drag held that many frames. Every value except
  ``frame`` is animatable (keyframes on the scene's action, data paths ``gid_pokes[i].strength``).
* ``Scene.gid_interactive`` (``GID_InteractiveSettings``): source image (whose ``gid.motion_path``
  holds the spectral volume), physics (damping ratio, stiffness, mass, which modes), the motion
  mask image (paint it in Texture Paint), preview and bake options and results.

Evaluation: the simulation runs in scene frames from rest at frame 0 at the scene's frame rate
(``ModalSimulator`` with ``fps`` = scene fps), so the state at frame N depends only on the pokes
and settings, never on the frame the scene is on or the order frames were visited. An animated
value is read from its F-curve *at the time the poke acts* (an impulse at its frame; a drag at
the start of each frame it covers, piecewise constant), not from the current RNA value.

Preview: a ``@persistent`` ``frame_change_post`` handler renders the scene's frame into the float
image "GID Preview" (long side capped by ``preview_max_side``). Basis, simulator, still and
renderer are cached per (motion file + mtime, mask content, modes) / (physics, fps) / (image,
size), so playing costs one simulation step plus one proxy splat and one remap a frame, and
scrubbing back restarts from the simulator's nearest checkpoint. Errors never escape the
handler: they become ``preview_status(scene)``, shown in the panel.
"""

from __future__ import annotations

import atexit
import math
import re
import traceback
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any, Optional

import bpy
import numpy as np
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

from . import blender_io as bio
from . import nodes, ops
from .props import PATH_OPTIONS
from ..exporters.colors import srgb_to_linear
from ..exporters.errors import ExportError
from ..gid_engine.errors import GidError, InputError
from ..gid_engine.dynamics.interactive import (
    DEFAULT_PREVIEW_SIDE,
    DISPLACEMENT_PREFIX,
    FRAME_PREFIX,
    FieldRenderer,
    bake_to_dir,
    preview_size,
)
from ..gid_engine.motion.masks import as_mask_array
from ..gid_engine.dynamics.modal import DEFAULT_DAMPING, ModalBasis, ModalSimulator, Poke
from ..gid_engine.progress import Job

PREVIEW_NAME = "GID Preview"
MASK_NAME = "GID Mask"
INTERACTIVE_SUBDIR = "interactive"
PREVIEW_PROXY_FACTOR = 1.0  # the preview splats the field at the basis size only (see interactive.py)
ANIMATED_FIELDS = ("position", "direction", "strength", "radius", "duration", "enabled")
_PATH = re.compile(r"^gid_pokes\[(\d+)\]\.(\w+)$")
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


# ======================================================================================= data
_suspended = [0]  # > 0 while add_poke sets several values: one preview update at the end, not six


def _poke_changed(self: Any, context: Any) -> None:
    if not _suspended[0]:
        refresh_preview(self.id_data)


def _settings_changed(self: Any, context: Any) -> None:
    if not _suspended[0]:
        refresh_preview(self.id_data)


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


# ======================================================================================= pokes
def scene_fps(scene: bpy.types.Scene) -> float:
    return scene.render.fps / (scene.render.fps_base or 1.0)


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
    out: dict[int, dict[tuple[str, int], Any]] = {}
    fcurves = scene_fcurves(scene)
    for fc in fcurves if fcurves is not None else ():
        m = _PATH.match(fc.data_path)
        if m is not None and not fc.mute:
            out.setdefault(int(m.group(1)), {})[(m.group(2), fc.array_index)] = fc
    return out


def poke_values(poke: GID_Poke, curves: dict[tuple[str, int], Any], frame: float) -> dict[str, Any]:
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


def to_engine_poke(frame: float, values: dict[str, Any], duration: Optional[float] = None) -> Optional[Poke]:
    """Blender values (UV, y up) -> an engine ``Poke`` (y down); None if it does nothing."""
    (u, v), (du, dv) = values["position"], values["direction"]
    if not values["enabled"] or (du == 0.0 and dv == 0.0):
        return None
    return Poke(frame=frame, x=u, y=1.0 - v, dx=du, dy=-dv, strength=values["strength"], radius=values["radius"],
                duration=values["duration"] if duration is None else duration)


def read_pokes(scene: bpy.types.Scene) -> tuple[Poke, ...]:
    """The scene's pokes as engine ``Poke``s, independent of the scene's current frame.

    An impulse takes its values at its own frame. A drag with animated values becomes one
    1-frame drag per frame it covers, each with the values at that frame's start (so a keyed
    position moves the grip, a keyed strength ramps the force); unanimated, it stays one drag.
    """
    curves = poke_curves(scene)
    out: list[Poke] = []
    for i, item in enumerate(scene.gid_pokes):
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


def add_poke(scene: bpy.types.Scene, frame: int, position: tuple[float, float], direction: tuple[float, float],
             strength: float = 3.0, radius: float = 0.05, duration: float = 0.0) -> GID_Poke:
    """Append a poke to the scene and make it the active one (the caller refreshes the preview)."""
    _suspended[0] += 1
    try:
        item = scene.gid_pokes.add()
        item.frame = int(frame)
        item.position = position
        item.direction = direction
        item.strength = strength
        item.radius = radius
        item.duration = duration
        scene.gid_poke_index = len(scene.gid_pokes) - 1
    finally:
        _suspended[0] -= 1
    return item


def remove_poke(scene: bpy.types.Scene, index: int) -> None:
    """Remove poke ``index`` and its F-curves; later pokes' F-curves move down with them."""
    fcurves = scene_fcurves(scene)
    if fcurves is not None:
        moved = []
        for fc in list(fcurves):
            m = _PATH.match(fc.data_path)
            if m is None:
                continue
            i = int(m.group(1))
            if i == index:
                fcurves.remove(fc)
            elif i > index:
                moved.append((i, fc, m.group(2)))
        for i, fc, name in sorted(moved, key=lambda x: x[0]):
            fc.data_path = f"gid_pokes[{i - 1}].{name}"
    scene.gid_pokes.remove(index)
    scene.gid_poke_index = min(max(0, scene.gid_poke_index), max(0, len(scene.gid_pokes) - 1))


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


# ======================================================================================= caches
class _Cache:
    """Module-level caches (plain values and numpy only: undo and file loads cannot stale them)."""

    def __init__(self) -> None:
        self.bases: OrderedDict[tuple, ModalBasis] = OrderedDict()
        self.simulators: OrderedDict[tuple, ModalSimulator] = OrderedDict()
        self.renderers: OrderedDict[tuple, FieldRenderer] = OrderedDict()
        self.splatters: dict[str, Any] = {}
        self.masks: dict[str, tuple[tuple, int, np.ndarray]] = {}
        self.status: dict[str, str] = {}
        self.last: dict[str, tuple] = {}

    def clear(self) -> None:
        self.__init__()


_cache = _Cache()
_MAX_ENTRIES = 3


def _remember(store: OrderedDict, key: tuple, value: Any) -> Any:
    store[key] = value
    store.move_to_end(key)
    while len(store) > _MAX_ENTRIES:
        store.popitem(last=False)
    return value


def clear_caches() -> None:
    _cache.clear()


def preview_status(scene: bpy.types.Scene) -> str:
    """What the live preview last did for ``scene`` (errors included), for the panel and tests."""
    return _cache.status.get(scene.name, "")


def get_splatter(device: str = "auto") -> Any:
    from ..gid_engine.rendering.render import make_splatter

    device = device.lower()
    hit = _cache.splatters.get(device)
    if hit is None:
        hit = _cache.splatters[device] = make_splatter("onnx", device)
    return hit


def _image_identity(image: bpy.types.Image) -> tuple:
    return (image.name, image.filepath, image.source, tuple(image.size[:]), image.is_float,
            image.colorspace_settings.name, tuple(image.generated_color[:]) if image.source == "GENERATED" else ())


def mask_array(image: bpy.types.Image) -> np.ndarray:
    """A mask image as ``(H, W)`` float32 in [0, 1], top row first: its alpha where it has
    transparency, else the luminance of its stored values (as ``masks.load_mask``)."""
    width, height = image.size[:]
    if width * height == 0:
        raise InputError(f"mask image {image.name!r} has no pixels")
    px = bio.read_pixels(image)
    if px.shape[2] == 4 and float(px[:, :, 3].min()) < 1.0:
        m = px[:, :, 3]
    else:
        m = px[:, :, :3] @ _LUMA if px.shape[2] >= 3 else px[:, :, 0]
    return as_mask_array(np.clip(m, 0.0, 1.0), name=f"mask {image.name}")


def _mask_key(image: Optional[bpy.types.Image]) -> tuple[tuple, Optional[np.ndarray]]:
    """A key that changes when the mask's content does, and the mask array.

    A clean mask (not painted since it was loaded or saved) is keyed by its identity; one being
    painted (``is_dirty``) is read each time and keyed by a checksum of its pixels.
    """
    if image is None:
        return (), None
    ident = _image_identity(image)
    cached = _cache.masks.get(image.name)
    if cached is not None and cached[0] == ident and not image.is_dirty:
        return ident + (cached[1],), cached[2]
    m = mask_array(image)
    crc = zlib.crc32(np.ascontiguousarray(m).view(np.uint8))
    _cache.masks[image.name] = (ident, crc, m)
    return ident + (crc,), m


def motion_path(settings: GID_InteractiveSettings, image: bpy.types.Image) -> Path:
    """The spectral volume: the override, else the image's ``gid.motion_path``; must exist."""
    if settings.motion_path:
        path = bio.abspath(settings.motion_path)
        if not path.is_file():
            raise bio.MotionMissingError(f"motion file not found: {path}")
        return path
    if not hasattr(image, "gid"):
        raise bio.MotionMissingError("no motion: set a Motion Override file (the GID add-on core is not loaded)")
    return bio.motion_file(image.gid)


def get_simulator(scene: bpy.types.Scene, image: Optional[bpy.types.Image] = None) -> tuple[tuple, ModalSimulator]:
    """The cached simulator of ``scene``'s settings: ``(key, simulator)``; raises ``GidError``.

    The key starts with the basis key (``key[0]``): motion file, mask content and modes.
    """
    from ..gid_engine.motion.sv_file import load_spectral_volume

    settings = scene.gid_interactive
    image = image or settings.source_image
    if image is None:
        raise bio.NoImageError("choose the image to poke (Image in the GID Interactive panel)")
    path = motion_path(settings, image)
    stat = path.stat()
    mkey, mask = _mask_key(settings.mask_image)
    freq = settings.frequencies
    basis_key = (str(path), stat.st_mtime_ns, stat.st_size, mkey, freq, settings.num_peaks if freq == "PEAKS" else 0)
    basis = _cache.bases.get(basis_key)
    if basis is None:
        sv = load_spectral_volume(path)
        basis = ModalBasis.from_spectral_volume(sv, frequencies=freq.lower(), num_peaks=settings.num_peaks, mask=mask)
        _remember(_cache.bases, basis_key, basis)
    sim_key = (basis_key, round(settings.damping, 9), round(settings.stiffness_scale, 9),
                           round(settings.mass_scale, 9), round(scene_fps(scene), 9))
    sim = _cache.simulators.get(sim_key)
    if sim is None:
        sim = ModalSimulator(basis, damping=settings.damping, stiffness_scale=settings.stiffness_scale,
                             mass_scale=settings.mass_scale, fps=scene_fps(scene), checkpoint_every=10)
        _remember(_cache.simulators, sim_key, sim)
    return sim_key, sim


def still_pixels(image: bpy.types.Image, width: int, height: int) -> np.ndarray:
    """The source image at ``width x height`` as (H, W, 4) float32 *linear* values, top row first.

    Blender treats float buffers as scene-linear, so byte images stored as sRGB are decoded.
    """
    from ..exporters.opencv import cv2

    px = bio.read_pixels(image)
    if px.shape[2] != 4:
        alpha = np.ones(px.shape[:2] + (1,), np.float32)
        px = np.concatenate([px[:, :, :3] if px.shape[2] >= 3 else np.repeat(px[:, :, :1], 3, 2), alpha], axis=2)
    if (px.shape[1], px.shape[0]) != (width, height):
        interp = cv2.INTER_AREA if width <= px.shape[1] else cv2.INTER_LINEAR
        px = cv2.resize(px, (width, height), interpolation=interp)
    if not image.is_float and image.colorspace_settings.name.lower().startswith("srgb"):
        px = srgb_to_linear(px, has_alpha=True)
    return np.ascontiguousarray(px, dtype=np.float32)


def get_renderer(scene: bpy.types.Scene, image: bpy.types.Image, sim_key: tuple,
                 sim: ModalSimulator) -> tuple[tuple, FieldRenderer]:
    settings = scene.gid_interactive
    w, h = image.size[:]
    if w * h == 0:
        raise bio.EmptyImageError(f"image {image.name!r} has no pixels")
    size = preview_size(w, h, settings.preview_max_side)
    key = (sim_key[0], _image_identity(image), size)
    hit = _cache.renderers.get(key)
    if hit is None:
        hit = FieldRenderer(still_pixels(image, *size), sim.basis, get_splatter(_device(image)), "auto",
                            proxy_factor=PREVIEW_PROXY_FACTOR, fit="check")
        _remember(_cache.renderers, key, hit)
    return key, hit


def _device(image: bpy.types.Image) -> str:
    settings = getattr(image, "gid", None)
    return getattr(settings, "device", "AUTO").lower()


# ======================================================================================= preview
def preview_image(scene: bpy.types.Scene, width: int, height: int) -> bpy.types.Image:
    """The scene's preview image (float, ``width x height``), created or resized as needed."""
    settings = scene.gid_interactive
    image = settings.preview_image
    if image is None:
        image = bpy.data.images.new(PREVIEW_NAME, width, height, alpha=True, float_buffer=True)
        settings.preview_image = image
    elif tuple(image.size[:]) != (width, height):
        image.scale(width, height)
    return image


def write_pixels(image: bpy.types.Image, frame: np.ndarray) -> None:
    """(H, W, C) top-down pixels -> the image (Blender stores rows bottom-up, RGBA)."""
    if frame.shape[2] != image.channels:
        alpha = np.ones(frame.shape[:2] + (1,), np.float32)
        frame = np.concatenate([frame[:, :, :3], alpha], axis=2)[:, :, : image.channels]
    image.pixels.foreach_set(np.ascontiguousarray(frame[::-1], dtype=np.float32).ravel())
    image.update()


def render_preview(scene: bpy.types.Scene, frame: Optional[float] = None) -> Optional[bpy.types.Image]:
    """Draw ``frame`` (default: the scene's current frame) into the preview image; raises GidError."""
    settings = scene.gid_interactive
    image = settings.source_image
    sim_key, sim = get_simulator(scene, image)
    renderer_key, renderer = get_renderer(scene, image, sim_key, sim)
    pokes = read_pokes(scene)
    t = float(scene.frame_current_final if frame is None else frame)
    target = preview_image(scene, renderer.width, renderer.height)
    stamp = (sim_key, renderer_key, pokes, t, target.name)
    if _cache.last.get(scene.name) == stamp:
        return target
    write_pixels(target, renderer.frame(sim, t, pokes))
    _cache.last[scene.name] = stamp
    _cache.status[scene.name] = f"Frame {t:g}: {len(pokes)} poke(s), {sim.basis.num_modes} modes"
    _tag_redraw()
    return target


def refresh_preview(scene: Any) -> bool:
    """Update the preview of ``scene`` if it is on; never raises (the status says what failed)."""
    try:
        if not isinstance(scene, bpy.types.Scene) or not hasattr(scene, "gid_interactive"):
            return False
        if not scene.gid_interactive.preview_enabled:
            return False
        if bpy.app.is_job_running("RENDER"):
            return False  # frames of a render: the preview image is not part of it
        render_preview(scene)
        return True
    except (GidError, ExportError) as exc:
        _cache.status[scene.name] = f"Error: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}"
    except Exception as exc:
        traceback.print_exc()
        _cache.status[getattr(scene, "name", "")] = f"Error: internal ({type(exc).__name__}: {exc})"
    return False


def _tag_redraw() -> None:
    if bpy.app.background:
        return
    wm = bpy.context.window_manager
    for window in wm.windows if wm is not None else ():
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.tag_redraw()


@bpy.app.handlers.persistent
def on_frame_change_post(scene: Any, *_args: Any) -> None:
    refresh_preview(scene)


@bpy.app.handlers.persistent
def on_load_post(*_args: Any) -> None:
    """A new file: drop every cache (names may now mean other data) and redraw its previews."""
    clear_caches()
    for scene in bpy.data.scenes:
        refresh_preview(scene)


@bpy.app.handlers.persistent
def on_save_pre(filepath: Optional[str] = None, *_args: Any) -> None:
    """"Save As" elsewhere: keep the motion override's ``//`` path pointing at the same file
    (Blender remaps its own datablocks' paths, not add-on properties)."""
    from .handlers import remap_relative, save_as_dirs

    dirs = save_as_dirs(filepath)
    if dirs is None:
        return
    old_dir, new_dir = dirs
    for scene in bpy.data.scenes:
        settings = getattr(scene, "gid_interactive", None)
        if settings is not None and settings.motion_path:
            remapped = remap_relative(settings.motion_path, old_dir, new_dir)
            if remapped != settings.motion_path:
                _suspended[0] += 1
                try:
                    settings.motion_path = remapped
                finally:
                    _suspended[0] -= 1


@bpy.app.handlers.persistent
def on_undo_redo(*_args: Any) -> None:
    """Undo/redo can add or remove pokes and reset the preview image: draw it again."""
    _cache.last.clear()
    for scene in bpy.data.scenes:
        refresh_preview(scene)


HANDLERS = [("frame_change_post", on_frame_change_post), ("load_post", on_load_post), ("save_pre", on_save_pre),
            ("undo_post", on_undo_redo), ("redo_post", on_undo_redo)]


# ======================================================================================= overlay
_draw_handles: list[Any] = []
_drag: dict[str, Any] = {}  # the drag in progress: region pointer, start and end in region pixels


def _arrow_lines(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
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


def _draw_lines(lines: list[tuple[float, float]], color: tuple[float, float, float, float], width: float) -> None:
    import gpu
    from gpu_extras.batch import batch_for_shader

    try:  # wide lines on every GPU backend (OpenGL, Metal, Vulkan)
        shader = gpu.shader.from_builtin("POLYLINE_UNIFORM_COLOR")
        shader.uniform_float("viewportSize", gpu.state.viewport_get()[2:])
        shader.uniform_float("lineWidth", width)
    except (ValueError, AttributeError):
        shader = gpu.shader.from_builtin("UNIFORM_COLOR")
        gpu.state.line_width_set(width)
    batch = batch_for_shader(shader, "LINES", {"pos": lines})
    gpu.state.blend_set("ALPHA")
    shader.uniform_float("color", color)
    batch.draw(shader)
    gpu.state.line_width_set(1.0)
    gpu.state.blend_set("NONE")


def draw_overlay() -> None:
    """Image Editor overlay: the drag being made, and the scene's pokes (active ones bright)."""
    if bpy.app.background:
        return
    try:
        context = bpy.context
        region, space, scene = context.region, context.space_data, context.scene
        if region is None or space is None or scene is None:
            return
        if _drag.get("region") == region.as_pointer() and _drag.get("start") is not None:
            (x0, y0), (x1, y1) = _drag["start"], _drag["end"]
            _draw_lines(_arrow_lines(x0, y0, x1, y1), (1.0, 0.55, 0.1, 1.0), 3.0)
        settings = getattr(scene, "gid_interactive", None)
        if settings is None or not settings.show_overlay or space.image is None:
            return
        if space.image not in (settings.source_image, settings.preview_image):
            return
        now = scene.frame_current_final
        bright, dim = [], []
        view = region.view2d
        for item in scene.gid_pokes:
            if not item.enabled:
                continue
            u, v = item.position
            du, dv = item.direction
            n = math.hypot(du, dv)
            if n == 0:
                continue
            x0, y0 = view.view_to_region(u, v, clip=False)
            length = 12.0 + 6.0 * min(abs(item.strength), 10.0)
            sign = 1.0 if item.strength >= 0 else -1.0
            lines = _arrow_lines(x0, y0, x0 + sign * length * du / n, y0 + sign * length * dv / n)
            active = item.frame <= now <= item.frame + max(item.duration, 3.0)
            (bright if active else dim).extend(lines)
        if dim:
            _draw_lines(dim, (1.0, 1.0, 1.0, 0.35), 1.5)
        if bright:
            _draw_lines(bright, (0.2, 0.9, 1.0, 1.0), 2.5)
    except Exception:
        pass


def _add_draw_handler() -> None:
    if not _draw_handles:
        _draw_handles.append(bpy.types.SpaceImageEditor.draw_handler_add(draw_overlay, (), "WINDOW", "POST_PIXEL"))


def _remove_draw_handlers() -> None:
    while _draw_handles:
        bpy.types.SpaceImageEditor.draw_handler_remove(_draw_handles.pop(), "WINDOW")


# ======================================================================================= operators
def _editor_image(context: bpy.types.Context) -> Optional[bpy.types.Image]:
    space = getattr(context, "space_data", None)
    return space.image if space is not None and getattr(space, "type", "") == "IMAGE_EDITOR" else None


def _ensure_source(context: bpy.types.Context) -> None:
    """Pokes made in an Image Editor showing a still make that still the source (if none yet)."""
    settings = context.scene.gid_interactive
    image = _editor_image(context)
    if settings.source_image is None and image is not None and image != settings.preview_image:
        settings.source_image = image


class GID_OT_add_poke(bpy.types.Operator):
    """Add a poke at the current frame"""

    bl_idname = "gid.add_poke"
    bl_label = "Add Poke"
    bl_options = {"REGISTER", "UNDO"}

    frame: IntProperty(name="Frame", default=1, options={"SKIP_SAVE"},
                       description="Scene frame (default: the current frame)")  # type: ignore[valid-type]
    position: FloatVectorProperty(name="Position", size=2, default=(0.5, 0.5), subtype="XYZ")  # type: ignore[valid-type]
    direction: FloatVectorProperty(name="Direction", size=2, default=(1.0, 0.0), subtype="XYZ")  # type: ignore[valid-type]
    strength: FloatProperty(name="Strength", default=3.0)  # type: ignore[valid-type]
    radius: FloatProperty(name="Radius", default=0.05, min=0.0)  # type: ignore[valid-type]
    duration: FloatProperty(name="Duration", default=0.0, min=0.0)  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        frame = self.frame if self.properties.is_property_set("frame") else scene.frame_current
        _ensure_source(context)
        add_poke(scene, frame, tuple(self.position), tuple(self.direction), self.strength, self.radius, self.duration)
        refresh_preview(scene)
        return {"FINISHED"}


class GID_OT_remove_poke(bpy.types.Operator):
    """Remove the active poke (and its keyframes)"""

    bl_idname = "gid.remove_poke"
    bl_label = "Remove Poke"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(name="Index", default=-1, options={"SKIP_SAVE"},
                       description="Which poke; -1 = the active one")  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        scene = getattr(context, "scene", None)
        return scene is not None and len(scene.gid_pokes) > 0

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        index = scene.gid_poke_index if self.index < 0 else self.index
        if not 0 <= index < len(scene.gid_pokes):
            self.report({"ERROR"}, f"there is no poke {index}")
            return {"CANCELLED"}
        remove_poke(scene, index)
        refresh_preview(scene)
        return {"FINISHED"}


class GID_OT_drag_poke(bpy.types.Operator):
    """Click on the image and drag to poke it at the current frame (Esc or right-click cancels)"""

    bl_idname = "gid.drag_poke"
    bl_label = "Drag Poke"
    bl_options = {"REGISTER", "UNDO"}

    sensitivity: FloatProperty(name="Sensitivity", default=0.1, min=1e-4, soft_max=1.0,
                               description="Poke strength per image pixel dragged")  # type: ignore[valid-type]
    radius: FloatProperty(name="Radius", default=0.05, min=0.0, soft_max=0.5)  # type: ignore[valid-type]
    duration: FloatProperty(name="Duration", default=0.0, min=0.0)  # type: ignore[valid-type]

    _region = None  # plain attributes (not annotations): the WINDOW region being dragged in

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        area = getattr(context, "area", None)
        return area is not None and area.type == "IMAGE_EDITOR"

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        region = next((r for r in context.area.regions if r.type == "WINDOW"), None)
        if region is None or _editor_image(context) is None:
            self.report({"ERROR"}, "open the image in this Image Editor first")
            return {"CANCELLED"}
        self._region = region
        _drag.clear()
        _drag.update(region=region.as_pointer(), start=None, end=None)
        _add_draw_handler()
        context.window_manager.modal_handler_add(self)
        context.area.header_text_set("Poke: click and drag on the image; Esc / right-click cancels")
        return {"RUNNING_MODAL"}

    def _mouse(self, event: bpy.types.Event) -> tuple[float, float]:
        return float(event.mouse_x - self._region.x), float(event.mouse_y - self._region.y)

    def _inside(self, x: float, y: float) -> bool:
        return 0 <= x < self._region.width and 0 <= y < self._region.height

    def _end(self, context: bpy.types.Context) -> None:
        _drag.clear()
        if context.area is not None:
            context.area.header_text_set(None)
            context.area.tag_redraw()

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type in {"ESC", "RIGHTMOUSE"} and event.value == "PRESS":
            self._end(context)
            return {"CANCELLED"}
        x, y = self._mouse(event)
        if event.type == "LEFTMOUSE" and event.value == "PRESS":
            if not self._inside(x, y):
                return {"PASS_THROUGH"}
            _drag["start"] = _drag["end"] = (x, y)
            context.area.tag_redraw()
            return {"RUNNING_MODAL"}
        if event.type == "MOUSEMOVE" and _drag.get("start") is not None:
            _drag["end"] = (x, y)
            context.area.tag_redraw()
            return {"RUNNING_MODAL"}
        if event.type == "LEFTMOUSE" and event.value == "RELEASE" and _drag.get("start") is not None:
            view = self._region.view2d
            start_uv = view.region_to_view(*_drag["start"])
            end_uv = view.region_to_view(x, y)
            _ensure_source(context)
            source = context.scene.gid_interactive.source_image or _editor_image(context)
            size = tuple(source.size[:]) if source is not None and 0 not in source.size[:] else (1, 1)
            poke = drag_to_poke(start_uv, end_uv, size, self.sensitivity)
            if poke is None:
                _drag["start"] = None
                self.report({"WARNING"}, "drag from where to poke in the direction to push")
                return {"RUNNING_MODAL"}
            position, direction, strength = poke
            scene = context.scene
            add_poke(scene, scene.frame_current, position, direction, strength, self.radius, self.duration)
            self._end(context)
            refresh_preview(scene)
            self.report({"INFO"}, f"Poke at frame {scene.frame_current}: strength {strength:.2f}")
            return {"FINISHED"}
        return {"PASS_THROUGH"}

    def cancel(self, context: bpy.types.Context) -> None:
        self._end(context)


class GID_OT_refresh_preview(bpy.types.Operator):
    """Recompute the interactive preview (after painting the mask or editing keyframes)"""

    bl_idname = "gid.refresh_preview"
    bl_label = "Refresh Preview"
    bl_options = {"REGISTER"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = context.scene
        _cache.last.pop(scene.name, None)
        _cache.masks.clear()  # re-read the mask and the still (painted or edited since)
        _cache.renderers.clear()
        if not refresh_preview(scene) and scene.gid_interactive.preview_enabled:
            self.report({"ERROR"}, preview_status(scene))
            return {"CANCELLED"}
        return {"FINISHED"}


class GID_OT_new_mask(bpy.types.Operator):
    """Make a white motion mask the size of the image, to paint black where nothing may move"""

    bl_idname = "gid.new_mask"
    bl_label = "New Mask"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.gid_interactive
        source = settings.source_image
        if source is None or 0 in source.size[:]:
            self.report({"ERROR"}, "choose the image to poke first")
            return {"CANCELLED"}
        w, h = source.size[:]
        mask = bpy.data.images.new(MASK_NAME, w, h, alpha=False)
        mask.generated_color = (1.0, 1.0, 1.0, 1.0)
        mask.colorspace_settings.name = nodes.colorspace_name(nodes.COLOR_DATA)
        settings.mask_image = mask
        return {"FINISHED"}


def prepare_bake(context: bpy.types.Context, image_name: str = "") -> ops.Task:
    """Frames ``frame_start..frame_end`` of the scene's interaction -> ``<output>/interactive/``."""
    from ..gid_engine.media.imaging import load_image

    scene = context.scene
    settings = scene.gid_interactive
    if image_name:
        image = bpy.data.images.get(image_name)
        if image is None:
            raise bio.NoImageError(f"there is no image named {image_name!r} in this .blend")
    else:
        image = settings.source_image
    if image is None:
        raise bio.NoImageError("choose the image to poke (Image in the GID Interactive panel)")
    if not (settings.bake_images or settings.bake_displacement):
        raise InputError("nothing to bake: tick Images and/or Displacement Maps")
    image_path = bio.check_source_image(image, bio.max_pixels(context))
    _, sim = get_simulator(scene, image)
    pokes = read_pokes(scene)
    start, end = scene.frame_start, scene.frame_end
    frames = list(range(start, end + 1))
    template = image.gid.output_dir if hasattr(image, "gid") else bio.DEFAULT_OUTPUT_DIR
    root = bio.resolve_output_dir(template, image.name, image_path)
    folder = root / INTERACTIVE_SUBDIR
    sets = []
    if settings.bake_images:
        sets.append((FRAME_PREFIX, "png"))
    if settings.bake_displacement:
        sets += [(DISPLACEMENT_PREFIX, "exr"), (f"{DISPLACEMENT_PREFIX}_node", "exr")]
    overwrite = any([ops.overwrite_policy(folder, prefix, ext) for prefix, ext in sets])
    previous = {prefix: bio.previous_frame_count(folder, prefix) for prefix, _ in sets}
    splatter = get_splatter(_device(image))
    want_images, want_disp = settings.bake_images, settings.bake_displacement
    ref = bio.SourceRef(image.name)
    scene_name = scene.name

    def run(job: Job) -> dict:
        return bake_to_dir(load_image(image_path), sim, pokes, frames, folder, splatter, images=want_images,
                           displacement=want_disp, overwrite=overwrite, job=job)

    def finish(context: bpy.types.Context, result: dict) -> list[ops.Report]:
        count = result["count"]
        for prefix, ext in sets:
            if previous.get(prefix, 0) > count:
                bio.remove_stale_frames(folder, prefix, ext, count, previous[prefix])
        target = bpy.data.scenes.get(scene_name) or context.scene
        s = target.gid_interactive
        reports: list[ops.Report] = []
        if want_images:
            first = folder / bio.frame_file_name(FRAME_PREFIX, 1, "png")
            s.baked_image = _load_or_reload(s.baked_image, first, count, f"GID interactive {image.name}", None)
            s.baked_frames, s.baked_start = count, start
            nodes.configure_users(s.baked_image, count, start=start, cyclic=False)
        if want_disp:
            first = folder / bio.frame_file_name(f"{DISPLACEMENT_PREFIX}_node", 1, "exr")
            s.baked_displacement_image = _load_or_reload(s.baked_displacement_image, first, count,
                                                         f"GID interactive displacement {image.name}",
                                                         nodes.COLOR_DATA)
            s.baked_displacement_scale = float(result["scale"])
            nodes.configure_users(s.baked_displacement_image, count, start=start, cyclic=False)
        verb = "Re-baked" if overwrite else "Baked"
        reports.append(("INFO", f"{verb} frames {start}-{end} ({count}) of the interaction into "
                                f"{bio.blender_relpath(folder)}"))
        return reports

    return ops.Task("Baking interaction", ref, bio.leave_no_trace(run, folder, claim=(root, image.name, image_path)),
                    finish)


def _load_or_reload(existing: Optional[bpy.types.Image], first: Path, count: int, name: str,
                    colorspace: Optional[str]) -> bpy.types.Image:
    if existing is not None and existing.source == "SEQUENCE" and existing.filepath \
            and bio.abspath(existing.filepath) == first:
        existing.reload()
        return existing
    return nodes.load_image_sequence(str(first), count, name, colorspace=colorspace, relative=True)


class GID_OT_bake_interaction(ops.GidJobOperator, bpy.types.Operator):
    """Bake the poked image over the scene's frame range (PNG sequence and/or displacement maps)"""

    bl_idname = "gid.bake_interaction"
    bl_label = "Bake Interaction"

    def prepare(self, context: bpy.types.Context) -> ops.Task:
        return prepare_bake(context, self.image)


# ======================================================================================= UI
class GID_UL_pokes(bpy.types.UIList):
    """The scene's pokes: on/off, frame, strength."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0, flt_flag=0):
        row = layout.row(align=True)
        row.prop(item, "enabled", text="")
        row.label(text=f"#{index + 1}  F{item.frame}" + (f"+{item.duration:g}" if item.duration else ""),
                  icon="FORCE_FORCE")
        row.prop(item, "strength", text="", emboss=False)


class GID_PT_interactive(bpy.types.Panel):
    """Pokes, physics, mask, preview and bake of the interactive dynamics."""

    bl_space_type = "IMAGE_EDITOR"
    bl_region_type = "UI"
    bl_category = "GID"
    bl_label = "GID Interactive"
    bl_idname = "GID_PT_interactive"
    bl_parent_id = "GID_PT_image_editor"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        scene = context.scene
        settings = scene.gid_interactive
        layout.prop(settings, "source_image")
        layout.prop(settings, "motion_path")

        box = layout.box()
        box.label(text="Pokes", icon="FORCE_FORCE")
        row = box.row()
        row.template_list("GID_UL_pokes", "", scene, "gid_pokes", scene, "gid_poke_index", rows=3)
        col = row.column(align=True)
        col.operator(GID_OT_add_poke.bl_idname, icon="ADD", text="")
        col.operator(GID_OT_remove_poke.bl_idname, icon="REMOVE", text="")
        box.operator(GID_OT_drag_poke.bl_idname, icon="MOUSE_LMB_DRAG")
        if 0 <= scene.gid_poke_index < len(scene.gid_pokes):
            item = scene.gid_pokes[scene.gid_poke_index]
            col = box.column(align=True)
            col.prop(item, "frame")
            col.prop(item, "position")
            col.prop(item, "direction")
            col.prop(item, "strength")
            col.prop(item, "radius")
            col.prop(item, "duration")

        box = layout.box()
        box.label(text="Physics", icon="PHYSICS")
        col = box.column(align=True)
        col.prop(settings, "damping")
        col.prop(settings, "stiffness_scale")
        col.prop(settings, "mass_scale")
        row = box.row(align=True)
        row.prop(settings, "frequencies", expand=True)
        if settings.frequencies == "PEAKS":
            box.prop(settings, "num_peaks")
        row = box.row(align=True)
        row.prop(settings, "mask_image")
        row.operator(GID_OT_new_mask.bl_idname, text="", icon="FILE_NEW")

        box = layout.box()
        row = box.row(align=True)
        row.prop(settings, "preview_enabled")
        row.prop(settings, "show_overlay")
        box.prop(settings, "preview_max_side")
        box.operator(GID_OT_refresh_preview.bl_idname, icon="FILE_REFRESH")
        status = preview_status(scene)
        if status:
            box.label(text=status, icon="ERROR" if status.startswith("Error") else "INFO")

        box = layout.box()
        row = box.row(align=True)
        row.prop(settings, "bake_images")
        row.prop(settings, "bake_displacement")
        busy = getattr(getattr(context.window_manager, "gid", None), "running", False)
        sub = box.column()
        sub.enabled = not busy
        sub.operator(GID_OT_bake_interaction.bl_idname, icon="RENDER_ANIMATION")
        if settings.baked_image is not None:
            box.label(text=f"{settings.baked_image.name} ({settings.baked_frames} frames from "
                           f"{settings.baked_start})", icon="SEQUENCE")


# ======================================================================================= register
CLASSES: list[type] = [
    GID_Poke,
    GID_InteractiveSettings,
    GID_OT_add_poke,
    GID_OT_remove_poke,
    GID_OT_drag_poke,
    GID_OT_refresh_preview,
    GID_OT_new_mask,
    GID_OT_bake_interaction,
    GID_UL_pokes,
    GID_PT_interactive,
]

_registered = False
_atexit_hooked = False


def register() -> None:
    """Classes, ``Scene.gid_pokes`` / ``gid_poke_index`` / ``gid_interactive``, handlers and the
    overlay. Call after the core's ``register()`` (the panel is a child of its GID panel)."""
    global _registered, _atexit_hooked
    if _registered:
        return
    if not _atexit_hooked:
        atexit.register(unregister)  # runs before the core's (registered earlier): LIFO
        _atexit_hooked = True
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.gid_pokes = CollectionProperty(type=GID_Poke)
    bpy.types.Scene.gid_poke_index = IntProperty(name="Active Poke", default=0, min=0)
    bpy.types.Scene.gid_interactive = PointerProperty(type=GID_InteractiveSettings)
    for name, fn in HANDLERS:
        handlers = getattr(bpy.app.handlers, name)
        if fn not in handlers:
            handlers.append(fn)
    _add_draw_handler()
    _registered = True


def unregister() -> None:
    global _registered
    if not _registered:
        return
    _remove_draw_handlers()
    _drag.clear()
    for name, fn in reversed(HANDLERS):
        handlers = getattr(bpy.app.handlers, name)
        while fn in handlers:
            handlers.remove(fn)
    for attr in ("gid_interactive", "gid_poke_index", "gid_pokes"):
        if hasattr(bpy.types.Scene, attr):
            delattr(bpy.types.Scene, attr)
    for cls in reversed(CLASSES):
        if getattr(cls, "is_registered", False):
            bpy.utils.unregister_class(cls)
    clear_caches()
    _registered = False


__all__ = ["CLASSES", "register", "unregister", "read_pokes", "render_preview", "refresh_preview",
           "preview_status", "get_simulator", "drag_to_poke", "add_poke", "remove_poke"]
