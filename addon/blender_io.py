"""bpy glue: which image the user means, whether the engine can read it, where outputs go.

The engine reads and writes files, never Blender datablocks, so everything here turns Blender
state (an Image, a node, a ``//`` path) into plain values the engine accepts, and turns every
way that can fail into a one-line ``GidError`` the operators show as a report. The rules that
need no Blender (names, folders, owners, sequences) are in ``utils/paths.py``, the errors in
``utils/errors.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import bpy
import numpy as np

from ..gid_engine.budget import set_memory_budget
from ..gid_engine.errors import GidError
from ..gid_engine.media.imaging import MAX_IMAGE_PIXELS
from .utils import paths
from .utils.errors import (
    EmptyImageError,
    GeneratedImageError,
    HugeImageError,
    LinkedImageError,
    MissingImageFileError,
    MotionMissingError,
    NoImageError,
    OutputFolderError,
    PackedImageError,
    SourceImageError,
)
from .utils.pixels import top_down


# ----------------------------------------------------------------------------- paths (bpy)
def blend_is_saved() -> bool:
    return bool(bpy.data.filepath)


def abspath(path: str, library: Optional[bpy.types.Library] = None) -> Path:
    """A Blender path (maybe ``//relative``) as an absolute, normalised file system path.

    ``library``: the library the path comes from (an ID's ``.library``); a linked image's ``//``
    is relative to the library .blend it was saved in, not to the file that links it.
    """
    return Path(os.path.normpath(bpy.path.abspath(path, library=library)))


def file_path(path: str, what: str, library: Optional[bpy.types.Library] = None,
              error: type[GidError] = MotionMissingError) -> Path:
    """The absolute file a user's Blender path names, for ``what`` (e.g. "video").

    A ``//relative`` path of the main file means nothing while the .blend is unsaved (Blender
    would resolve it against the process's working folder): refused with ``error``, one line,
    as for every path the add-on reads (images, videos, motion files).
    """
    if path.startswith("//") and library is None and not blend_is_saved():
        raise error(f"{what} {path} is relative to the .blend, which is not saved: save the .blend first "
                    f"or choose the {what} with an absolute path")
    return abspath(path, library)


def image_path(image: bpy.types.Image) -> Path:
    """The absolute file of ``image``, relative paths of linked images resolved in their library."""
    return abspath(image.filepath, image.library)


def check_local(image: bpy.types.Image) -> None:
    """Refuse to store results on an image linked from another .blend: Blender saves nothing that
    is written to linked data, so the results would be lost on reopening (and baked again twice)."""
    library = getattr(image, "library", None)
    if library is not None:
        raise LinkedImageError(
            f"image {image.name!r} is linked from {Path(library.filepath).name}; GID keeps its results on the "
            "image, which Blender does not save for linked data: make the image local first "
            "(Image Editor: Image > Make Local; or Object > Relations > Make Local)")


def blender_relpath(path: Path | str) -> str:
    """``//relative`` when the .blend is saved (so the project can move), absolute otherwise.

    ``bpy.path.relpath`` fails across Windows drives; the absolute path is the only answer then.
    """
    path = str(path)
    if not blend_is_saved():
        return path
    try:
        return bpy.path.relpath(path)
    except ValueError:
        return path


def resolve_output_dir(template: str, image_name: str, source: Optional[Path] = None) -> Path:
    """The absolute output folder for ``image_name``, checked to be usable and not another image's.

    Each image gets a folder of its own: ``{image}`` stands for the first of ``output_keys`` whose
    folder holds nobody's results or this image's (so 'tex a.png' and 'tex_a.png' never share
    one, and a re-bake finds its own). A template without ``{image}`` names one folder: when it
    holds another image's results the bake is refused, never merged.
    """
    templated = "{image}" in (template.strip() or paths.DEFAULT_OUTPUT_DIR)
    keys = list(paths.output_keys(image_name)) if templated else [None]
    owner: Optional[paths.Owner] = None
    for key in keys:
        folder = _usable_folder(paths.expand_output_template(template, image_name, key))
        owner = paths.folder_owner(folder)
        if owner is None or owner.is_image(image_name, source):
            return folder
    raise paths.owner_conflict(folder, owner, image_name, templated)


def _usable_folder(expanded: str) -> Path:
    if expanded.startswith("//") and not blend_is_saved():
        raise OutputFolderError(
            f"output folder {expanded!r} is relative to the .blend, which is not saved: "
            "save the .blend first or choose an absolute output folder"
        )
    folder = abspath(expanded)
    if not folder.is_absolute():
        raise OutputFolderError(f"output folder {expanded!r} is not absolute; start it with // or a drive/root")
    paths.check_writable_folder(folder)
    return folder


def motion_file(settings: bpy.types.PropertyGroup) -> Path:
    """The absolute path of the image's spectral volume, which must exist."""
    if not settings.motion_path:
        raise MotionMissingError("no motion yet: extract motion from a video (or predict it) first")
    path = file_path(settings.motion_path, "motion file")
    if not path.is_file():
        raise MotionMissingError(f"motion file not found: {path}")
    return path


# ----------------------------------------------------------------------------- source image
@dataclass
class SourceRef:
    """The image the user means and, when known, the Image Texture node that shows it.

    Names, not bpy references: undo and file loads invalidate Python references while a
    threaded job runs, so the finishing step looks everything up again.
    """

    image_name: str
    tree_owner: Optional[tuple[str, str]] = None  # ("materials" | "node_groups" | "worlds" | "lights", name)
    node_name: str = ""

    def image(self) -> Optional[bpy.types.Image]:
        return bpy.data.images.get(self.image_name)

    def node_tree(self) -> Optional[bpy.types.NodeTree]:
        if self.tree_owner is None:
            return None
        collection, name = self.tree_owner
        owner = getattr(bpy.data, collection).get(name)
        if owner is None:
            return None
        return owner if collection == "node_groups" else owner.node_tree

    def node(self) -> Optional[bpy.types.Node]:
        tree = self.node_tree()
        return tree.nodes.get(self.node_name) if tree is not None and self.node_name else None


def tree_owner(tree: bpy.types.NodeTree) -> Optional[tuple[str, str]]:
    """Where a node tree lives: material/world/light trees are embedded, groups are IDs."""
    if tree is None:
        return None
    if tree.name in bpy.data.node_groups and bpy.data.node_groups[tree.name] == tree:
        return ("node_groups", tree.name)
    ptr = tree.as_pointer()
    for collection in ("materials", "worlds", "lights"):
        for owner in getattr(bpy.data, collection):
            if owner.node_tree is not None and owner.node_tree.as_pointer() == ptr:
                return (collection, owner.name)
    return None


def _active_image_node(tree: Optional[bpy.types.NodeTree]) -> Optional[bpy.types.Node]:
    node = tree.nodes.active if tree is not None else None
    return node if node is not None and node.type == "TEX_IMAGE" else None


def context_image_node(context: bpy.types.Context) -> tuple[Optional[bpy.types.NodeTree], Optional[bpy.types.Node]]:
    """The active Image Texture node: the Shader Editor's tree, else the active material's.

    The fallback lets scripts and headless runs (no editors) point at a node by making its
    material active, which is also what the Shader Editor would show.
    """
    space = getattr(context, "space_data", None)
    if space is not None and space.type == "NODE_EDITOR" and getattr(space, "tree_type", "") == "ShaderNodeTree":
        tree = space.edit_tree
        return tree, _active_image_node(tree)
    obj = getattr(context, "object", None)
    mat = obj.active_material if obj is not None else None
    if mat is not None and mat.node_tree is not None:
        return mat.node_tree, _active_image_node(mat.node_tree)
    return None, None


def source_from_context(context: bpy.types.Context, image_name: str = "") -> SourceRef:
    """The image to animate: ``image_name`` if given, else the Image Editor's image, else the
    active Image Texture node's image. The node is remembered only when it shows that image."""
    tree, node = context_image_node(context)
    if image_name:
        image = bpy.data.images.get(image_name)
        if image is None:
            raise NoImageError(f"there is no image named {image_name!r} in this .blend")
    else:
        space = getattr(context, "space_data", None)
        image = space.image if space is not None and space.type == "IMAGE_EDITOR" else None
        if image is None and node is not None:
            image = node.image
    if image is None:
        raise NoImageError("no image selected: select an Image Texture node with an image, "
                           "or open the image in the Image Editor")
    if node is not None and node.image != image:
        node = None
    return SourceRef(image.name, tree_owner(tree) if node is not None else None, node.name if node is not None else "")


def apply_memory_budget(context: bpy.types.Context) -> None:
    """Make the scene's Memory Budget the engine's, for the operation about to start."""
    scene_settings = getattr(getattr(context, "scene", None), "gid", None)
    gib = getattr(scene_settings, "memory_budget", None)
    set_memory_budget(float(gib) if gib else None, raise_hint="raise Memory Budget in the GID panel's limits")


def max_pixels(context: bpy.types.Context) -> int:
    """The largest image (in pixels) the add-on hands to the engine: the scene setting."""
    scene_settings = getattr(getattr(context, "scene", None), "gid", None)
    limit = getattr(scene_settings, "max_pixels", 0) or MAX_IMAGE_PIXELS
    return min(int(limit), MAX_IMAGE_PIXELS)


def check_source_image(image: bpy.types.Image, limit: int = MAX_IMAGE_PIXELS) -> Path:
    """The absolute file the engine should read for ``image``, or the reason it cannot.

    The engine reads files, so packed and generated images must first become files; the
    order of the checks is the order in which a user can fix them.
    """
    if image.packed_file is not None:
        raise PackedImageError(f"image {image.name!r} is packed into the .blend; unpack it first "
                               "(Image > Unpack) so gid can read the file")
    if image.source != "FILE" or not image.filepath:
        what = {"GENERATED": "a generated image", "VIEWER": "a render/viewer result",
                "SEQUENCE": "an image sequence", "MOVIE": "a movie", "TILED": "a UDIM tiled image"}
        kind = what.get(image.source, "an image without a file")
        if image.source in ("SEQUENCE", "MOVIE", "TILED"):
            raise SourceImageError(f"image {image.name!r} is {kind}; gid animates one still image file")
        raise GeneratedImageError(f"image {image.name!r} is {kind}; save it to a file first (Image > Save As)")
    path = file_path(image.filepath, f"image {image.name!r}: file", image.library, MissingImageFileError)
    if not path.is_file():
        raise MissingImageFileError(f"image file not found: {path} (image {image.name!r})")
    width, height = image.size[:]
    if width * height == 0:
        raise EmptyImageError(f"image {image.name!r} has no pixels (Blender could not read {path.name})")
    if width * height > limit:
        raise HugeImageError(f"image {image.name!r} is {width}x{height}; gid accepts at most {limit} pixels "
                             "(scale it down or raise the limit in the GID panel)")
    return path


# ----------------------------------------------------------------------------- pixels
def read_pixels(image: bpy.types.Image) -> np.ndarray:
    """``(H, W, C)`` float32 pixels, top row first (Blender stores the bottom row first)."""
    width, height = image.size[:]
    channels = image.channels
    flat = np.empty(width * height * channels, dtype=np.float32)
    image.pixels.foreach_get(flat)
    return top_down(flat, width, height, channels)


def scene_fps(scene: bpy.types.Scene) -> float:
    """The scene's frame rate (``fps / fps_base``)."""
    return scene.render.fps / (scene.render.fps_base or 1.0)
