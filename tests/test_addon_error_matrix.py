"""Issue #9, Blender side: every operator that works on files, under every error that applies to
it, reports one line and returns CANCELLED; nothing is left behind, and the .blend still saves
and reopens with the user's image and its GID settings intact.

The matrix is data (``MATRIX``): one ``pytest.param(operator, condition, expected_regex)`` per
pair, grouped by condition; pairs that make no sense are listed too, skipped with the reason.
Each pair runs in a fresh saved .blend (``scene_blend``) holding a 64x48 still, and asserts:

* the call raises RuntimeError (an ERROR report in background mode) or returns {'CANCELLED'};
* the report is one line and matches the row's regex;
* the folder holds the same entries with the same bytes as before (no new file, no staging
  folder, no temp file; the user's files byte for byte);
* no image datablock, node, node tree or compositor appeared; scene frame range and render
  size are unchanged; the user's image (name, file, source, size, packed) and its GID settings
  (all but ``status``, which says "Error: ..." / "Cancelled ...") are unchanged;
* ``wm.save_as_mainfile`` then ``wm.open_mainfile`` work and bring back the user's image with
  the same GID settings (and the scene's interactive settings).

Weights: ``gid_engine.predict.WEIGHTS_DIR`` is looked up per call, so the corrupt-weights rows
point it at temp copies with one byte flipped. ``weights_corrupt`` copies both folders (torch
``motion_prior`` and its sibling ``motion_prior_onnx``), each corrupted: where torch is installed
(.venv) the torch backend reports its file, without torch (the Blender legs) the ONNX backend does.
``weights_corrupt_onnx`` points at the ONNX copy alone, which forces the ONNX backend in both.

Reports are read where Blender puts them: background mode prints each as ``Error: ...`` /
``Warning: ...`` on stdout (captured with ``capfd``; ``Operator.report`` is an RNA function that
a Python attribute cannot shadow), and an ERROR report also makes ``bpy.ops`` raise RuntimeError.
"""

from __future__ import annotations

import errno
import hashlib
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from gid.addon import blender_io as bio
from gid.addon import nodes, ops, props
from gid.addon.dynamics import pokes
from gid.addon.dynamics.ops import GID_OT_bake_interaction, prepare_bake
from gid.addon.loops.ops import prepare_bake_displacement, prepare_bake_loop
from gid.addon.motion.ops import prepare_extract, prepare_predict
from gid.addon.utils import paths, worker
from gid.exporters import atomic
from gid.exporters.atomic import STAGING_PREFIX
from gid.gid_engine.prediction import predict
from gid.gid_engine.progress import Job

from blender_helpers import CancelAfterFirstFrame, add_material_with_texture
from conftest import H, W, write_still, write_video

OPERATORS = {
    "predict": "predict_motion",
    "extract": "extract_motion",
    "loop": "bake_loop",
    "disp": "bake_displacement",
    "comp": "setup_compositor_loop",
    "interact": GID_OT_bake_interaction.bl_idname.split(".", 1)[1],  # gid.bake_interaction
}
JOB_OPS = ("predict", "extract", "loop", "disp", "interact")  # threaded, with a Job (cancel applies)


# ============================================================================== the matrix
def case(op: str, cond: str, regex: str) -> Any:
    return pytest.param(op, cond, regex, id=f"{op}-{cond}")


def skip(op: str, cond: str, reason: str) -> Any:
    return pytest.param(op, cond, None, id=f"{op}-{cond}", marks=pytest.mark.skip(reason=reason))


NO_STILL_E = "extract reads only the video, never the still's file"
NO_STILL_C = "the compositor plays the baked loop; the still's file is not read"
NO_INPUT_MOTION = "writes the motion file; it takes no motion as input"
NO_MOTION_C = "plays the baked PNG loop; it reads no .gidsv"
NO_FILES_C = "writes no files (only compositor nodes)"
NO_PRIOR = "does not use the learned prior"
NO_JOB_C = "synchronous and instant: there is no job to cancel"
NOT_OURS = r"is not a GID motion file; choose another output folder or move it"
NOT_A_BAKE = r"already holds {}_####\.{} files that are not a GID bake; choose another output folder"
CANCELLED = r"{} cancelled; nothing was written"

