"""The add-on's operators end to end with the real bpy (headless Blender 4.5), on tiny files.

The fixtures (``conftest.py``): a saved .blend in ``tmp_path`` with a 64x48 still loaded from a
PNG, the add-on registered around each test.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from gid.addon import blender_io as bio
from gid.addon import ops, props
from gid.addon.loops.ops import prepare_bake_displacement, prepare_bake_loop
from gid.addon.nodes import compositor_tree
from gid.addon.utils import worker
from gid.exporters.opencv import cv2
from gid.gid_engine.progress import Job
from gid.gid_engine.motion.sv_file import load_spectral_volume

from blender_helpers import CancelAfterFirstFrame, add_material_with_texture, use_motion
from conftest import H, W, files_under, write_video


# ----------------------------------------------------------------------------- operators
def test_extract_motion_from_video(scene_blend: dict) -> None:
    folder, image = scene_blend["dir"], scene_blend["image"]
    write_video(folder / "sway.avi")
    image.gid.video_path = "//sway.avi"
    assert bpy.ops.gid.extract_motion("EXEC_DEFAULT", image=image.name) == {"FINISHED"}
    assert image.gid.motion_path == "//gid/tex/motion.gidsv"
    sv = load_spectral_volume(folder / "gid" / "tex" / "motion.gidsv")
    assert (sv.width, sv.height, sv.K) == (W, H, 16)
    assert sv.extra["padding"] == "mirror"
    # The clip sways sideways at 1 Hz by 2 px: bin k = 1 Hz * 150 / 30 = 5 dominates dx (A/2 = 1 px
    # for a pure sinusoid; the mirrored 2.7 s clip spreads some of it to neighbouring bins).
    coeffs = np.abs(sv.complex_coeffs())
    dx = coeffs[:, 0, 8:-8, 8:-8].mean(axis=(1, 2))
    dy = coeffs[:, 1, 8:-8, 8:-8].mean(axis=(1, 2))
    assert int(np.argmax(dx[1:])) + 1 == 5
    assert 0.4 < dx[5] < 1.2
    assert dy[5] < 0.2 * dx[5]  # sideways only
    assert "Extracted 64x48 motion" in image.gid.status
    # A second extraction replaces our own file (it is ours) instead of failing.
    assert bpy.ops.gid.extract_motion("EXEC_DEFAULT", image=image.name) == {"FINISHED"}


def test_bake_loop_adds_sequence_and_node(scene_blend: dict, motion_file: Path) -> None:
    folder, image = scene_blend["dir"], scene_blend["image"]
    mat, user_node = add_material_with_texture(image)
    tree = mat.node_tree
    before = {
        "image": user_node.image.name, "location": tuple(user_node.location),
        "links": sorted((link.from_node.name, link.from_socket.identifier, link.to_node.name,
                         link.to_socket.identifier)
                        for link in tree.links),
        "nodes": len(tree.nodes),
    }
    use_motion(image, motion_file)
    image.gid.frames = 6
    image.gid.amplitude = 1.5

    assert bpy.ops.gid.bake_loop("EXEC_DEFAULT") == {"FINISHED"}  # image and node from the material

    out = folder / "gid" / "tex" / "loop"
    assert files_under(out) == sorted([f"frame_{i:04d}.png" for i in range(1, 7)] + ["frame.json"])
    sidecar = json.loads((out / "frame.json").read_text())
    assert sidecar["files"]["count"] == 6 and sidecar["params"]["options"]["amplitude"] == 1.5

    seq = props.loop_image(image.gid)
    assert seq is not None and seq.source == "SEQUENCE"
    assert seq.filepath == "//gid/tex/loop/frame_0001.png"
    assert image.gid.loop_frames == 6

    # The user's node is untouched; one new texture node plays the sequence beside it.
    assert user_node.image == image and tuple(user_node.location) == before["location"]
    links = sorted((link.from_node.name, link.from_socket.identifier, link.to_node.name, link.to_socket.identifier)
                   for link in tree.links)
    assert links == before["links"]
    ours = [n for n in tree.nodes if n.bl_idname == "ShaderNodeTexImage" and n.image == seq]
    assert len(tree.nodes) == before["nodes"] + 1 and len(ours) == 1
    iu = ours[0].image_user
    assert (iu.frame_duration, iu.frame_start, iu.frame_offset, iu.use_cyclic) == (6, 1, 0, True)
    assert abs(ours[0].location.x - user_node.location.x) < 1.0 and ours[0].location.y < user_node.location.y

    # Frame 1 is the untouched still (anchored); each frame file reads back in Blender as on disk.
    first = cv2.imread(str(out / "frame_0001.png"))[:, :, ::-1]
    assert np.abs(first.astype(int) - scene_blend["still"].astype(int)).max() <= 1
    for n in (1, 4, 6):
        path = out / f"frame_{n:04d}.png"
        on_disk = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:, :, ::-1].astype(np.float32) / 255.0
        loaded = bpy.data.images.load(str(path))
        in_blender = bio.read_pixels(loaded)[:, :, :3]
        assert np.abs(in_blender - on_disk).max() <= 1 / 255 + 1e-6
        bpy.data.images.remove(loaded)
    moved = cv2.imread(str(out / "frame_0004.png")).astype(int)
    assert np.abs(moved - first[:, :, ::-1].astype(int)).mean() > 1.0  # the loop does move

    # Re-baking replaces our bake (fewer frames: the stale ones go), reuses the datablock,
    # and does not add a second node.
    image.gid.frames = 4
    n_images = len(bpy.data.images)
    assert bpy.ops.gid.bake_loop("EXEC_DEFAULT") == {"FINISHED"}
    assert files_under(out) == sorted([f"frame_{i:04d}.png" for i in range(1, 5)] + ["frame.json"])
    assert len(bpy.data.images) == n_images and props.loop_image(image.gid) == seq
    assert len(tree.nodes) == before["nodes"] + 1 and ours[0].image_user.frame_duration == 4


def test_compositor_loop_plays_frame_n(scene_blend: dict, motion_file: Path, tmp_path: Path) -> None:
    """Frame N of the sequence as Blender plays it (compositor render) equals the file frame_N."""
    image = scene_blend["image"]
    use_motion(image, motion_file)
    image.gid.frames = 6
    assert bpy.ops.gid.bake_loop("EXEC_DEFAULT", image=image.name) == {"FINISHED"}
    assert bpy.ops.gid.setup_compositor_loop("EXEC_DEFAULT", image=image.name) == {"FINISHED"}
    scene = bpy.context.scene
    assert (scene.render.resolution_x, scene.render.resolution_y, scene.frame_start, scene.frame_end) == (W, H, 1, 6)
    tree = compositor_tree(scene, create=False)
    image_nodes = [n for n in tree.nodes if n.bl_idname == "CompositorNodeImage"]
    assert len(image_nodes) == 1 and image_nodes[0].image == props.loop_image(image.gid)
    assert image_nodes[0].frame_duration == 6

    scene.view_settings.view_transform = "Standard"
    scene.render.dither_intensity = 0.0
    scene.render.image_settings.file_format = "PNG"
    out = scene_blend["dir"] / "gid" / "tex" / "loop"
    for n in (2, 5):
        scene.frame_set(n)
        scene.render.filepath = str(tmp_path / f"render_{n}.png")
        bpy.ops.render.render(write_still=True)
        rendered = cv2.imread(str(tmp_path / f"render_{n}.png"))[:, :, :3].astype(int)
        expected = cv2.imread(str(out / f"frame_{n:04d}.png"))[:, :, :3].astype(int)
        assert np.abs(rendered - expected).max() <= 1
    other = cv2.imread(str(out / "frame_0003.png")).astype(int)
    assert np.abs(rendered - other).max() > 1  # frames differ, so the match above is frame-exact


def test_bake_displacement_loads_non_color_maps(scene_blend: dict, motion_file: Path) -> None:
    folder, image = scene_blend["dir"], scene_blend["image"]
    use_motion(image, motion_file)
    image.gid.frames = 4
    assert bpy.ops.gid.bake_displacement("EXEC_DEFAULT", image=image.name, setup_compositor=True) == {"FINISHED"}

    out = folder / "gid" / "tex" / "displacement"
    names = files_under(out)
    assert names == sorted([f"disp_{i:04d}.exr" for i in range(1, 5)] + ["disp.json"]
                           + [f"disp_node_{i:04d}.exr" for i in range(1, 5)] + ["disp_node.json"])
    scale = json.loads((out / "disp_node.json").read_text())["params"]["scale"]
    settings = image.gid
    assert settings.displacement_scale == pytest.approx(scale, rel=1e-6) and scale > 0
    seq = props.displacement_image(settings)
    assert seq.source == "SEQUENCE" and seq.filepath == "//gid/tex/displacement/disp_node_0001.exr"
    assert seq.colorspace_settings.name == "Non-Color"
    assert settings.displacement_frames == 4

    # Frame 3's vectors as Blender reads the EXR equal the file's (no colour transform: data).
    path = out / "disp_node_0003.exr"
    on_disk = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    loaded = bpy.data.images.load(str(path))
    loaded.colorspace_settings.name = "Non-Color"
    assert np.abs(bio.read_pixels(loaded)[:, :, :3] - on_disk[:, :, :3]).max() < 1e-5
    assert 0.05 < np.abs(on_disk[:, :, :2]).max() <= 1.0 + 1e-3  # vectors are divided by the scale

    tree = compositor_tree(bpy.context.scene, create=False)
    displace = [n for n in tree.nodes if n.bl_idname == "CompositorNodeDisplace"]
    assert len(displace) == 1
    if "X Scale" in displace[0].inputs:  # Blender 4.x: the node scales its vectors
        assert displace[0].inputs["X Scale"].default_value == pytest.approx(scale, rel=1e-6)
        assert displace[0].inputs["Y Scale"].default_value == pytest.approx(scale, rel=1e-6)
    else:  # Blender 5.0: no scale inputs; a Vector Math node scales the vectors first
        (multiply,) = [n for n in tree.nodes if n.bl_idname == "ShaderNodeVectorMath"]
        assert multiply.operation == "SCALE"
        assert multiply.inputs["Scale"].default_value == pytest.approx(scale, rel=1e-6)
    still = [n for n in tree.nodes if n.bl_idname == "CompositorNodeImage" and n.image == image]
    assert len(still) == 1


def test_predict_reports_missing_weights(scene_blend: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from gid.gid_engine.prediction import predict

    monkeypatch.setattr(predict, "WEIGHTS_DIR", scene_blend["dir"] / "no-weights-here")
    image = scene_blend["image"]
    n_images = len(bpy.data.images)
    with pytest.raises(RuntimeError, match="learned motion model is not installed"):
        bpy.ops.gid.predict_motion("EXEC_DEFAULT", image=image.name)
    assert image.gid.motion_path == "" and image.gid.status.startswith("Error: the learned motion model")
    assert len(bpy.data.images) == n_images
    assert not (scene_blend["dir"] / "gid").exists()


def test_predict_with_the_shipped_model(scene_blend: dict) -> None:
    """A volume at model resolution in the image's aspect: through torch where it is installed,
    through the ONNX export of the same model where it is not (Blender's own Python)."""
    image = scene_blend["image"]
    image.gid.steps = 2  # the sampler's cost, not its quality, is what this test can afford
    image.gid.variation = 0.5  # start from the static-flow field's layout (both backends can)
    try:
        import diffusers  # noqa: F401
        import torch  # noqa: F401
    except ImportError:  # the torch-free Blender 5.0 environment: what Blender itself has
        backend = "onnx"
    else:
        backend = "torch"
    assert bpy.ops.gid.predict_motion("EXEC_DEFAULT", image=image.name) == {"FINISHED"}
    sv = load_spectral_volume(bpy.path.abspath(image.gid.motion_path))
    assert sv.K == 16 and sv.height == 160 and sv.extra["backend"] == backend
    assert sv.extra["init_strength"] == pytest.approx(0.5)
    from gid.gid_engine.prediction.predict import DEFAULT_INIT_STRENGTH  # the panel's default is the engine's

    assert type(image.gid).bl_rna.properties["variation"].default == pytest.approx(DEFAULT_INIT_STRENGTH)
    assert abs(sv.width / sv.height - image.size[0] / image.size[1]) < 0.02
    assert float(np.abs(sv.coeffs).max()) > 0.0


def test_setup_compositor_loop_needs_a_bake(scene_blend: dict) -> None:
    with pytest.raises(RuntimeError, match="no baked loop yet"):
        bpy.ops.gid.setup_compositor_loop("EXEC_DEFAULT", image=scene_blend["image"].name)
    assert compositor_tree(bpy.context.scene, create=False) is None


# ----------------------------------------------------------------------------- cancel
def test_cancel_in_worker_thread_leaves_nothing(scene_blend: dict, motion_file: Path) -> None:
    folder, image = scene_blend["dir"], scene_blend["image"]
    use_motion(image, motion_file)
    image.gid.frames = 8
    task = prepare_bake_loop(bpy.context, image.name)
    n_images = len(bpy.data.images)

    w = CancelAfterFirstFrame(task.run).start()
    assert w.join(60.0)
    progress, outcome = w.poll()
    assert progress == (1, 8, "rendering")
    assert outcome.status == "cancelled" and "nothing was written" in outcome.error
    assert not (folder / "gid").exists()  # staging removed, and the folder it created
    assert len(bpy.data.images) == n_images and props.loop_image(image.gid) is None

    # The same, run inline as execute() does, for displacement maps (two transactions).
    image.gid.frames = 4
    disp = prepare_bake_displacement(bpy.context, image.name)
    job = Job(lambda done, total, what: job.cancel() if done >= 2 else None)
    outcome = worker.run_job(disp.run, job)
    assert outcome.status == "cancelled"
    assert not (folder / "gid").exists()
    assert len(bpy.data.images) == n_images and props.displacement_image(image.gid) is None


def test_cancel_in_second_displacement_pass_removes_first(scene_blend: dict, motion_file: Path) -> None:
    folder, image = scene_blend["dir"], scene_blend["image"]
    use_motion(image, motion_file)
    image.gid.frames = 4
    disp = prepare_bake_displacement(bpy.context, image.name)
    calls = []

    def progress(done: int, total: int, what: str) -> None:
        calls.append(done)
        if len(calls) == 6:  # 4 steps of the pixel maps, then 2 of the Displace-node maps
            job.cancel()

    job = Job(progress)
    outcome = worker.run_job(disp.run, job)
    assert outcome.status == "cancelled" and len(calls) == 6
    assert not (folder / "gid").exists()


# ----------------------------------------------------------------------------- threaded path
class ModalHarness(ops.GidJobOperator):
    """The operators' threaded path without Blender's event loop (none runs headless): the
    same ``_start`` / ``_tick`` / ``_conclude`` methods the modal operator calls per timer tick,
    on a plain object that records its reports."""

    def __init__(self, task_factory) -> None:
        self.image = ""
        self.reports: list[tuple[str, str]] = []
        self._factory = task_factory

    def prepare(self, context):
        return self._factory(context)

    def report(self, level: set, message: str) -> None:
        self.reports.append((next(iter(level)), message))


def _drive(op: ModalHarness, cancel: bool = False, limit: float = 60.0) -> tuple:
    """Tick like the 0.1 s timer would until the job ends; ``cancel``: press Cancel once a frame is done."""
    import time

    context = bpy.context
    task = op._prepare(context)
    op._start(context, task)
    wm = context.window_manager
    assert wm.gid.running and wm.gid.operation == task.label
    assert bpy.ops.gid.cancel_job.poll()
    seen = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        result = op._tick(context)
        seen.append(wm.gid.progress)
        if cancel and wm.gid.progress > 0 and not op._worker.job.cancelled:
            assert bpy.ops.gid.cancel_job("EXEC_DEFAULT") == {"FINISHED"}  # the panel's Cancel button
        if result != {"RUNNING_MODAL"}:
            assert not wm.gid.running and wm.gid.progress == 0.0 and worker.current() is None
            return result, seen
        time.sleep(0.01)
    raise AssertionError("the worker did not finish")


def test_threaded_bake_finishes_on_the_main_thread(scene_blend: dict, motion_file: Path) -> None:
    image = scene_blend["image"]
    use_motion(image, motion_file)
    image.gid.frames = 6
    op = ModalHarness(lambda ctx: prepare_bake_loop(ctx, image.name))
    result, seen = _drive(op)
    assert result == {"FINISHED"}
    assert props.loop_image(image.gid) is not None and image.gid.loop_frames == 6
    assert op.reports[-1] == ("INFO", "Baked 6 frames into //gid/tex/loop")
    # Baking again replaces our own previous bake, and says so.
    op = ModalHarness(lambda ctx: prepare_bake_loop(ctx, image.name))
    assert _drive(op)[0] == {"FINISHED"}
    assert op.reports[0][1].startswith("replacing the previous GID loop in ")
    assert op.reports[-1] == ("INFO", "Re-baked 6 frames into //gid/tex/loop")


class HoldAfterFirstFrame(worker.Worker):
    """A real worker thread that, once it has reported the first frame, waits for a cancel before
    going on: the panel's Cancel then lands mid-render however fast the machine renders."""

    def _progress(self, done: int, total: int, what: str) -> None:
        super()._progress(done, total, what)
        deadline = time.monotonic() + 60.0
        while not self.job.cancelled and time.monotonic() < deadline:
            time.sleep(0.005)


def test_threaded_bake_cancelled_from_the_panel(scene_blend: dict, motion_file: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    folder, image = scene_blend["dir"], scene_blend["image"]
    use_motion(image, motion_file)
    image.gid.frames = 8
    monkeypatch.setattr(worker, "Worker", HoldAfterFirstFrame)
    n_images = len(bpy.data.images)
    op = ModalHarness(lambda ctx: prepare_bake_loop(ctx, image.name))
    result, seen = _drive(op, cancel=True)
    assert result == {"CANCELLED"} and 0 < max(seen) < 1
    assert op.reports == [("WARNING", "Baking loop cancelled; nothing was written")]
    assert image.gid.status == "Cancelled; nothing was written"
    assert len(bpy.data.images) == n_images and props.loop_image(image.gid) is None
    assert not (folder / "gid").exists()


def test_invoke_in_background_runs_synchronously(scene_blend: dict, motion_file: Path) -> None:
    image = scene_blend["image"]
    use_motion(image, motion_file)
    image.gid.frames = 4
    assert bpy.ops.gid.bake_loop("INVOKE_DEFAULT", image=image.name) == {"FINISHED"}
    assert image.gid.loop_frames == 4
