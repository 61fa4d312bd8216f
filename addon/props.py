"""Properties every feature shares: per-image settings (saved in the .blend) and per-session job
state (not saved). The interactive dynamics' own properties are in ``dynamics/props.py``.

Settings hang off the Image (``image.gid``) so they travel with it: appending the image into
another .blend brings its motion file and baked results along, and two backdrops in one scene
keep separate settings. What a running job shows (progress, message) lives on the
WindowManager, which Blender does not save, so a .blend never reopens "busy".
"""

from __future__ import annotations

from typing import Optional

import bpy
from bpy.props import (
    BoolProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from ..gid_engine.budget import DEFAULT_MEMORY_BUDGET_GIB
from ..gid_engine.media.imaging import MAX_IMAGE_PIXELS
from .utils.paths import DEFAULT_OUTPUT_DIR

MODES = [
    ("LOOP", "Loop", "Bake a seamless looping image sequence of the animated image"),
    ("DISPLACEMENT", "Displacement", "Bake per-frame displacement maps for the compositor's Displace node"),
    ("INTERACTIVE", "Interactive", "Interactive dynamics: keyframed pokes drive a modal simulation"),
]
DEVICES = [
    ("AUTO", "Auto", "Use the GPU when onnxruntime has one, else the CPU"),
    ("GPU", "GPU", "Ask for the GPU (falls back to the CPU with a message when there is none)"),
    ("CPU", "CPU", "Always use the CPU"),
]


def _path_options() -> set[str]:
    """``PATH_SUPPORTS_BLEND_RELATIVE`` where this Blender knows it: it declares that our path
    properties hold ``//`` paths. Blender 4.2 refuses the option when the class registers (not
    when the property is declared), so the test is whether RNA has the matching read-only flag
    ``Property.is_path_supports_blend_relative``, which exists exactly where the option does."""
    if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties:
        return {"PATH_SUPPORTS_BLEND_RELATIVE"}
    return set()


PATH_OPTIONS = _path_options()


class GID_ImageSettings(bpy.types.PropertyGroup):
    """What to do with one image, and what came out of it (``bpy.types.Image.gid``)."""

    mode: EnumProperty(name="Mode", items=MODES, default="LOOP",
                       description="What the motion is used for")  # type: ignore[valid-type]
    frames: IntProperty(name="Frames", default=0, min=0, soft_max=1000, max=100000,
                        description="Frames to bake; 0 = one full loop of the motion at this frame rate")  # type: ignore[valid-type]
    fps: FloatProperty(name="FPS", default=0.0, min=0.0, max=1000.0, precision=2,
                       description="Frame rate of the baked frames; 0 = the scene's frame rate")  # type: ignore[valid-type]
    amplitude: FloatProperty(name="Amplitude", default=1.0, min=0.0, soft_max=4.0, max=100.0,
                             description="Scales how far pixels move")  # type: ignore[valid-type]
    slowmo: FloatProperty(name="Slow Motion", default=1.0, min=0.01, max=100.0,
                          description="Plays the motion slower (2 = half speed); loops still close")  # type: ignore[valid-type]
    seed: IntProperty(name="Seed", default=0, min=0,
                      description="Random seed of motion prediction (another seed, another motion)")  # type: ignore[valid-type]
    steps: IntProperty(name="Steps", default=0, min=0, max=1000,
                       description="Denoising steps of motion prediction (more: slower, cleaner). "
                                   "0: automatic, 50 on a GPU and 25 on the CPU")  # type: ignore[valid-type]
    variation: FloatProperty(name="Variation", default=0.5, min=0.05, max=1.0, step=5, precision=2,
                             description="Share of the denoising steps sampled freely. 1: the motion is drawn "
                                         "from noise (most varied). Lower: it starts from where the image's "
                                         "static-flow field says things move (steadier layout, e.g. trees "
                                         "move and the sky stays still)")  # type: ignore[valid-type]
    device: EnumProperty(name="Device", items=DEVICES, default="AUTO",
                         description="Where the engine runs")  # type: ignore[valid-type]
    output_dir: StringProperty(name="Output Folder", subtype="DIR_PATH", default=DEFAULT_OUTPUT_DIR,
                               options=PATH_OPTIONS,
                               description="Where baked files go; // is the .blend's folder, "
                                           "{image} the image's name")  # type: ignore[valid-type]
    video_path: StringProperty(name="Video", subtype="FILE_PATH", default="", options=PATH_OPTIONS,
                               description="Reference clip to extract the motion from")  # type: ignore[valid-type]
    motion_path: StringProperty(name="Motion", subtype="FILE_PATH", default="", options=PATH_OPTIONS,
                                description="The spectral volume (.gidsv) animating this image")  # type: ignore[valid-type]
    # The baked results are referenced by *name* (read them with loop_image() and
    # displacement_image() below), not by a PointerProperty: bpy 5.0.1 does not clear an
    # Image-owned pointer property when the image it points to is removed
    # (bpy.data.images.remove), so the pointer dangles and reading, reassigning or purging it
    # crashes Blender (4.5 clears it; Scene-owned pointers such as dynamics/props.py's are cleared on
    # 5.0.1 too). A name cannot dangle: removed or renamed, it just no longer resolves, which
    # reads as "nothing baked".
    loop_image_name: StringProperty(name="Loop", default="",
                                    description="Name of the baked loop (an image sequence); a name "
                                                "no image has means no loop")  # type: ignore[valid-type]
    loop_frames: IntProperty(name="Loop Frames", default=0, min=0,
                             description="Frames in the baked loop")  # type: ignore[valid-type]
    displacement_image_name: StringProperty(name="Displacement", default="",
                                            description="Name of the baked Displace-node maps (Non-Color "
                                                        "sequence); a name no image has means none")  # type: ignore[valid-type]
    displacement_frames: IntProperty(name="Displacement Frames", default=0, min=0,
                                     description="Frames in the baked displacement maps")  # type: ignore[valid-type]
    displacement_scale: FloatProperty(name="Displace Scale", default=0.0, min=0.0,
                                      description="X/Y scale of the Displace node for these maps (pixels)")  # type: ignore[valid-type]
    displacement_compositor: BoolProperty(name="Set Up Compositor", default=False,
                                          description="After baking displacement maps, build the compositor "
                                                      "setup that displaces this image")  # type: ignore[valid-type]
    status: StringProperty(name="Status", default="",
                           description="What the last GID operation on this image did")  # type: ignore[valid-type]

    # Legacy: the pointers .blend files saved before the name references hold. Only
    # migrate_legacy_references() reads them, right after a file load (when Blender has just
    # re-linked them, so they cannot dangle), and clears them; nothing else may read or set them.
    loop_image: PointerProperty(name="Loop (legacy)", type=bpy.types.Image, options={"HIDDEN"},
                                description="Old files' baked loop; moved to loop_image_name "
                                            "on load")  # type: ignore[valid-type]
    displacement_image: PointerProperty(name="Displacement (legacy)", type=bpy.types.Image,
                                        options={"HIDDEN"},
                                        description="Old files' displacement maps; moved to "
                                                    "displacement_image_name on load")  # type: ignore[valid-type]


class GID_SceneSettings(bpy.types.PropertyGroup):
    """Limits that protect the session rather than describe one image (``bpy.types.Scene.gid``)."""

    max_pixels: IntProperty(name="Max Pixels", default=MAX_IMAGE_PIXELS, min=1, max=MAX_IMAGE_PIXELS,
                            description="Largest image (width x height) GID animates; bigger ones are "
                                        "refused before any memory is spent")  # type: ignore[valid-type]
    memory_budget: FloatProperty(name="Memory Budget (GiB)", default=DEFAULT_MEMORY_BUDGET_GIB, min=0.25, max=4096.0,
                                 soft_max=64.0, precision=2,
                                 description="Work GID estimates to need more memory than this is refused before "
                                             "it starts (2 GiB holds a 4K loop)")  # type: ignore[valid-type]


class GID_RuntimeState(bpy.types.PropertyGroup):
    """The running job as the panel shows it (``WindowManager.gid``; never saved)."""

    running: BoolProperty(name="Running", default=False, options={"SKIP_SAVE"})  # type: ignore[valid-type]
    operation: StringProperty(name="Operation", default="", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    image_name: StringProperty(name="Image", default="", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR",
                            options={"SKIP_SAVE"})  # type: ignore[valid-type]
    message: StringProperty(name="Message", default="", options={"SKIP_SAVE"})  # type: ignore[valid-type]


# ----------------------------------------------------------------------------- baked results
# (legacy pointer, name property) of each baked result of an image.
LEGACY_REFERENCES: tuple[tuple[str, str], ...] = (
    ("loop_image", "loop_image_name"),
    ("displacement_image", "displacement_image_name"),
)


def image_named(name: str) -> Optional[bpy.types.Image]:
    """The image called ``name``; None for "" and for a name no image has (removed or renamed),
    so callers treat a vanished result exactly like one never baked."""
    return bpy.data.images.get(name) if name else None


def _keep(image: bpy.types.Image) -> bpy.types.Image:
    """A name holds no user (the old pointer did), so a result no node shows would be dropped on
    save; the fake user keeps it in the .blend, as the pointer used to."""
    image.use_fake_user = True
    return image


def loop_image(settings: GID_ImageSettings) -> Optional[bpy.types.Image]:
    """The baked loop of ``settings``' image, or None when there is none (any more)."""
    return image_named(settings.loop_image_name)


def _replace(old_name: str, image: Optional[bpy.types.Image]) -> str:
    """The name to store for ``image``; the image it replaces loses the fake user ``_keep`` gave
    it, so a superseded bake is purged on save like any unused image (as with the old pointer)."""
    old = image_named(old_name)
    if old is not None and old != image:
        old.use_fake_user = False
    return _keep(image).name if image is not None else ""


def set_loop_image(settings: GID_ImageSettings, image: Optional[bpy.types.Image]) -> None:
    """Reference ``image`` as the baked loop (None: forget it)."""
    settings.loop_image_name = _replace(settings.loop_image_name, image)


def displacement_image(settings: GID_ImageSettings) -> Optional[bpy.types.Image]:
    """The baked Displace-node maps of ``settings``' image, or None when there are none (any more)."""
    return image_named(settings.displacement_image_name)


def set_displacement_image(settings: GID_ImageSettings, image: Optional[bpy.types.Image]) -> None:
    """Reference ``image`` as the baked Displace-node maps (None: forget them)."""
    settings.displacement_image_name = _replace(settings.displacement_image_name, image)


def migrate_legacy_references(settings: GID_ImageSettings) -> bool:
    """Move an old file's baked-result pointers to the name references; True if it held any.

    Call only right after a file load: Blender has just re-linked the pointers, so each is a
    live image or None (a pointer an old 5.0.1 session left dangling is saved as an address no
    datablock has and reads back None). In any other state a pointer may dangle on 5.0.1 and
    reading it may crash, so appended images keep theirs unread (their results read as not
    baked until the file is reopened). The SEQUENCE check skips the unlikely case of a saved
    dangling address that happens to match another image of the file.
    """
    moved = False
    for pointer, name in LEGACY_REFERENCES:
        legacy = getattr(settings, pointer)
        if legacy is None:
            continue
        if not getattr(settings, name) and legacy.source == "SEQUENCE":
            setattr(settings, name, _keep(legacy).name)
        setattr(settings, pointer, None)
        moved = True
    return moved


CLASSES: list[type] = [GID_ImageSettings, GID_SceneSettings, GID_RuntimeState]

# (owner type, attribute, property group): attached after the classes are registered.
POINTERS: list[tuple[type, str, type]] = [
    (bpy.types.Image, "gid", GID_ImageSettings),
    (bpy.types.Scene, "gid", GID_SceneSettings),
    (bpy.types.WindowManager, "gid", GID_RuntimeState),
]


def register() -> None:
    """Attach ``Image.gid``, ``Scene.gid`` and ``WindowManager.gid`` (after the classes)."""
    for owner, attr, group in POINTERS:
        setattr(owner, attr, PointerProperty(type=group))


def unregister() -> None:
    for owner, attr, _group in reversed(POINTERS):
        if hasattr(owner, attr):
            delattr(owner, attr)