MATRIX = [
    # -- the image's file is gone from disk
    case("predict", "image_missing", r"image file not found: .*tex\.png \(image 'tex\.png'\)"),
    skip("extract", "image_missing", NO_STILL_E),
    case("loop", "image_missing", r"image file not found: .*tex\.png \(image 'tex\.png'\)"),
    case("disp", "image_missing", r"image file not found: .*tex\.png \(image 'tex\.png'\)"),
    skip("comp", "image_missing", NO_STILL_C),
    case("interact", "image_missing", r"image file not found: .*tex\.png \(image 'tex\.png'\)"),
    # -- the file became random bytes while Blender still holds its pixels: the engine's reader says so
    case("predict", "image_corrupt", r"cannot decode image .*tex\.png: not an image or the file is corrupt"),
    skip("extract", "image_corrupt", NO_STILL_E),
    case("loop", "image_corrupt", r"cannot decode image .*tex\.png: not an image or the file is corrupt"),
    skip("disp", "image_corrupt", "displacement maps need the image's size (Blender's), not its file's pixels"),
    skip("comp", "image_corrupt", NO_STILL_C),
    case("interact", "image_corrupt", r"cannot decode image .*tex\.png: not an image or the file is corrupt"),
    # -- the file is random bytes and Blender re-read it (as on reopening the .blend): no pixels
    case("predict", "image_unreadable", r"image 'tex\.png' has no pixels \(Blender could not read tex\.png\)"),
    skip("extract", "image_unreadable", NO_STILL_E),
    case("loop", "image_unreadable", r"image 'tex\.png' has no pixels \(Blender could not read tex\.png\)"),
    case("disp", "image_unreadable", r"image 'tex\.png' has no pixels \(Blender could not read tex\.png\)"),
    skip("comp", "image_unreadable", NO_STILL_C),
    case("interact", "image_unreadable", r"image 'tex\.png' has no pixels \(Blender could not read tex\.png\)"),
    # -- a packed image (the engine reads files)
    case("predict", "packed", r"image 'tex\.png' is packed into the \.blend; unpack it first"),
    skip("extract", "packed", NO_STILL_E),
    case("loop", "packed", r"image 'tex\.png' is packed into the \.blend; unpack it first"),
    case("disp", "packed", r"image 'tex\.png' is packed into the \.blend; unpack it first"),
    skip("comp", "packed", NO_STILL_C),
    case("interact", "packed", r"image 'tex\.png' is packed into the \.blend; unpack it first"),
    # -- a generated (painted, never saved) image
    case("predict", "generated", r"image 'painted' is a generated image; save it to a file first"),
    skip("extract", "generated", NO_STILL_E),
    case("loop", "generated", r"image 'painted' is a generated image; save it to a file first"),
    case("disp", "generated", r"image 'painted' is a generated image; save it to a file first"),
    skip("comp", "generated", NO_STILL_C),
    case("interact", "generated", r"image 'painted' is a generated image; save it to a file first"),
    # -- nothing to work from: no motion yet (the compositor: no baked loop yet)
    skip("predict", "no_motion", NO_INPUT_MOTION),
    skip("extract", "no_motion", NO_INPUT_MOTION),
    case("loop", "no_motion", r"no motion yet: extract motion from a video \(or predict it\) first"),
    case("disp", "no_motion", r"no motion yet: extract motion from a video \(or predict it\) first"),
    case("comp", "no_motion", r"image 'tex\.png' has no baked loop yet: bake a loop first"),
    case("interact", "no_motion", r"no motion yet: extract motion from a video \(or predict it\) first"),
    # -- the motion file (the compositor: the baked loop's frames) is gone from disk
    skip("predict", "motion_missing", NO_INPUT_MOTION),
    skip("extract", "motion_missing", NO_INPUT_MOTION),
    case("loop", "motion_missing", r"motion file not found: .*in\.gidsv"),
    case("disp", "motion_missing", r"motion file not found: .*in\.gidsv"),
    case("comp", "motion_missing", r"baked loop not found: .*frame_0001\.png; bake the loop again"),
    case("interact", "motion_missing", r"motion file not found: .*in\.gidsv"),
    # -- the .gidsv truncated to half. predict/extract: the one at their output path, never replaced
    case("predict", "motion_truncated", NOT_OURS),
    case("extract", "motion_truncated", NOT_OURS),
    case("loop", "motion_truncated", r"in\.gidsv is truncated or damaged \(incomplete zip archive\)"),
    case("disp", "motion_truncated", r"in\.gidsv is truncated or damaged \(incomplete zip archive\)"),
    skip("comp", "motion_truncated", NO_MOTION_C),
    case("interact", "motion_truncated", r"in\.gidsv is truncated or damaged \(incomplete zip archive\)"),
    # -- the .gidsv is random bytes
    case("predict", "motion_random", NOT_OURS),
    case("extract", "motion_random", NOT_OURS),
    case("loop", "motion_random", r"in\.gidsv is not a gid spectral volume \(not an npz/zip archive\)"),
    case("disp", "motion_random", r"in\.gidsv is not a gid spectral volume \(not an npz/zip archive\)"),
    skip("comp", "motion_random", NO_MOTION_C),
    case("interact", "motion_random", r"in\.gidsv is not a gid spectral volume \(not an npz/zip archive\)"),
    # -- the output folder cannot be created (a path component is a file; chmod does not stop root)
    case("predict", "output_not_writable", r"cannot create output folder .*: .*file\.txt is a file, not a folder"),
    case("extract", "output_not_writable", r"cannot create output folder .*: .*file\.txt is a file, not a folder"),
    case("loop", "output_not_writable", r"cannot create output folder .*: .*file\.txt is a file, not a folder"),
    case("disp", "output_not_writable", r"cannot create output folder .*: .*file\.txt is a file, not a folder"),
    skip("comp", "output_not_writable", NO_FILES_C),
    case("interact", "output_not_writable", r"cannot create output folder .*: .*file\.txt is a file, not a folder"),
    # -- writing is refused (EACCES from the exporters' low-level write: what chmod would do to a user)
    case("predict", "write_denied", r"no permission to write in .*gid/tex"),
    case("extract", "write_denied", r"no permission to write in .*gid/tex"),
    case("loop", "write_denied", r"no permission to write in .*gid/tex/loop"),
    case("disp", "write_denied", r"no permission to write in .*gid/tex/displacement"),
    skip("comp", "write_denied", NO_FILES_C),
    case("interact", "write_denied", r"no permission to write in .*gid/tex/interactive"),
    # -- the user's own files where ours would go: never replaced (bytes checked by the snapshot)
    case("predict", "user_files", NOT_OURS),
    case("extract", "user_files", NOT_OURS),
    case("loop", "user_files", NOT_A_BAKE.format("frame", "png")),
    case("disp", "user_files", NOT_A_BAKE.format("disp", "exr")),
    skip("comp", "user_files", NO_FILES_C),
    case("interact", "user_files", NOT_A_BAKE.format("frame", "png")),
    # -- the prior's weights corrupt: torch and ONNX copies (each venv reports its own backend)
    case("predict", "weights_corrupt", r"(weights|ONNX prior) file \S+ is corrupt \(checksum mismatch\)"),
    skip("extract", "weights_corrupt", NO_PRIOR),
    skip("loop", "weights_corrupt", NO_PRIOR),
    skip("disp", "weights_corrupt", NO_PRIOR),
    skip("comp", "weights_corrupt", NO_PRIOR),
    skip("interact", "weights_corrupt", NO_PRIOR),
    # -- the ONNX export alone, corrupt (forces the ONNX backend, what Blender itself runs)
    case("predict", "weights_corrupt_onnx", r"ONNX prior file encoder\.onnx is corrupt \(checksum mismatch\)"),
    skip("extract", "weights_corrupt_onnx", NO_PRIOR),
    skip("loop", "weights_corrupt_onnx", NO_PRIOR),
    skip("disp", "weights_corrupt_onnx", NO_PRIOR),
    skip("comp", "weights_corrupt_onnx", NO_PRIOR),
    skip("interact", "weights_corrupt_onnx", NO_PRIOR),
    # -- the disk fills up part-way (ENOSPC from the exporters' low-level write, half a file on disk)
    case("predict", "disk_full", r"disk full while writing .*motion\.gidsv; nothing was written"),
    case("extract", "disk_full", r"disk full while writing .*motion\.gidsv; nothing was written"),
    case("loop", "disk_full", r"disk full while writing .*loop/frame_0002\.png; nothing was written"),
    case("disp", "disk_full", r"disk full while writing .*displacement/disp_node_0002\.exr; nothing was written"),
    skip("comp", "disk_full", NO_FILES_C),
    case("interact", "disk_full", r"disk full while writing .*interactive/frame_0002\.png; nothing was written"),
    # -- cancelled after the first step (the synchronous execute path, the job's own flag)
    case("predict", "cancel", CANCELLED.format("Predicting motion")),
    case("extract", "cancel", CANCELLED.format("Extracting motion")),
    case("loop", "cancel", CANCELLED.format("Baking loop")),
    case("disp", "cancel", CANCELLED.format("Baking displacement")),
    skip("comp", "cancel", NO_JOB_C),
    case("interact", "cancel", CANCELLED.format("Baking interaction")),
    # -- cancelled after the first step on the real worker thread (the modal path's timer ticks)
    case("predict", "cancel_threaded", CANCELLED.format("Predicting motion")),
    case("extract", "cancel_threaded", CANCELLED.format("Extracting motion")),
    case("loop", "cancel_threaded", CANCELLED.format("Baking loop")),
    case("disp", "cancel_threaded", CANCELLED.format("Baking displacement")),
    skip("comp", "cancel_threaded", NO_JOB_C),
    case("interact", "cancel_threaded", CANCELLED.format("Baking interaction")),
]

