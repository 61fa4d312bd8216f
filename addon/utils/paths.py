"""Where the add-on's outputs go and whose they are: names, folders, owners, sequences (no bpy).

Every image gets a folder of its own (``//gid/<image>/`` by default) holding ``motion.gidsv``,
``loop/``, ``displacement/`` and ``interactive/``; a finished job records in it which image its
results belong to, so another image's results are never replaced. The bpy side
(``addon/blender_io.py``) resolves ``//`` paths and calls these.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ...exporters.atomic import AllOrNothing, atomic_write_bytes
from ...exporters.errors import ExportError, FileFormatError
from ...exporters.sidecar import read_sidecar
from ...gid_engine.errors import GidError
from .errors import OutputConflictError, OutputFolderError

DEFAULT_OUTPUT_DIR = "//gid/{image}/"
LOOP_SUBDIR = "loop"
DISPLACEMENT_SUBDIR = "displacement"
INTERACTIVE_SUBDIR = "interactive"
LOOP_PREFIX = "frame"
DISPLACEMENT_PREFIX = "disp"
DISPLACE_NODE_PREFIX = "disp_node"
MOTION_FILE = "motion.gidsv"
OWNER_FILE = ".gid-owner.json"  # in an image's output folder: which image its results belong to

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


# ----------------------------------------------------------------------------- names
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


def frame_file_name(prefix: str, index: int, ext: str) -> str:
    """Blender's numbering, as the exporters write it: ``frame_0001.png`` for index 1."""
    return f"{prefix}_{index:04d}.{ext}"


# ----------------------------------------------------------------------------- owners
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
    """Record that ``root`` holds ``image_name``'s results (after a job wrote them)."""
    owner = folder_owner(root)
    if owner is not None and owner.image == image_name:
        return
    doc = {"format": "gid.owner", "image": image_name, "source": str(source) if source else ""}
    try:
        atomic_write_bytes(root / OWNER_FILE, json.dumps(doc, indent=1).encode("utf-8"), overwrite=True)
    except ExportError:
        pass  # the results are written; a folder without an owner file is taken for nobody's


def owner_conflict(folder: Path, owner: Optional[Owner], image_name: str, templated: bool) -> OutputConflictError:
    """The error for an output folder that holds another image's results."""
    whose = repr(owner.image) if owner is not None and owner.image else f"the still {owner.source if owner else ''}"
    hint = "rename the image" if templated else "put {image} in the output folder setting"
    return OutputConflictError(f"{folder} holds the GID results of image {whose}, not of {image_name!r}; {hint} "
                               "or choose another output folder")


# ----------------------------------------------------------------------------- folders
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


def leave_no_trace(run: Callable[[Any], Any], folder: Path,
                   claim: Optional[tuple[Path, str, Optional[Path]]] = None) -> Callable[[Any], Any]:
    """Wrap a worker ``run(job)`` writing into ``folder``: on any failure (cancel included) the
    files it reported and the folders it created, if left empty, are removed again
    (``AllOrNothing``: the exporters remove only the last folder they made, not the
    ``gid/<image>/`` on the way); on success, ``claim`` (root, image name, source still) records
    whose results the image's folder holds (``claim_folder``)."""

    def wrapped(job: Any) -> Any:
        with AllOrNothing(folder):
            result = run(job)
        if claim is not None:
            claim_folder(*claim)
        return result

    return wrapped


def remap_relative(path: str, old_dir: str, new_dir: str) -> str:
    """A ``//`` path relative to ``old_dir`` rewritten relative to ``new_dir`` (same target).

    Absolute paths and paths on another drive (no relative form) are returned unchanged/absolute.
    """
    if not path.startswith("//") or not old_dir or os.path.normcase(old_dir) == os.path.normcase(new_dir):
        return path
    target = os.path.normpath(os.path.join(old_dir, path[2:]))
    try:
        rel = os.path.relpath(target, new_dir)
    except ValueError:
        return target
    return "//" + rel.replace(os.sep, "/")


def save_as_dirs(blend_path: str, filepath: Optional[str]) -> Optional[tuple[str, str]]:
    """(old, new) folder of a save of ``blend_path`` to ``filepath`` that may move the .blend;
    None for a first save (no old folder) or a save without a path."""
    old_dir = os.path.dirname(blend_path) if blend_path else ""
    if not filepath or not old_dir:
        return None
    return old_dir, os.path.dirname(os.path.abspath(filepath))


# ----------------------------------------------------------------------------- sequences
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


def overwrite_policy(folder: Path, prefix: str, ext: str) -> bool:
    """Whether to overwrite: our previous bake yes, nobody's files no, someone else's refuse."""
    owner = own_sequence(folder, prefix, ext)
    if owner is False:
        raise OutputConflictError(
            f"{folder} already holds {prefix}_####.{ext} files that are not a GID bake; "
            "choose another output folder or move them")
    return owner is True


def motion_overwrite_policy(target: Path) -> bool:
    """A ``.gidsv`` that loads is one of ours (it carries our format and checksum): replace it."""
    if not target.exists():
        return False
    from ...gid_engine.motion.sv_file import load_spectral_volume

    try:
        load_spectral_volume(target)
    except (GidError, ExportError):
        raise OutputConflictError(f"{target} exists and is not a GID motion file; "
                                  "choose another output folder or move it") from None
    return True


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
