"""The live preview of the interactive dynamics: the scene's frame drawn into "GID Preview".

The simulation runs in scene frames from rest at frame 0 at the scene's frame rate
(``ModalSimulator`` with ``fps`` = scene fps), so the state at frame N depends only on the pokes
and settings, never on the frame the scene is on or the order frames were visited. Basis,
simulator, still and renderer are cached (``utils/caches.py``), so playing costs one simulation
step plus one proxy splat and one remap a frame, and scrubbing back restarts from the
simulator's nearest checkpoint. The frame renderer is the engine's (``utils/engines.py``), shared
with the bake. Errors never escape ``refresh_preview``: they become ``preview_status(scene)``,
shown in the panel.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any, Optional

import bpy
import numpy as np

from ...exporters.errors import ExportError
from ...gid_engine.dynamics.interactive import FieldRenderer, preview_size
from ...gid_engine.dynamics.modal import ModalBasis, ModalSimulator
from ...gid_engine.errors import GidError, InputError
from .. import blender_io as bio
from ..utils import engines
from ..utils.caches import PreviewCaches, basis_key, remember, simulator_key
from ..utils.errors import EmptyImageError, MotionMissingError, NoImageError
from ..utils.pixels import bottom_up, mask_from_pixels, still_from_pixels
from . import pokes

PREVIEW_NAME = "GID Preview"
PREVIEW_PROXY_FACTOR = 1.0  # the preview splats the field at the basis size only (see interactive.py)

caches = PreviewCaches()


def clear_caches() -> None:
    caches.clear()


def forget_inputs(scene: bpy.types.Scene) -> None:
    """Read the mask and the still again next time (painted or edited since) and redraw."""
    caches.last.pop(scene.name, None)
    caches.masks.clear()
    caches.renderers.clear()


def preview_status(scene: bpy.types.Scene) -> str:
    """What the live preview last did for ``scene`` (errors included), for the panel and tests."""
    return caches.status.get(scene.name, "")


def image_device(image: bpy.types.Image) -> str:
    """The device setting of ``image`` (its GID panel's), "auto" without one."""
    settings = getattr(image, "gid", None)
    return getattr(settings, "device", "AUTO").lower()


def get_splatter(device: str = "auto") -> Any:
    """The frame renderer the preview and the bake use: the engine's for ``device``."""
    return engines.engine(device).frame_renderer("splat")


def image_identity(image: bpy.types.Image) -> tuple:
    return (image.name, image.filepath, image.source, tuple(image.size[:]), image.is_float,
            image.colorspace_settings.name, tuple(image.generated_color[:]) if image.source == "GENERATED" else ())


def mask_array(image: bpy.types.Image) -> np.ndarray:
    """A mask image as ``(H, W)`` float32 in [0, 1], top row first (``utils.pixels.mask_from_pixels``)."""
    width, height = image.size[:]
    if width * height == 0:
        raise InputError(f"mask image {image.name!r} has no pixels")
    return mask_from_pixels(bio.read_pixels(image), name=f"mask {image.name}")


def mask_key(image: Optional[bpy.types.Image]) -> tuple[tuple, Optional[np.ndarray]]:
    """A key that changes when the mask's content does, and the mask array.

    A clean mask (not painted since it was loaded or saved) is keyed by its identity; one being
    painted (``is_dirty``) is read each time and keyed by a checksum of its pixels.
    """
    if image is None:
        return (), None
    return caches.mask(image.name, image_identity(image), image.is_dirty, lambda: mask_array(image))


def motion_path(settings: bpy.types.PropertyGroup, image: bpy.types.Image) -> Path:
    """The spectral volume: the override, else the image's ``gid.motion_path``; must exist."""
    if settings.motion_path:
        path = bio.abspath(settings.motion_path)
        if not path.is_file():
            raise MotionMissingError(f"motion file not found: {path}")
        return path
    if not hasattr(image, "gid"):
        raise MotionMissingError("no motion: set a Motion Override file (the GID add-on core is not loaded)")
    return bio.motion_file(image.gid)


def get_simulator(scene: bpy.types.Scene, image: Optional[bpy.types.Image] = None) -> tuple[tuple, ModalSimulator]:
    """The cached simulator of ``scene``'s settings: ``(key, simulator)``; raises ``GidError``.

    The key starts with the basis key (``key[0]``): motion file, mask content and modes.
    """
    from ...gid_engine.motion.sv_file import load_spectral_volume

    settings = scene.gid_interactive
    image = image or settings.source_image
    if image is None:
        raise NoImageError("choose the image to poke (Image in the GID Interactive panel)")
    path = motion_path(settings, image)
    stat = path.stat()
    mkey, mask = mask_key(settings.mask_image)
    freq = settings.frequencies
    bkey = basis_key(str(path), stat.st_mtime_ns, stat.st_size, mkey, freq, settings.num_peaks)
    basis = caches.bases.get(bkey)
    if basis is None:
        sv = load_spectral_volume(path)
        basis = ModalBasis.from_spectral_volume(sv, frequencies=freq.lower(), num_peaks=settings.num_peaks, mask=mask)
        remember(caches.bases, bkey, basis)
    fps = bio.scene_fps(scene)
    sim_key = simulator_key(bkey, settings.damping, settings.stiffness_scale, settings.mass_scale, fps)
    sim = caches.simulators.get(sim_key)
    if sim is None:
        sim = ModalSimulator(basis, damping=settings.damping, stiffness_scale=settings.stiffness_scale,
                             mass_scale=settings.mass_scale, fps=fps, checkpoint_every=10)
        remember(caches.simulators, sim_key, sim)
    return sim_key, sim


def still_pixels(image: bpy.types.Image, width: int, height: int) -> np.ndarray:
    """The source image at ``width x height`` as (H, W, 4) float32 *linear* values, top row first.

    Blender treats float buffers as scene-linear, so byte images stored as sRGB are decoded.
    """
    srgb = not image.is_float and image.colorspace_settings.name.lower().startswith("srgb")
    return still_from_pixels(bio.read_pixels(image), width, height, srgb)


def get_renderer(scene: bpy.types.Scene, image: bpy.types.Image, sim_key: tuple,
                 sim: ModalSimulator) -> tuple[tuple, FieldRenderer]:
    settings = scene.gid_interactive
    w, h = image.size[:]
    if w * h == 0:
        raise EmptyImageError(f"image {image.name!r} has no pixels")
    size = preview_size(w, h, settings.preview_max_side)
    key = (sim_key[0], image_identity(image), size)
    hit = caches.renderers.get(key)
    if hit is None:
        hit = FieldRenderer(still_pixels(image, *size), sim.basis, get_splatter(image_device(image)), "auto",
                            proxy_factor=PREVIEW_PROXY_FACTOR, fit="check")
        remember(caches.renderers, key, hit)
    return key, hit


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
    image.pixels.foreach_set(bottom_up(frame, image.channels))
    image.update()


def render_preview(scene: bpy.types.Scene, frame: Optional[float] = None) -> Optional[bpy.types.Image]:
    """Draw ``frame`` (default: the scene's current frame) into the preview image; raises GidError."""
    settings = scene.gid_interactive
    image = settings.source_image
    sim_key, sim = get_simulator(scene, image)
    renderer_key, renderer = get_renderer(scene, image, sim_key, sim)
    found = pokes.read_pokes(scene)
    t = float(scene.frame_current_final if frame is None else frame)
    target = preview_image(scene, renderer.width, renderer.height)
    stamp = (sim_key, renderer_key, found, t, target.name)
    if caches.last.get(scene.name) == stamp:
        return target
    write_pixels(target, renderer.frame(sim, t, found))
    caches.last[scene.name] = stamp
    caches.status[scene.name] = f"Frame {t:g}: {len(found)} poke(s), {sim.basis.num_modes} modes"
    tag_redraw()
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
        caches.status[scene.name] = f"Error: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}"
    except Exception as exc:
        traceback.print_exc()
        caches.status[getattr(scene, "name", "")] = f"Error: internal ({type(exc).__name__}: {exc})"
    return False


def tag_redraw() -> None:
    """Redraw the Image Editors (none in background mode)."""
    if bpy.app.background:
        return
    wm = bpy.context.window_manager
    for window in wm.windows if wm is not None else ():
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.tag_redraw()
