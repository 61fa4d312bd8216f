"""The add-on's logic that needs no Blender (``addon/utils``), tested without bpy: output paths and
owners, the pokes' F-curve evaluation, the preview's caches, pixel layouts, the worker thread and
the engines the operators go through. Blender's F-curves and pokes are stood in for by plain
objects with the same attributes.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from gid.addon.utils import caches, engines, paths, pixels, worker
from gid.addon.utils import pokes as poke_logic
from gid.addon.utils.errors import OutputConflictError, OutputFolderError
from gid.exporters.sequence import write_image_sequence
from gid.gid_engine.errors import Cancelled
from gid.gid_engine.progress import Job

from conftest import REPO, H, W, random_volume, write_still

UTILS = REPO / "addon" / "utils"
BLENDER_MODULES = {"bpy", "bpy_extras", "gpu", "gpu_extras", "mathutils", "bmesh", "addon_utils"}


# ----------------------------------------------------------------------------- no bpy
def test_utils_import_nothing_of_blender() -> None:
    found = []
    for path in sorted(UTILS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in BLENDER_MODULES]
    assert found == [] and len(list(UTILS.glob("*.py"))) >= 7


@pytest.mark.skipif(bool(os.environ.get("GID_INSTALLED_EXTENSION")),
                    reason="the installed extension is reached through bpy (tests/installed/sitecustomize.py)")
def test_the_add_on_package_and_its_utils_import_where_bpy_cannot() -> None:
    names = sorted(f"gid.addon.utils.{p.stem}" for p in UTILS.glob("*.py") if p.stem != "__init__")
    code = ("import sys\nsys.modules['bpy'] = None\nimport importlib\n"
            f"for m in ['gid', 'gid.addon', 'gid.addon.utils', *{names!r}]: importlib.import_module(m)\n"
            "import gid.addon as a\nassert a.FEATURES and not a.is_registered()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


# ----------------------------------------------------------------------------- paths
def test_safe_names_and_templates() -> None:
    assert paths.safe_name("Tree bark.png") == "Tree_bark"
    assert paths.safe_name("a/b\\c:d.jpeg") == "a_b_c_d"
    assert paths.safe_name("...") == "image"
    assert paths.expand_output_template("//gid/{image}/", "My Tex.001.png") == "//gid/My_Tex.001/"
    assert paths.expand_output_template("", "x.png") == "//gid/x/"
    keys = list(paths.output_keys("tex a.png"))
    assert keys[0] == "tex_a" and len(set(keys)) == len(keys) and keys[1] != next(iter(paths.output_keys("tex_a.png")))
    assert paths.frame_file_name("frame", 1, "png") == "frame_0001.png"


def test_folder_owners(tmp_path: Path) -> None:
    root = tmp_path / "gid" / "tex"
    assert paths.folder_owner(root) is None  # nobody's (not even there)
    root.mkdir(parents=True)
    paths.claim_folder(root, "tex.png", tmp_path / "tex.png")
    owner = paths.folder_owner(root)
    assert owner == paths.Owner("tex.png", str(tmp_path / "tex.png"))
    assert owner.is_image("tex.png", None) and not owner.is_image("other.png", tmp_path / "tex.png")
    (root / paths.OWNER_FILE).write_text("{not json")
    assert paths.folder_owner(root) == paths.Owner("(unreadable owner file)")  # never guessed to be ours
    error = paths.owner_conflict(root, paths.Owner("a.png"), "b.png", templated=True)
    assert isinstance(error, OutputConflictError) and "image 'a.png', not of 'b.png'; rename the image" in str(error)


def test_writable_folders(tmp_path: Path) -> None:
    assert paths.first_existing_parent(tmp_path / "a" / "b") == tmp_path
    paths.check_writable_folder(tmp_path / "a" / "b")  # creatable: fine
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputFolderError, match="is a file, not a folder"):
        paths.check_writable_folder(tmp_path / "f" / "sub")
    with pytest.raises(OutputFolderError, match="is a file; choose a folder"):
        paths.check_writable_folder(tmp_path / "f")


def test_sequences_ours_nobodys_and_theirs(tmp_path: Path) -> None:
    folder = tmp_path / "loop"
    assert paths.own_sequence(folder, "frame", "png") is None
    assert paths.overwrite_policy(folder, "frame", "png") is False
    frames = [np.full((4, 6, 3), 0.5, np.float32)] * 3
    write_image_sequence(frames, folder, "frame", count=3, fmt="png", sidecar={"test": True})
    assert paths.own_sequence(folder, "frame", "png") is True and paths.overwrite_policy(folder, "frame", "png")
    assert paths.previous_frame_count(folder, "frame") == 3
    assert paths.remove_stale_frames(folder, "frame", "png", 1, 3) == 2
    assert sorted(p.name for p in folder.iterdir()) == ["frame.json", "frame_0001.png"]
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "frame_0001.png").write_bytes(b"the user's own file")
    assert paths.own_sequence(theirs, "frame", "png") is False
    with pytest.raises(OutputConflictError, match="not a GID bake"):
        paths.overwrite_policy(theirs, "frame", "png")
    assert paths.previous_frame_count(theirs, "frame") == 0


def test_motion_overwrite_policy(tmp_path: Path) -> None:
    from gid.gid_engine.motion.sv_file import save_spectral_volume

    target = tmp_path / paths.MOTION_FILE
    assert paths.motion_overwrite_policy(target) is False
    save_spectral_volume(random_volume(), target)
    assert paths.motion_overwrite_policy(target) is True
    target.write_bytes(b"not a motion file")
    with pytest.raises(OutputConflictError, match="is not a GID motion file"):
        paths.motion_overwrite_policy(target)


def test_leave_no_trace(tmp_path: Path) -> None:
    root = tmp_path / "gid" / "tex"
    folder = root / "loop"

    def fails(job: Job) -> None:
        folder.mkdir(parents=True)
        raise Cancelled()

    with pytest.raises(Cancelled):  # the folders a failed job made go again, and nothing is claimed
        paths.leave_no_trace(fails, folder, claim=(root, "tex.png", None))(Job())
    assert list(tmp_path.iterdir()) == []

    def leaves_a_file(job: Job) -> None:
        folder.mkdir(parents=True)
        (folder / "notes.txt").write_text("not reported by the job: not its to remove")
        raise Cancelled()

    with pytest.raises(Cancelled):
        paths.leave_no_trace(leaves_a_file, folder)(Job())
    assert (folder / "notes.txt").exists()  # and the folders holding it stay

    def works(job: Job) -> str:
        return "done"

    assert paths.leave_no_trace(works, folder, claim=(root, "tex.png", None))(Job()) == "done"
    assert json.loads((root / paths.OWNER_FILE).read_text())["image"] == "tex.png"


def test_relative_paths_follow_a_save_as(tmp_path: Path) -> None:
    old, new = str(tmp_path / "a"), str(tmp_path / "b" / "c")
    assert paths.remap_relative("//motion.gidsv", old, new) == "//../../a/motion.gidsv"
    assert paths.remap_relative("/abs/motion.gidsv", old, new) == "/abs/motion.gidsv"
    assert paths.remap_relative("//x", old, old) == "//x"
    assert paths.save_as_dirs("", str(tmp_path / "new.blend")) is None  # a first save moves nothing
    assert paths.save_as_dirs(str(tmp_path / "a" / "s.blend"), None) is None
    assert paths.save_as_dirs(str(tmp_path / "a" / "s.blend"), str(tmp_path / "b" / "s.blend")) == (
        str(tmp_path / "a"), str(tmp_path / "b"))


# ----------------------------------------------------------------------------- pokes
class Curve:
    """An F-curve as the evaluation needs it: linear between (frame, value) keys, constant outside."""

    def __init__(self, data_path: str, keys: list[tuple[float, float]], array_index: int = 0,
                 mute: bool = False) -> None:
        self.data_path, self.array_index, self.mute = data_path, array_index, mute
        self.keys = sorted(keys)

    def evaluate(self, frame: float) -> float:
        xs, ys = zip(*self.keys)
        return float(np.interp(frame, xs, ys))


def poke(**values: object) -> SimpleNamespace:
    defaults = dict(frame=1, position=(0.5, 0.5), direction=(1.0, 0.0), strength=3.0, radius=0.05, duration=0.0,
                    enabled=True)
    return SimpleNamespace(**{**defaults, **values})


def test_poke_paths() -> None:
    assert poke_logic.parse_poke_path("gid_pokes[12].strength") == (12, "strength")
    assert poke_logic.parse_poke_path("frame_current") is None
    assert poke_logic.poke_path(3, "radius") == "gid_pokes[3].radius"


def test_keyed_values_are_read_at_the_pokes_frame() -> None:
    fcurves = [Curve("gid_pokes[0].strength", [(10, 0.0), (20, 5.0)]),
               Curve("gid_pokes[0].position", [(10, 0.2), (20, 0.4)], array_index=1),
               Curve("gid_pokes[1].radius", [(0, 1.0)], mute=True),  # muted: not animated
               Curve("frame_current", [(0, 1.0)])]
    curves = poke_logic.group_poke_curves(fcurves)
    assert set(curves) == {0} and set(curves[0]) == {("strength", 0), ("position", 1)}
    items = [poke(frame=15, position=(0.5, 0.9)), poke(frame=3, radius=0.2)]
    values = poke_logic.poke_values(items[0], curves[0], 15.0)
    assert values["strength"] == pytest.approx(2.5) and values["position"] == pytest.approx((0.5, 0.3))
    got = poke_logic.engine_pokes(items, curves)
    assert len(got) == 2
    first, second = got
    # UV (y up) -> the engine's image convention (y down)
    assert (first.frame, first.x, first.y, first.dx, first.dy) == pytest.approx((15.0, 0.5, 0.7, 1.0, 0.0))
    assert first.strength == pytest.approx(2.5) and second.radius == pytest.approx(0.2)


def test_drags_with_keys_become_one_frame_drags() -> None:
    curves = poke_logic.group_poke_curves([Curve("gid_pokes[0].strength", [(25, 1.0), (28, 4.0)])])
    split = poke_logic.engine_pokes([poke(frame=25, direction=(0.0, 1.0), duration=4.0)], curves)
    assert [(p.frame, p.duration) for p in split] == [(25.0, 1.0), (26.0, 1.0), (27.0, 1.0), (28.0, 1.0)]
    assert [p.strength for p in split] == pytest.approx([1.0, 2.0, 3.0, 4.0])
    assert all(p.dy == -1.0 for p in split)
    (whole,) = poke_logic.engine_pokes([poke(frame=25, duration=2.5)], {})  # unanimated: one drag
    assert (whole.frame, whole.duration) == (25.0, 2.5)
    assert poke_logic.engine_pokes([poke(enabled=False), poke(direction=(0.0, 0.0))], {}) == ()
    off = poke_logic.group_poke_curves([Curve("gid_pokes[0].enabled", [(0, 1.0), (10, 1.0), (10.5, 0.0)])])
    assert len(poke_logic.engine_pokes([poke(frame=5)], off)) == 1
    assert poke_logic.engine_pokes([poke(frame=12)], off) == ()


def test_removing_a_poke_moves_later_curves_down() -> None:
    fcurves = [Curve("gid_pokes[2].radius", [(0, 1)]), Curve("gid_pokes[0].strength", [(0, 1)]),
               Curve("gid_pokes[1].strength", [(0, 1)]), Curve("gid_pokes[1].position", [(0, 1)], 1),
               Curve("frame_current", [(0, 1)])]
    remove, renames = poke_logic.removal_plan(fcurves, 1)
    assert [fc.data_path for fc in remove] == ["gid_pokes[1].strength", "gid_pokes[1].position"]
    assert [(fc.data_path, path) for fc, path in renames] == [("gid_pokes[2].radius", "gid_pokes[1].radius")]
    assert poke_logic.removal_plan(None, 0) == ([], [])


def test_drag_to_poke_maps_a_mouse_drag() -> None:
    position, direction, strength = poke_logic.drag_to_poke((0.25, 0.5), (0.25 + 30 / 64, 0.5), (64, 48), 0.1)
    assert position == (0.25, 0.5) and direction == pytest.approx((1.0, 0.0)) and strength == pytest.approx(3.0)
    _, direction, strength = poke_logic.drag_to_poke((0.5, 0.5), (0.5 + 3 / 64, 0.5 + 4 / 48), (64, 48), 1.0)
    assert direction == pytest.approx((0.6, 0.8)) and strength == pytest.approx(5.0)
    assert poke_logic.drag_to_poke((0.5, 0.5), (0.5, 0.5), (64, 48), 1.0) is None


def test_overlay_arrows() -> None:
    lines = poke_logic.arrow_lines(0.0, 0.0, 100.0, 0.0)
    assert len(lines) == 6 and lines[:2] == [(0.0, 0.0), (100.0, 0.0)]
    assert all(x < 100.0 for x, _ in lines[3::2])  # the head points back from the tip
    assert poke_logic.arrow_lines(1.0, 1.0, 1.0, 1.0) == [(1.0, 1.0), (1.0, 1.0)]
    arrow = poke_logic.overlay_arrow((0.5, 0.5), (0.0, 2.0), -1.0, lambda u, v: (100 * u, 100 * v))
    assert arrow[:2] == [(50.0, 50.0), (50.0, pytest.approx(32.0))]  # 12 + 6 px, against the direction
    assert poke_logic.overlay_arrow((0.5, 0.5), (0.0, 0.0), 1.0, lambda u, v: (u, v)) is None
    assert poke_logic.is_active(10, 0.0, 13) and not poke_logic.is_active(10, 0.0, 13.5)
    assert poke_logic.is_active(10, 8.0, 18) and not poke_logic.is_active(10, 8.0, 9)


# ----------------------------------------------------------------------------- caches
def test_lru_stores_keep_the_most_recent() -> None:
    from collections import OrderedDict

    store: OrderedDict = OrderedDict()
    for k in "abc":
        caches.remember(store, (k,), k)
    store.move_to_end(("a",))  # as a hit would after get()
    caches.remember(store, ("d",), "d")
    assert list(store) == [("c",), ("a",), ("d",)] and caches.MAX_ENTRIES == 3


def test_keys() -> None:
    assert caches.basis_key("m.gidsv", 1, 2, (), "ALL", 7) == caches.basis_key("m.gidsv", 1, 2, (), "ALL", 3)
    assert caches.basis_key("m.gidsv", 1, 2, (), "PEAKS", 7) != caches.basis_key("m.gidsv", 1, 2, (), "PEAKS", 3)
    assert caches.simulator_key(("b",), 0.03, 1.0, 1.0, 24.0) == caches.simulator_key(("b",), 0.03 + 1e-12, 1.0,
                                                                                          1.0, 24.0)


def test_masks_are_read_again_only_while_painted() -> None:
    cache = caches.PreviewCaches()
    reads = []
    content = {"m": np.ones((2, 3), np.float32)}

    def read() -> np.ndarray:
        reads.append(1)
        return content["m"].copy()

    key1, m1 = cache.mask("Mask", ("id",), False, read)
    key2, _ = cache.mask("Mask", ("id",), False, read)
    assert key1 == key2 and len(reads) == 1 and m1.shape == (2, 3)
    key3, _ = cache.mask("Mask", ("id",), True, read)  # being painted, same pixels: same key
    assert key3 == key1 and len(reads) == 2
    content["m"] = np.zeros((2, 3), np.float32)
    key4, m4 = cache.mask("Mask", ("id",), True, read)
    assert key4 != key1 and float(m4.max()) == 0.0
    cache.status["Scene"] = "x"
    cache.clear()
    assert cache.masks == {} and cache.status == {}


# ----------------------------------------------------------------------------- pixels
def test_blender_rows_round_trip() -> None:
    frame = np.random.default_rng(0).random((3, 4, 4)).astype(np.float32)
    flat = pixels.bottom_up(frame, 4)
    assert flat.shape == (48,) and np.array_equal(flat[:16].reshape(4, 4), frame[2])  # bottom row first
    assert np.array_equal(pixels.top_down(flat, 4, 3, 4), frame)
    rgb = pixels.bottom_up(frame[:, :, :3], 4).reshape(3, 4, 4)
    assert np.all(rgb[:, :, 3] == 1.0)  # missing alpha made opaque


def test_masks_from_alpha_or_brightness() -> None:
    px = np.ones((2, 2, 4), np.float32)
    px[0, 0, :3] = 0.0
    assert pixels.mask_from_pixels(px)[0, 0] == 0.0  # opaque: brightness
    px[1, 1, 3] = 0.25
    m = pixels.mask_from_pixels(px)
    assert m[1, 1] == pytest.approx(0.25) and m[0, 0] == 1.0  # some transparency: alpha


def test_still_pixels_resized_and_decoded() -> None:
    px = np.full((4, 8, 3), 0.5, np.float32)
    out = pixels.still_from_pixels(px, 4, 2, srgb=True)
    assert out.shape == (2, 4, 4) and np.allclose(out[:, :, 3], 1.0)
    assert out[0, 0, 0] == pytest.approx(0.214, abs=1e-3)  # sRGB 0.5 is linear 0.214
    assert pixels.still_from_pixels(px, 8, 4, srgb=False)[0, 0, 0] == pytest.approx(0.5)


# ----------------------------------------------------------------------------- worker
def test_worker_reports_errors_as_one_line() -> None:
    def boom(job: Job) -> None:
        raise Cancelled()

    assert worker.run_job(boom, Job()).status == "cancelled"
    w = worker.Worker(lambda job: 1 / 0).start()
    assert w.join(10.0)
    _, outcome = w.poll()
    assert outcome.status == "error" and "ZeroDivisionError" in outcome.error
    assert worker.progress_fraction(3, 4) == 0.75 and worker.progress_fraction(1, 0) == 0.0


def test_one_job_at_a_time() -> None:
    import threading

    go = threading.Event()

    def waits(job: Job) -> int:
        job.step(1, 2, "waiting")
        go.wait(10.0)
        job.check()
        return 7

    first = worker.start(waits, "gid-test")
    try:
        with pytest.raises(Exception, match="another GID job is running"):
            worker.start(waits)
        assert worker.current() is first and worker.cancel_current()
    finally:
        go.set()
        assert first.join(10.0)
    progress, outcome = first.poll()
    assert progress == (1, 2, "waiting") and outcome.status == "cancelled"
    worker.release(first)
    assert worker.current() is None and not worker.cancel_current()


# ----------------------------------------------------------------------------- engines
def test_render_options_map_zero_to_engine_defaults() -> None:
    opts = engines.render_options(0, 0.0, 24.0, 2.0, 0.5, "GPU")
    assert (opts.frames, opts.fps, opts.slowmo, opts.amplitude, opts.device) == (None, 24.0, 2.0, 0.5, "gpu")
    opts = engines.render_options(8, 12.5, 24.0, 1.0, 1.0, "AUTO")
    assert (opts.frames, opts.fps, opts.device, opts.backend) == (8, 12.5, "auto", "onnx")


def test_one_engine_per_device_and_what_it_says(capsys: pytest.CaptureFixture) -> None:
    engines.release()
    cpu = engines.engine("CPU")
    assert engines.engine("cpu") is cpu and cpu.device == "cpu" and engines.engine("auto") is not cpu
    with engines.listening() as heard:
        cpu.log("the GPU fell back")
        with engines.listening() as inner:
            cpu.log("nested")
        assert inner == ["nested"]
    assert heard == ["the GPU fell back"]
    cpu.log("nobody listens")
    assert "GID: nobody listens" in capsys.readouterr().err
    engines.release()
    assert engines.engine("cpu") is not cpu


def test_the_engine_writes_what_the_add_on_bakes(tmp_path: Path) -> None:
    """The add-on's bakes go through these Engine methods: a loop, both displacement map sets,
    a motion file (a cancelled job writes none)."""
    from gid.gid_engine.motion.sv_file import load_spectral_volume

    still = tmp_path / "tex.png"
    write_still(still)
    volume = random_volume(h=H, w=W, seed=5)
    engine = engines.engine("cpu")
    options = engine.render_options(frames=3, renderer="splat")
    result = engine.render_to_dir(still, volume, tmp_path / "loop", options, prefix="frame")
    assert result.frames == 3 and sorted(p.name for p in result.files) == [
        "frame.json", "frame_0001.png", "frame_0002.png", "frame_0003.png"]
    sidecar = json.loads((tmp_path / "loop" / "frame.json").read_text())
    assert sidecar["params"]["options"]["device"] == "cpu" and sidecar["params"]["options"]["renderer"] == "splat"
    files = engine.displace_to_dir((W, H), volume, tmp_path / "disp", options)
    assert len([p for p in files if p.suffix == ".exr"]) == 6
    target = engine.save_motion(volume, tmp_path / "m" / "motion.gidsv")
    assert load_spectral_volume(target).K == volume.K
    job = Job()
    job.cancel()
    with pytest.raises(Cancelled):
        engine.save_motion(volume, tmp_path / "n" / "motion.gidsv", job=job)
    assert not (tmp_path / "n").exists()


def test_every_bake_hears_what_making_the_renderer_said(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The engine keeps its renderer's sessions between bakes, and still tells each bake that the
    GPU fell back to the CPU (the add-on reports it), not only the first."""
    import onnxruntime as ort

    real_session, real_providers = ort.InferenceSession, ort.get_available_providers

    def session(*args: object, **kwargs: object) -> object:
        if "CUDAExecutionProvider" in (kwargs.get("providers") or []):
            raise RuntimeError("CUDA failure 35: CUDA driver version is insufficient")
        return real_session(*args, **kwargs)

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", *real_providers()])
    monkeypatch.setattr(ort, "InferenceSession", session)
    still = tmp_path / "tex.png"
    write_still(still)
    volume = random_volume(h=H, w=W, seed=5)
    engines.release()
    try:
        gpu = engines.engine("GPU")
        made, options = [], gpu.render_options(frames=2, renderer="splat")
        for out in ("a", "b"):
            with engines.listening() as heard:
                result = gpu.render_to_dir(still, volume, tmp_path / out, options)
            made.append(gpu.frame_renderer("splat"))
            assert heard == result.messages and len(heard) == 1, heard
            assert "GPU (CUDA) provider failed" in heard[0] and "running on the CPU" in heard[0]
        assert made[0] is made[1]  # one renderer, made once
    finally:
        engines.release()
