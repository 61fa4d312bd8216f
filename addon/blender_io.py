"""bpy glue: which image the user means, whether the engine can read it, where outputs go.

The engine reads and writes files, never Blender datablocks, so everything here turns Blender
state (an Image, a node, a ``//`` path) into plain values the engine accepts, and turns every
way that can fail into a one-line ``GidError`` the operators show as a report. Path and name
rules are small pure functions (no bpy) so they are easy to test and to reuse.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import bpy
import numpy as np

from ..exporters.atomic import atomic_write_bytes
from ..exporters.errors import ExportError, FileFormatError
from ..exporters.sidecar import read_sidecar
from ..gid_engine.errors import GidError
from ..gid_engine.budget import set_memory_budget
from ..gid_engine.media.imaging import MAX_IMAGE_PIXELS

DEFAULT_OUTPUT_DIR = "//gid/{image}/"
LOOP_SUBDIR = "loop"
DISPLACEMENT_SUBDIR = "displacement"
LOOP_PREFIX = "frame"
DISPLACEMENT_PREFIX = "disp"
DISPLACE_NODE_PREFIX = "disp_node"
MOTION_FILE = "motion.gidsv"
OWNER_FILE = ".gid-owner.json"  # in an image's output folder: which image its results belong to


# ----------------------------------------------------------------------------- errors
class SourceImageError(GidError):
    """The selected image cannot be handed to the engine (the message says what to do)."""


class NoImageError(SourceImageError):
    pass


class PackedImageError(SourceImageError):
    pass


class GeneratedImageError(SourceImageError):
    pass


class MissingImageFileError(SourceImageError):
    pass


class EmptyImageError(SourceImageError):
    pass


class HugeImageError(SourceImageError):
    pass


class OutputFolderError(GidError):
    """The output folder cannot be used (unsaved .blend with a relative path, not writable...)."""


class OutputConflictError(OutputFolderError):
    """Files with our names are there but are not a previous gid bake: never replaced."""


class LinkedImageError(SourceImageError):
    """The image is linked from a library .blend; results stored on it would not be saved."""


class MotionMissingError(GidError):
    """No spectral volume yet, or its file is gone."""


# ----------------------------------------------------------------------------- pure helpers
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A file-name-safe version of a datablock name ('Tree bark.png' -> 'Tree_bark').

    Image names carry their extension and may hold spaces, slashes or non-ASCII letters; the
    result is used as a folder name, so it keeps only characters safe on every OS.
    """
    stem = name.rsplit(".", 1)[0] if re.search(r"\.[A-Za-z0-9]{2,4}$", name) else name
    cleaned = _UNSAFE.sub("_", stem).strip("._")
    return cleaned[:64] or "image"


def expand_output_template(template: str, image_name: str, key: Optional[str] = None) -> str:
    """Replace ``{image}`` in the output folder setting (by ``key``, default the image's safe
    name); an empty setting means the default."""
    return (template.strip() or DEFAULT_OUTPUT_DIR).replace("{image}", key or safe_name(image_name))


def output_keys(image_name: str) -> Iterator[str]:
    """What ``{image}`` may stand for, in order of preference: the image's safe name, then that
    name tagged with a hash of the full name (two names that sanitise alike, 'tex a.png' and
    'tex_a.png', differ there), then numbered variants of it."""
    base = safe_name(image_name)
    tag = hashlib.sha1(image_name.encode("utf-8")).hexdigest()[:6]
    yield base
    yield f"{base}-{tag}"
    for i in range(2, 100):
        yield f"{base}-{tag}-{i}"


@dataclass(frozen=True)
class Owner:
    """Whose results an output folder holds: the image's name in the .blend, and the still it
    animates (an absolute path, "" when unknown)."""

    image: str
    source: str = ""

    def is_image(self, image_name: str, source: Optional[Path]) -> bool:
        if self.image:
            return self.image == image_name
        return bool(self.source) and source is not None and Path(self.source).resolve() == Path(source).resolve()


def folder_owner(root: Path) -> Optional[Owner]:
    """The image whose results ``root`` holds, or None when it holds nobody's.

    Read from the owner file a finished job writes. A folder baked before owner files existed is
    known by its loop's sidecar, which names the still it animated; with neither, it is nobody's.
    An owner file that cannot be read is treated as another image's: never guess it is ours.
    """
    try:
        doc = json.loads((root / OWNER_FILE).read_text(encoding="utf-8"))
        return Owner(str(doc["image"]), str(doc.get("source") or ""))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError):
        return Owner("(unreadable owner file)")
    try:
        doc = read_sidecar(root / LOOP_SUBDIR / f"{LOOP_PREFIX}.json")
        source = doc["params"]["image"]["path"]
    except (FileFormatError, KeyError, TypeError):
        return None
    return Owner("", str(Path(source).resolve())) if isinstance(source, str) and source else None


def claim_folder(root: Path, image_name: str, source: Optional[Path]) -> None:
    """Record that ``root`` holds ``image_name``'s results (after a job wrote them). No bpy."""
    owner = folder_owner(root)
    if owner is not None and owner.image == image_name:
        return
    doc = {"format": "gid.owner", "image": image_name, "source": str(source) if source else ""}
    try:
        atomic_write_bytes(root / OWNER_FILE, json.dumps(doc, indent=1).encode("utf-8"), overwrite=True)
    except ExportError:
        pass  # the results are written; a folder without an owner file is taken for nobody's