# Conditions after which Blender can no longer read the still (its size reads 0x0 on reopening).
IMAGE_FILE_BROKEN = {"image_missing", "image_corrupt", "image_unreadable"}


# ============================================================================== arranging
class Ctx:
    """One pair's world: the saved .blend's folder, the user's image, the operator's settings."""

    def __init__(self, op: str, cond: str, sb: dict, motion: Path, monkeypatch: pytest.MonkeyPatch,
                 request: pytest.FixtureRequest) -> None:
        self.op, self.cond = op, cond
        self.folder: Path = sb["dir"]
        self.image = sb["image"]
        self.motion = motion
        self.monkeypatch = monkeypatch
        self.request = request
        self.out = self.folder / "gid" / "tex"  # the default output folder //gid/{image}/


def _ready(ctx: Ctx) -> None:
    """The state in which ``ctx.op`` would succeed (tiny: 2 frames, 1 sampling step)."""
    image, folder = ctx.image, ctx.folder
    s = image.gid
    s.frames, s.steps, s.seed, s.device, s.amplitude = 2, 1, 3, "CPU", 1.25
    if ctx.op in ("loop", "disp", "interact"):
        shutil.copy(ctx.motion, folder / "in.gidsv")
        s.motion_path = "//in.gidsv"
    if ctx.op == "extract":
        write_video(folder / "sway.avi", frames=20)  # 1.3 s at 15 fps: enough to mirror, cheap
        s.video_path = "//sway.avi"
    # The user's image is on an Image Texture node (so the .blend keeps it); the bake_loop
    # operator's success would add a texture node beside it.
    add_material_with_texture(image)
    if ctx.op == "comp":  # a baked loop of two frames (the operator only plays it)
        baked = folder / "baked"
        baked.mkdir()
        for i in (1, 2):
            write_still(baked / f"frame_{i:04d}.png", seed=i)
        seq = nodes.load_image_sequence(str(baked / "frame_0001.png"), 2, f"GID loop {image.name}")
        props.set_loop_image(s, seq)
        s.loop_frames = 2
    if ctx.op == "interact":
        scene = bpy.context.scene
        gi = scene.gid_interactive
        gi.preview_enabled = False  # no "GID Preview" datablock, no per-change rendering
        gi.source_image = image
        scene.frame_start, scene.frame_end = 1, 3
        pokes.add_poke(scene, 1, (0.5, 0.5), (1.0, 0.0), 3.0)