def first_existing_parent(path: Path) -> Path:
    """The nearest ancestor of ``path`` (itself included) that exists on disk."""
    p = path
    while not os.path.lexists(p) and p.parent != p:
        p = p.parent
    return p


def check_writable_folder(folder: Path) -> None:
    """Fail early, before any work, when ``folder`` can neither be used nor created.

    Catches the two real cases: a path component that is a regular file (``a.txt/sub``) and a
    read-only parent. The exporters would fail too, but only after the render.
    """
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"output folder {folder} is a file; choose a folder")
    base = first_existing_parent(folder)
    if not base.is_dir():
        raise OutputFolderError(f"cannot create output folder {folder}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputFolderError(f"output folder {folder} is not writable (no permission in {base})")


def remove_empty_dirs(folder: Path, keep: Path) -> None:
    """Remove ``folder`` and its parents while they are empty, stopping at ``keep``.

    A cancelled or failed job must leave no trace, not even the ``gid/<image>/`` folders it
    created on its way (the exporters remove only the last folder they made).
    """
    p = folder
    while p != keep and keep in p.parents:
        try:
            p.rmdir()
        except FileNotFoundError:
            pass  # already removed (the exporters remove the last folder they made)
        except OSError:
            return  # not empty: someone else's files, or ours from before
        p = p.parent


def leave_no_trace(run: "Callable[[Any], Any]", folder: Path,
                   claim: Optional[tuple[Path, str, Optional[Path]]] = None) -> "Callable[[Any], Any]":
    """Wrap a worker ``run(job)`` writing into ``folder`` so that on any failure (cancel
    included) the folders it created, if left empty, are removed again; on success, ``claim``
    (root, image name, source still) records whose results the image's folder holds
    (``claim_folder``). No bpy: runs in the worker thread."""
    keep = first_existing_parent(folder)

    def wrapped(job: Any) -> Any:
        try:
            result = run(job)
        except BaseException:
            remove_empty_dirs(folder, keep)
            raise
        if claim is not None:
            claim_folder(*claim)
        return result

    return wrapped


def frame_file_name(prefix: str, index: int, ext: str) -> str:
    """Blender's numbering, as the exporters write it: ``frame_0001.png`` for index 1."""
    return f"{prefix}_{index:04d}.{ext}"


def own_sequence(folder: Path, prefix: str, ext: str) -> Optional[bool]:
    """Who owns the ``prefix_####.ext`` / ``prefix.json`` files in ``folder``.

    ``None``: there are none (write freely). ``True``: a previous gid bake, recognised by our
    sidecar (replace it). ``False``: files with our names that gid did not write (refuse).
    """
    sidecar = folder / f"{prefix}.json"
    pattern = re.compile(rf"^{re.escape(prefix)}_\d{{4,}}\.{re.escape(ext)}$")
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    ours_named = [n for n in names if pattern.match(n)]
    if not ours_named and not os.path.lexists(sidecar):
        return None
    try:
        doc = read_sidecar(sidecar)
    except FileFormatError:
        return False
    return doc.get("kind") in ("image_sequence", "displacement")


def previous_frame_count(folder: Path, prefix: str) -> int:
    """Frames the previous bake's sidecar lists (0 when unknown), to remove stale ones later."""
    try:
        count = read_sidecar(folder / f"{prefix}.json").get("files", {}).get("count", 0)
    except FileFormatError:
        return 0
    return count if isinstance(count, int) and count > 0 else 0


def remove_stale_frames(folder: Path, prefix: str, ext: str, keep: int, previous: int) -> int:
    """After replacing a longer bake of ours, delete its frames past the new count."""
    removed = 0
    for i in range(keep + 1, previous + 1):
        try:
            (folder / frame_file_name(prefix, i, ext)).unlink()
            removed += 1
        except OSError:
            pass
    return removed


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
    keys = list(output_keys(image_name)) if "{image}" in (template.strip() or DEFAULT_OUTPUT_DIR) else [None]
    owner: Optional[Owner] = None
    for key in keys:
        folder = _usable_folder(expand_output_template(template, image_name, key))
        owner = folder_owner(folder)
        if owner is None or owner.is_image(image_name, source):
            return folder
    whose = repr(owner.image) if owner is not None and owner.image else f"the still {owner.source if owner else ''}"
    hint = "put {image} in the output folder setting" if keys == [None] else "rename the image"
    raise OutputConflictError(f"{folder} holds the GID results of image {whose}, not of {image_name!r}; {hint} "
                              "or choose another output folder")


def _usable_folder(expanded: str) -> Path:
    if expanded.startswith("//") and not blend_is_saved():
        raise OutputFolderError(
            f"output folder {expanded!r} is relative to the .blend, which is not saved: "
            "save the .blend first or choose an absolute output folder"
        )
    folder = abspath(expanded)
    if not folder.is_absolute():
        raise OutputFolderError(f"output folder {expanded!r} is not absolute; start it with // or a drive/root")
    check_writable_folder(folder)
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
    """``(H, W, 4)`` float32 pixels, top row first (Blender stores the bottom row first)."""
    width, height = image.size[:]
    channels = image.channels
    flat = np.empty(width * height * channels, dtype=np.float32)
    image.pixels.foreach_get(flat)
    return np.ascontiguousarray(flat.reshape(height, width, channels)[::-1])