def _random_bytes(path: Path, n: int = 4096, seed: int = 9) -> None:
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes())


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _fail_nth_write(ctx: Ctx, n: int, err: int) -> None:
    """The exporters' every byte passes ``atomic.write_file``: from the ``n``-th call on, each
    writes half its data and raises ``OSError(err)`` (as ``tests/test_exporters_sequence.py``)."""
    real, calls = atomic.write_file, []

    def flaky(path: Path, data: bytes) -> None:
        calls.append(path)
        if len(calls) >= n:
            real(path, data[: len(data) // 2])
            raise OSError(err, "No space left on device" if err == errno.ENOSPC else "Permission denied")
        real(path, data)

    ctx.monkeypatch.setattr(atomic, "write_file", flaky)


class CancelOnFirstStep(Job):
    """The Job ``execute`` makes, cancelled as soon as the engine reports its first step."""

    def step(self, done: int, total: int, what: str = "") -> None:
        self.cancel()
        super().step(done, total, what)


def _break(ctx: Ctx) -> None:
    """Apply ``ctx.cond`` to a world made ready for ``ctx.op``."""
    cond, image, folder, s = ctx.cond, ctx.image, ctx.folder, ctx.image.gid
    if cond == "image_missing":
        (folder / "tex.png").unlink()
    elif cond == "image_corrupt":
        assert tuple(image.size[:]) == (W, H)  # Blender has read the pixels before the damage
        _random_bytes(folder / "tex.png")
    elif cond == "image_unreadable":
        _random_bytes(folder / "tex.png")
        image.reload()
    elif cond == "packed":
        image.pack()
    elif cond == "generated":
        pass  # the painted image replaced tex.png before _ready (see test_error_matrix)
    elif cond == "no_motion":
        if ctx.op == "comp":
            # The baked loop's datablock is deleted: its name reference no longer resolves,
            # which reads as never baked (the files on disk are not looked for).
            bpy.data.images.remove(props.loop_image(s))
            assert props.loop_image(s) is None and s.loop_frames == 2
        else:
            s.motion_path = ""
    elif cond == "motion_missing":
        if ctx.op == "comp":
            shutil.rmtree(folder / "baked")
        else:
            (folder / "in.gidsv").unlink()
    elif cond in ("motion_truncated", "motion_random"):
        if ctx.op in ("predict", "extract"):  # an earlier motion file at the output path, damaged
            ctx.out.mkdir(parents=True)
            target = ctx.out / paths.MOTION_FILE
            shutil.copy(ctx.motion, target)
        else:
            target = folder / "in.gidsv"
        if cond == "motion_truncated":
            _truncate(target)
        else:
            _random_bytes(target)
    elif cond == "output_not_writable":
        (folder / "file.txt").write_text("in the way")
        s.output_dir = str(folder / "file.txt" / "sub")
    elif cond == "write_denied":
        _fail_nth_write(ctx, 1, errno.EACCES)
    elif cond == "user_files":
        where = {"predict": ("", paths.MOTION_FILE), "extract": ("", paths.MOTION_FILE),
                 "loop": ("loop", "frame_0001.png"), "disp": ("displacement", "disp_0001.exr"),
                 "interact": ("interactive", "frame_0001.png")}[ctx.op]
        sub = ctx.out / where[0]
        sub.mkdir(parents=True)
        (sub / where[1]).write_bytes(b"the user's own file, not a GID output")
        (sub / "notes.txt").write_text("also theirs")
    elif cond == "weights_corrupt":
        ctx.monkeypatch.setattr(predict, "WEIGHTS_DIR", ctx.request.getfixturevalue("corrupt_weights")["torch"])
    elif cond == "weights_corrupt_onnx":
        ctx.monkeypatch.setattr(predict, "WEIGHTS_DIR", ctx.request.getfixturevalue("corrupt_weights")["onnx"])
    elif cond == "disk_full":
        # predict/extract: their one file; loop/interact: frame 2 of 2-3; disp: frame 2 of the
        # second pass (Displace-node maps), after the first pass's 2 EXRs and sidecar were staged.
        _fail_nth_write(ctx, {"predict": 1, "extract": 1, "loop": 2, "disp": 5, "interact": 2}[ctx.op], errno.ENOSPC)
    elif cond == "cancel":
        ctx.monkeypatch.setattr(ops, "Job", CancelOnFirstStep)
    elif cond == "cancel_threaded":
        ctx.monkeypatch.setattr(worker, "Worker", CancelAfterFirstFrame)
    else:
        raise AssertionError(f"unknown condition {cond}")


@pytest.fixture(scope="session")
def corrupt_weights(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Copies of the shipped prior with one byte flipped: ``torch`` (a folder whose sibling
    ``*_onnx`` is the corrupt ONNX copy) and ``onnx`` (the ONNX export alone). The installed
    extension carries no torch weights (the zip leaves them out): there only the ONNX copy is hit."""
    assets = Path(predict.__file__).resolve().parents[1] / "assets"
    root = tmp_path_factory.mktemp("weights")
    out = {}
    for name, victim in (("motion_prior", None), ("motion_prior_onnx", "encoder.onnx")):
        src = assets / name
        if not src.is_dir():
            pytest.skip(f"the shipped weights {src} are not installed")
        dst = root / name
        shutil.copytree(src, dst)
        if victim is None:  # the smallest weight file the index lists
            weights = [p for p in dst.iterdir() if p.suffix == ".safetensors"]
            if not weights:
                out[name] = dst
                continue
            victim = min(weights, key=lambda p: p.stat().st_size).name
        data = bytearray((dst / victim).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (dst / victim).write_bytes(bytes(data))
        out[name] = dst
    return {"torch": out["motion_prior"], "onnx": out["motion_prior_onnx"]}


# ============================================================================== observing
def files_state(folder: Path) -> dict:
    """Every entry under ``folder`` (hidden ones too): folders as 'dir', files by content."""
    return {p.relative_to(folder).as_posix(): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}


def _tree_nodes(tree: Optional[bpy.types.NodeTree]) -> Optional[int]:
    return len(tree.nodes) if tree is not None else None


def data_state() -> dict:
    """Datablocks an operator could add or change: images, every node tree's node count, the
    scene's compositor, frame range and render size."""
    scene = bpy.context.scene
    trees = {f"material:{m.name}": _tree_nodes(m.node_tree) for m in bpy.data.materials}
    trees.update({f"group:{g.name}": len(g.nodes) for g in bpy.data.node_groups})
    trees.update({f"world:{w.name}": _tree_nodes(w.node_tree) for w in bpy.data.worlds})
    return {
        "images": sorted(i.name for i in bpy.data.images),
        "trees": trees,
        "compositor": _tree_nodes(nodes.compositor_tree(scene, create=False)),
        "scene": (scene.frame_start, scene.frame_end, scene.render.resolution_x, scene.render.resolution_y,
                  scene.render.resolution_percentage),
    }


def image_identity(image: bpy.types.Image, size: bool = True) -> dict:
    out = {"name": image.name, "file": str(bio.abspath(image.filepath)) if image.filepath else "",
           "source": image.source, "packed": image.packed_file is not None}
    if size:
        out["size"] = tuple(image.size[:])
    return out


def image_identity_without(identity: dict, keep_size: bool) -> dict:
    return identity if keep_size else {k: v for k, v in identity.items() if k != "size"}


def _props(group: Any, skip: tuple[str, ...] = ()) -> dict:
    out = {}
    for prop in group.bl_rna.properties:
        key = prop.identifier
        if key in ("rna_type", "name") + skip:
            continue
        value = getattr(group, key)
        if prop.type == "POINTER":
            value = value.name if value is not None else None
        elif not isinstance(value, str) and hasattr(value, "__len__"):
            value = tuple(value)
        out[key] = value
    return out


def settings_state(image: bpy.types.Image, with_status: bool = True) -> dict:
    scene = bpy.context.scene
    return {"image": _props(image.gid, () if with_status else ("status",)),
            "interactive": _props(scene.gid_interactive),
            "pokes": len(scene.gid_pokes)}


# ============================================================================== running
_REPORT_LINE = re.compile(r"^(Error|Warning): (.*)$", re.M)


def _blender_reports(capfd: pytest.CaptureFixture) -> list[tuple[str, str]]:
    """The ERROR and WARNING reports Blender printed (background mode prints every operator
    report as ``Error: ...`` / ``Warning: ...`` on stdout, flushed), as (level, message)."""
    out = capfd.readouterr().out
    return [(level.upper(), message) for level, message in _REPORT_LINE.findall(out)]


class ThreadedHarness(ops.GidJobOperator):
    """The threaded (modal) path without an event loop, as ``test_addon_ops.ModalHarness``:
    ``_prepare`` / ``_start`` / ``_tick`` / ``_conclude`` on a plain object recording reports."""

    def __init__(self, prepare: Callable) -> None:
        self.image = ""
        self.reports: list[tuple[str, str]] = []
        self._prepare_fn = prepare

    def prepare(self, context: bpy.types.Context) -> ops.Task:
        return self._prepare_fn(context)

    def report(self, level: set, message: str) -> None:
        self.reports.append((next(iter(level)), message))


def _prepare_fn(op: str, image_name: str) -> Callable:
    return {
        "predict": lambda c: prepare_predict(c, image_name),
        "extract": lambda c: prepare_extract(c, image_name),
        "loop": lambda c: prepare_bake_loop(c, image_name),
        "disp": lambda c: prepare_bake_displacement(c, image_name, True),
        "interact": lambda c: prepare_bake(c, image_name),
    }[op]


def _run_threaded(ctx: Ctx) -> tuple[set, list[tuple[str, str]]]:
    import time

    harness = ThreadedHarness(_prepare_fn(ctx.op, ctx.image.name))
    context = bpy.context
    task = harness._prepare(context)
    assert task is not None, harness.reports
    harness._start(context, task)
    deadline = time.monotonic() + 120.0
    while time.monotonic() < deadline:
        result = harness._tick(context)
        if result != {"RUNNING_MODAL"}:
            wm = context.window_manager
            assert not wm.gid.running and wm.gid.progress == 0.0 and worker.current() is None
            return result, harness.reports
        time.sleep(0.01)
    raise AssertionError("the worker did not finish")


def run_operator(ctx: Ctx, capfd: pytest.CaptureFixture) -> tuple[set, str]:
    """Call the operator as a script would; (result, the one message that says why)."""
    if ctx.cond == "cancel_threaded":
        result, said = _run_threaded(ctx)
        said = [(level, m) for level, m in said if level in ("ERROR", "WARNING")]
    else:
        op = getattr(bpy.ops.gid, OPERATORS[ctx.op])
        kwargs = {"image": ctx.image.name}
        if ctx.op == "disp":
            kwargs["setup_compositor"] = True  # a success would build the compositor setup too
        capfd.readouterr()
        try:
            result = op("EXEC_DEFAULT", **kwargs)
        except RuntimeError as exc:  # background mode: an ERROR report raises, with its text
            text = str(exc)
            assert text.startswith("Error: ") and text.endswith("\n") and text.count("\n") == 1, repr(text)
            said = _blender_reports(capfd)
            assert said == [("ERROR", text[len("Error: "):-1])], (said, text)
            return {"CANCELLED"}, said[0][1]
        said = _blender_reports(capfd)
    assert result == {"CANCELLED"}, (result, said)
    assert len(said) == 1, said
    return result, said[0][1]


# ============================================================================== the test
@pytest.mark.parametrize("op, cond, expected", MATRIX)
def test_error_matrix(op: str, cond: str, expected: str, scene_blend: dict, motion_file: Path,
                      monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
                      capfd: pytest.CaptureFixture) -> None:
    ctx = Ctx(op, cond, scene_blend, motion_file, monkeypatch, request)
    if cond == "generated":  # the user's image is a painted one (tex.png, unused, goes)
        bpy.data.images.remove(ctx.image)
        ctx.image = bpy.data.images.new("painted", W, H)
    _ready(ctx)
    _break(ctx)

    files_before, data_before = files_state(ctx.folder), data_state()
    image_before, settings_before = image_identity(ctx.image), settings_state(ctx.image, with_status=False)

    result, message = run_operator(ctx, capfd)

    assert result == {"CANCELLED"}
    assert message and "\n" not in message.strip(), message
    assert re.search(expected, message), f"{message!r} does not match {expected!r}"
    assert "Traceback" not in message and "internal error" not in message
    files_after = files_state(ctx.folder)
    assert not [p for p in files_after if STAGING_PREFIX in p or ".gid-tmp-" in p], files_after
    assert files_after == files_before  # nothing new, nothing removed, the user's bytes identical
    assert data_state() == data_before
    image = bpy.data.images[image_before["name"]]
    assert image_identity(image) == image_before
    assert settings_state(image, with_status=False) == settings_before
    status = image.gid.status
    assert status == "" or status.startswith(("Error: ", "Cancelled")), status
    settings_after = settings_state(image)

    monkeypatch.undo()  # the save and reopen below run with the real writers and workers
    saved = ctx.folder / "after.blend"
    assert bpy.ops.wm.save_as_mainfile(filepath=str(saved), check_existing=False) == {"FINISHED"}
    assert bpy.ops.wm.open_mainfile(filepath=str(saved)) == {"FINISHED"}
    assert bpy.data.filepath == str(saved)
    image = bpy.data.images.get(image_before["name"])
    assert image is not None, sorted(bpy.data.images.keys())
    keep_size = cond not in IMAGE_FILE_BROKEN
    assert image_identity(image, size=keep_size) == image_identity_without(image_before, keep_size)
    assert settings_state(image) == settings_after
    assert sorted(i.name for i in bpy.data.images) == data_before["images"]


def test_the_matrix_is_complete() -> None:
    """Every operator meets every condition (skips included), once; enough pairs really run."""
    pairs = [tuple(p.values[:2]) for p in MATRIX]
    conditions = list(dict.fromkeys(c for _, c in pairs))
    assert len(pairs) == len(set(pairs)) == len(OPERATORS) * len(conditions)
    assert {o for o, _ in pairs} == set(OPERATORS)
    running = [p for p in MATRIX if not p.marks]
    assert len(running) >= 30
    assert all(p.values[2] for p in running)
