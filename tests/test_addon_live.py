"""Live motion renders in a Blender that does not have the extension: the .blend carries everything.

A scene is built by a script (a camera-filling plane showing the tree still through an Image
Texture node) and given live motion with ``gid.live_motion``, saved, and rendered with
Cycles in a fresh Python process whose Blender has no extension installed and where ``gid``
cannot even be imported. Its frames are compared with the still (frame 1), with the engine's own
evaluation of the same series (a numpy backward warp) and with ``gid render``'s frames of the same
motion. Measured (Blender 4.5, 320x240, 1 sample): frame 1 within 0.001 of the still; 43-49 dB
against the numpy warp, 42.5-46.6 dB against ``gid render`` at frames 37, 75 and 112.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_helpers import fresh_blend, save_blend

from gid.addon.live import nodes as live_nodes
from gid.exporters.frames import encode_exr
from gid.gid_engine.media.imaging import load_image
from gid.gid_engine.motion.extract import extract_motion
from gid.gid_engine.rendering.live import ATLAS_PAD, tau_at
from gid.gid_engine.rendering.render import Timing, make_splatter, render_frames

# The repository's samples and bpy-only scene builders: the installed extension (the Blender legs)
# ships neither, and gid there is the extension, so the builders are loaded by their file path.
REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
DATA = REPO / "tests" / "data"
_spec = importlib.util.spec_from_file_location("gid_blender_scenes", REPO / "gid_tools" / "blender_scenes.py")
SCENES = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(SCENES)
TREE_CLIP, TREE_STILL = SAMPLES / "tree.avi", SAMPLES / "tree_still.png"
FRAMES = (1, 37, 75, 112)
RENDER = r"""
import sys
sys.modules["gid"] = None  # the extension's code cannot be reached, even by accident
import json, bpy
prefs = bpy.context.preferences
assert not [a.module for a in prefs.addons if "gid" in a.module], "an add-on named gid is enabled"
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
scene = bpy.context.scene
scene.render.image_settings.file_format = "OPEN_EXR"
for f in json.loads(sys.argv[3]):
    scene.frame_set(f)
    scene.render.filepath = f"{sys.argv[2]}/f{f:04d}.exr"
    bpy.ops.render.render(write_still=True)
"""


def _srgb(linear: np.ndarray) -> np.ndarray:
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def _scene(still: Path, size: tuple[int, int]) -> bpy.types.Image:
    """Camera-filling plane whose emission shows ``still`` through an Image Texture node (Cycles)."""
    *_, tex = SCENES.camera_filling_plane(*size)
    tex.image = bpy.data.images.load(str(still))
    return tex.image


@pytest.fixture(scope="module")
def farm_render(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The scene built by a script through gid.live_motion, saved, rendered where gid is absent."""
    from gid import addon
    from gid.gid_engine.engine import Engine
    from gid.gid_engine.motion.sv_file import save_spectral_volume

    tmp = tmp_path_factory.mktemp("live")
    motion = extract_motion(TREE_CLIP)
    save_spectral_volume(motion, tmp / "motion.gidsv")
    image = load_image(TREE_STILL)
    ours = not addon.is_registered()  # in the installed-extension legs Blender has registered it
    if ours:
        addon.register()
    try:
        still = _scene(TREE_STILL, (image.width, image.height))
        blend = tmp / "scene.blend"
        save_blend(blend)
        still.gid.motion_path = str(tmp / "motion.gidsv")
        assert bpy.ops.gid.live_motion("EXEC_DEFAULT", image=still.name) == {"FINISHED"}
        still.pack()  # the farm has no files: the still travels in the .blend too
        save_blend(blend)
    finally:
        if ours:
            addon.unregister()
    home = tmp / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BLENDER_", "GID_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), BLENDER_USER_RESOURCES=str(tmp / "blender"))
    done = subprocess.run([sys.executable, "-c", RENDER, str(blend), str(tmp), json.dumps(FRAMES)], env=env,
                          cwd=tmp, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    from gid.exporters.opencv import cv2

    frames = {f: _srgb(cv2.imread(str(tmp / f"f{f:04d}.exr"), cv2.IMREAD_UNCHANGED)[:, :, 2::-1]) for f in FRAMES}
    splatter = make_splatter("onnx", "cpu", 2)
    live = Engine(device="cpu").live_volume(motion)
    reference = list(render_frames(image, motion, splatter, Timing(fps=30), 1.0, True, "check"))
    return {"frames": frames, "live": live, "image": image, "reference": reference, "blend": blend,
            "still": TREE_STILL.name}


def test_frame_one_is_the_still(farm_render):
    still = np.asarray(farm_render["image"].pixels, np.float32)[:, :, :3]
    assert float(np.abs(farm_render["frames"][1] - still).max()) < 0.005


def test_the_renderer_evaluates_the_series_the_engine_computed(farm_render):
    from gid.exporters.opencv import cv2

    live, image = farm_render["live"], farm_render["image"]
    still = np.asarray(image.pixels, np.float32)[:, :, :3]
    h, w = still.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    for f in FRAMES[1:]:
        b = live.field_at(tau_at(f, scene_fps=30, clip_fps=live.fps))
        warp = cv2.remap(still, xs - b[0] * w / live.width, ys - b[1] * h / live.height, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        assert _psnr(farm_render["frames"][f], warp) > 39.0, f
        assert _psnr(still, warp) < 36.0  # the frame moved: the comparison is not of two stills


def test_frames_match_gid_render(farm_render):
    for f in FRAMES[1:]:
        ref = np.asarray(farm_render["reference"][f - 1], np.float32)
        ref = ref.transpose(1, 2, 0)[:, :, :3] if ref.shape[0] in (3, 4) else ref[:, :, :3]
        assert _psnr(farm_render["frames"][f], np.clip(ref, 0, 1)) > 38.0, f


def test_the_blend_holds_everything(farm_render):
    """One file: the atlas packed, no external path, the time drivers plain expressions."""
    bpy.ops.wm.open_mainfile(filepath=str(farm_render["blend"]))
    atlas = bpy.data.images[f"GID Live Motion Atlas {farm_render['still']}"]
    assert atlas.packed_file is not None and atlas.colorspace_settings.name == "Non-Color"
    assert all(img.packed_file is not None for img in bpy.data.images if img.source == "FILE")
    drivers = bpy.data.materials["still"].node_tree.animation_data.drivers
    assert sorted(d.driver.expression for d in drivers) == ["frame", "rate / base"]
    assert all(d.driver.is_simple_expression for d in drivers)
    assert Path(farm_render["blend"]).stat().st_size < 20 * 2**20  # 13.1 MiB of half-float atlas + the still


def _vertex_uvs(mesh: bpy.types.Mesh) -> np.ndarray:
    uv = np.zeros((len(mesh.vertices), 2))
    for loop, loop_uv in zip(mesh.loops, mesh.uv_layers.active.data):
        uv[loop.vertex_index] = loop_uv.uv[:]
    return uv


def _bilinear(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``image`` sampled at pixel coordinates (centres at integers, edges repeated), in float64:
    exact, where cv2.remap rounds positions to 1/32 pixel (2 % of a noisy field's range)."""
    h, w = image.shape
    x, y = np.clip(xs, 0, w - 1), np.clip(ys, 0, h - 1)
    x0, y0 = np.minimum(np.floor(x).astype(int), w - 2), np.minimum(np.floor(y).astype(int), h - 2)
    fx, fy = x - x0, y - y0
    im = image.astype(np.float64)
    top = im[y0, x0] * (1 - fx) + im[y0, x0 + 1] * fx
    bottom = im[y0 + 1, x0] * (1 - fx) + im[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _forward_offsets(fwd, uv: np.ndarray, tau: float, size: tuple[float, float], amplitude: float = 1.0) -> np.ndarray:
    """Where the engine's forward series moves points at ``uv`` (object-space X/Y, the UV square
    spanning ``size``): the field sampled bilinearly at the UV's pixel, y down turned to y up."""
    field = fwd.field_at(tau) * amplitude
    xs, ys = uv[:, 0] * fwd.width - 0.5, (1 - uv[:, 1]) * fwd.height - 0.5
    dx, dy = (_bilinear(f, xs, ys) for f in field)
    return np.stack([dx / fwd.width * size[0], -dy / fwd.height * size[1]], axis=1)


def _evaluated_offsets(obj: bpy.types.Object, rest: np.ndarray) -> np.ndarray:
    moved = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    return np.array([v.co[:] for v in moved.vertices]) - rest


def test_geometry_nodes_move_a_plane_by_the_forward_series():
    """The geometry group displaces a subdivided plane's vertices by the forward motion sampled at
    their UVs, with time from the scene (Scene Time): checked against the engine's series."""
    from gid.gid_engine.rendering.live import forward_volume

    motion = extract_motion(TREE_CLIP, max_side=96)
    fwd = forward_volume(motion, amplitude=3.0)
    scene = fresh_blend()
    scene.render.fps = 24
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=17, y_subdivisions=13, size=2.0)
    plane = bpy.context.object
    rest = np.array([v.co[:] for v in plane.data.vertices])
    atlas = live_nodes.pack_atlas("GID Live Motion Atlas geo", encode_exr(fwd.atlas(), "float", "zip"))
    layout = live_nodes.Layout(fwd.bins, fwd.width, fwd.height, fwd.period, fwd.fps, ATLAS_PAD)
    group = live_nodes.build_geometry_group("GID Live Motion geo", atlas, layout)
    fps = next(item for item in group.interface.items_tree if item.item_type == "SOCKET" and item.name == "FPS")
    fps.default_value = 24.0  # what a new modifier starts from (modifier inputs are not ID properties in 5.2+)
    mod = plane.modifiers.new("gid", "NODES")
    mod.node_group = group
    uv = _vertex_uvs(plane.data)
    for frame in (1, 30, 77):
        scene.frame_set(frame)
        got = _evaluated_offsets(plane, rest)
        want = _forward_offsets(fwd, uv, tau_at(frame, scene_fps=24, clip_fps=fwd.fps), (2.0, 2.0))
        assert np.abs(got[:, :2] - want).max() < 1e-4 + 1e-3 * np.abs(want).max(), frame
        assert frame == 1 or np.abs(want).max() > 1e-3  # it moved


def test_the_geometry_operator_moves_a_mesh_and_removal_restores_it(scene_blend, motion_file):
    """gid.live_geometry on a subdivided plane with UVs: at each frame its vertices are where the
    engine's forward series puts them (amplitude and speed from the image's settings, the scene's
    frame rate through the FPS driver); the mesh data stays as it was, and gid.remove_live_motion
    takes the modifier, its driver, the group and the atlas off, the evaluated mesh at rest again."""
    from blender_helpers import use_motion

    from gid.gid_engine.motion.sv_file import load_spectral_volume
    from gid.gid_engine.rendering.live import forward_volume

    image, scene = scene_blend["image"], bpy.context.scene
    scene.render.fps = 25
    use_motion(image, motion_file)
    image.gid.amplitude, image.gid.slowmo = 1.5, 2.0
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=17, y_subdivisions=13, size=3.0)
    plane = bpy.context.object
    plane.scale = (1.0, 0.75, 1.0)  # object transforms are the user's: the motion is in mesh (local) space
    rest = np.array([v.co[:] for v in plane.data.vertices])
    assert bpy.ops.gid.live_geometry(image=image.name, object=plane.name) == {"FINISHED"}
    (mod,) = plane.modifiers
    assert mod.type == "NODES" and mod.node_group.name == f"GID Live Motion Geometry {image.name}"
    assert [d.driver.expression for d in plane.animation_data.drivers] == ["rate / base"]
    assert live_nodes.modifier_input(mod, "Amplitude") == pytest.approx(1.5)
    assert live_nodes.modifier_input(mod, "Size")[:2] == pytest.approx((3.0, 3.0))
    fwd = forward_volume(load_spectral_volume(motion_file))
    uv = _vertex_uvs(plane.data)
    moved = 0.0
    for frame in (1, 9, 40):
        scene.frame_set(frame)
        got = _evaluated_offsets(plane, rest)
        want = _forward_offsets(fwd, uv, tau_at(frame, scene_fps=25, clip_fps=fwd.fps, speed=0.5), (3.0, 3.0), 1.5)
        assert np.abs(got[:, :2] - want).max() < 1e-4 + 2e-3 * np.abs(want).max(), frame  # half-float atlas
        assert np.abs(got[:, 2]).max() < 1e-6
        moved = max(moved, float(np.abs(want).max()))
    assert moved > 1e-2  # the comparison is not of two meshes at rest
    assert np.array_equal(np.array([v.co[:] for v in plane.data.vertices]), rest)  # the mesh data untouched
    live_nodes.set_modifier_input(mod, "Amplitude", 2.0)  # the user's own amplitude
    plane.modifiers.new("after", "WAVE")  # and a modifier of their own after it
    assert bpy.ops.gid.live_geometry(image=image.name, object=plane.name) == {"FINISHED"}  # again: one modifier
    assert [m.type for m in plane.modifiers] == ["NODES", "WAVE"]  # in its place in the stack
    assert live_nodes.modifier_input(plane.modifiers[0], "Amplitude") == 2.0
    plane.modifiers.remove(plane.modifiers["after"])
    assert bpy.ops.gid.remove_live_motion(image=image.name) == {"FINISHED"}
    assert len(plane.modifiers) == 0 and not plane.animation_data.drivers
    assert f"GID Live Motion Geometry {image.name}" not in bpy.data.node_groups
    assert f"GID Live Motion Geometry Atlas {image.name}" not in bpy.data.images
    assert np.abs(_evaluated_offsets(plane, rest)).max() == 0.0


def test_the_geometry_operator_says_what_is_wrong_in_one_line(scene_blend, motion_file):
    from blender_helpers import use_motion

    image = scene_blend["image"]
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    with pytest.raises(RuntimeError, match="no mesh to move: make a mesh with UVs"):
        bpy.ops.gid.live_geometry(image=image.name)
    with pytest.raises(RuntimeError, match="there is no object named 'nope'"):
        bpy.ops.gid.live_geometry(image=image.name, object="nope")
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    bpy.context.scene.collection.objects.link(cam)
    with pytest.raises(RuntimeError, match="'cam' is a camera object, not a mesh"):
        bpy.ops.gid.live_geometry(image=image.name, object="cam")
    mesh = bpy.data.meshes.new("bare")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (1, 1, 0)], [], [(0, 1, 2)])
    bare = bpy.data.objects.new("bare", mesh)
    bpy.context.scene.collection.objects.link(bare)
    with pytest.raises(RuntimeError, match="mesh 'bare' has no UV map"):
        bpy.ops.gid.live_geometry(image=image.name, object="bare")
    mesh.uv_layers.new()
    with pytest.raises(RuntimeError, match="no motion yet"):
        bpy.ops.gid.live_geometry(image=image.name, object="bare")
    use_motion(image, motion_file)
    for loop in mesh.uv_layers.active.data:
        loop.uv = (0.5, 0.5)  # every corner at one point of the image
    with pytest.raises(RuntimeError, match="do not spread over its X/Y plane"):
        bpy.ops.gid.live_geometry(image=image.name, object="bare")
    assert len(bare.modifiers) == 0 and f"GID Live Motion Geometry {image.name}" not in bpy.data.node_groups


def _links(tree: bpy.types.NodeTree) -> list[tuple[str, str, str, str]]:
    return sorted((link.from_node.name, link.from_socket.identifier, link.to_node.name, link.to_socket.identifier)
                  for link in tree.links)


def test_the_operator_inserts_and_removes_the_group_leaving_the_users_nodes(scene_blend, motion_file):
    from blender_helpers import add_material_with_texture, use_motion

    image = scene_blend["image"]
    mat, tex = add_material_with_texture(image)
    other, tex2 = add_material_with_texture(image)
    mapping = other.node_tree.nodes.new("ShaderNodeMapping")  # a user's own coordinates stay theirs
    other.node_tree.links.new(mapping.outputs["Vector"], tex2.inputs["Vector"])
    before = {m.name: (_links(m.node_tree), len(m.node_tree.nodes)) for m in (mat, other)}
    use_motion(image, motion_file)
    image.gid.amplitude = 1.5
    assert bpy.ops.gid.live_motion("EXEC_DEFAULT", image=image.name) == {"FINISHED"}
    group = bpy.data.node_groups[f"GID Live Motion {image.name}"]
    assert len(group.nodes) == 6 * group["gid_bins"] + 15  # six a Fourier bin, 15 for time, scale and ends
    for m, t in ((mat, tex), (other, tex2)):
        feed = t.inputs["Vector"].links[0].from_node
        assert feed.bl_idname == "ShaderNodeGroup" and feed.node_tree == group
        assert feed.inputs["Amplitude"].default_value == pytest.approx(1.5)
        assert sorted(d.driver.expression for d in m.node_tree.animation_data.drivers) == ["frame", "rate / base"]
    assert other.node_tree.links[0].from_node == mapping or any(
        link.from_node == mapping and link.to_node.bl_idname == "ShaderNodeGroup" for link in other.node_tree.links)
    assert image.packed_file is None and image.filepath  # the user's image untouched
    assert bpy.ops.gid.live_motion("EXEC_DEFAULT", image=image.name) == {"FINISHED"}  # again: no second group node
    assert sum(n.bl_idname == "ShaderNodeGroup" for n in mat.node_tree.nodes) == 1
    assert bpy.ops.gid.remove_live_motion("EXEC_DEFAULT", image=image.name) == {"FINISHED"}
    assert {m.name: (_links(m.node_tree), len(m.node_tree.nodes)) for m in (mat, other)} == before
    assert f"GID Live Motion {image.name}" not in bpy.data.node_groups
    assert f"GID Live Motion Atlas {image.name}" not in bpy.data.images


def test_without_a_texture_node_or_motion_it_says_so(scene_blend, motion_file):
    from blender_helpers import use_motion

    image = scene_blend["image"]
    with pytest.raises(RuntimeError, match="no motion yet"):
        bpy.ops.gid.live_motion("EXEC_DEFAULT", image=image.name)
    use_motion(image, motion_file)
    with pytest.raises(RuntimeError, match="no material shows 'tex.png' through an Image Texture node"):
        bpy.ops.gid.live_motion("EXEC_DEFAULT", image=image.name)


def test_a_damaged_live_setup_is_reported(scene_blend, motion_file):
    from blender_helpers import add_material_with_texture, use_motion

    from gid.addon.live.ops import check_live

    image = scene_blend["image"]
    add_material_with_texture(image)
    use_motion(image, motion_file)
    assert bpy.ops.gid.live_motion("EXEC_DEFAULT", image=image.name) == {"FINISHED"}
    assert check_live(image) == ""
    atlas = bpy.data.images[f"GID Live Motion Atlas {image.name}"]
    atlas.unpack(method="REMOVE")  # the packed volume replaced by an external file
    assert "missing or was replaced" in check_live(image)
    bpy.data.node_groups.remove(bpy.data.node_groups[f"GID Live Motion {image.name}"])
    assert "node group was deleted" in check_live(image)
    assert bpy.ops.gid.live_motion("EXEC_DEFAULT", image=image.name) == {"FINISHED"}
    assert check_live(image) == ""
    image.scale(image.size[0], image.size[0] * 3)  # the image changed shape after its live motion was made
    assert "made for a 64x48 motion, not this 64x192 image" in check_live(image)
    with pytest.raises(RuntimeError, match=r"motion is 64x48 .* but the image is 64x192"):
        bpy.ops.gid.live_motion("EXEC_DEFAULT", image=image.name)


def _render_without_gid(python: str, blend: Path, folder: Path, frames: tuple[int, ...]) -> subprocess.CompletedProcess:
    """Render ``frames`` of ``blend`` as EXRs into ``folder`` with ``python`` (a Blender's Python) in
    a fresh process with a fresh user folder, where gid cannot be imported."""
    home = folder / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BLENDER_", "GID_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), BLENDER_USER_RESOURCES=str(folder / "b"))
    return subprocess.run([python, "-c", RENDER, str(blend), str(folder), json.dumps(frames)], env=env, cwd=folder,
                          capture_output=True, text=True, timeout=600)


def _data_live() -> tuple[object, np.ndarray]:
    """The live volume of tests/data's motion (96x72, the engine's) and the still it moves."""
    from gid.exporters.opencv import cv2
    from gid.gid_engine.engine import Engine
    from gid.gid_engine.motion.sv_file import load_spectral_volume

    live = Engine(device="cpu").live_volume(load_spectral_volume(DATA / "live_motion.gidsv"))
    return live, cv2.imread(str(DATA / "live_still.png"))[:, :, ::-1].astype(np.float32) / 255.0


def _check_frames(folder: Path, live, still: np.ndarray, frames: tuple[int, ...]) -> None:
    """The rendered frames are the still warped by the engine's series (frame 1 the still itself)."""
    from gid.exporters.opencv import cv2

    h, w = still.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    for f in frames:
        got = _srgb(cv2.imread(str(folder / f"f{f:04d}.exr"), cv2.IMREAD_UNCHANGED)[:, :, 2::-1])
        b = live.field_at(tau_at(f, scene_fps=30, clip_fps=live.fps))
        want = cv2.remap(still, xs - b[0], ys - b[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        assert _psnr(got, want) > 48.0, f  # measured 52.7 dB at frame 40; the still itself is 46 dB from it
    assert _psnr(still, want) < _psnr(got, want)  # the last frame moved, and the render moved with it


def test_a_blend_made_by_blender_4_2_renders_in_this_blender_without_gid(tmp_path):
    """tests/data/live_4.2.blend was saved by Blender 4.2 LTS (tools/make_live_blend.py); this
    Blender (4.5 here, 4.2-5.3 in the legs) renders it without the extension, as the engine says."""
    frames = (1, 40)
    done = _render_without_gid(sys.executable, DATA / "live_4.2.blend", tmp_path, frames)
    assert done.returncode == 0, done.stderr[-3000:]
    _check_frames(tmp_path, *_data_live(), frames)


def _leg_python(version: str) -> Path:
    python = REPO / ".venv-blender" / version / "bin" / "python"
    if not python.is_file():
        pytest.skip(f"no Blender {version} here: {python} is missing (make it as tools/blender_matrix.py says)")
    return python


def test_a_blend_saved_by_blender_5_3_in_older_blenders(tmp_path):
    """The same live-motion scene saved by Blender 5.3 (the newest leg): Blender 4.5 opens it (with
    a "newer Blender" warning) and renders the moving frames the engine computes; Blender 4.2 cannot
    read the 5.x file format at all and stops at the open with one line, before any frame is written."""
    newest, lts45, lts42 = _leg_python("5.3"), _leg_python("4.5"), _leg_python("4.2")
    spec = importlib.util.spec_from_file_location("make_live_blend", REPO / "tools" / "make_live_blend.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    live, still = _data_live()
    blend = tmp_path / "live_5.3.blend"
    made = maker.write_blend(str(newest), blend, live, DATA / "live_still.png")
    assert made.returncode == 0 and "saved with Blender 5.3" in made.stdout, made.stderr[-3000:]
    frames = (1, 40)
    (tmp_path / "4.5").mkdir()
    done = _render_without_gid(str(lts45), blend, tmp_path / "4.5", frames)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "File written by newer Blender binary (503" in done.stdout + done.stderr
    _check_frames(tmp_path / "4.5", live, still, frames)
    (tmp_path / "4.2").mkdir()
    done = _render_without_gid(str(lts42), blend, tmp_path / "4.2", frames)
    assert done.returncode != 0
    assert f"Failed to read blend file '{blend}', not a blend file" in done.stderr
    assert not list((tmp_path / "4.2").glob("*.exr"))  # nothing rendered, black or otherwise


class _Layout:
    """Records what a panel's draw puts in its layout (operators, properties, labels)."""

    def __init__(self, log: list) -> None:
        self.log = log

    def row(self, **_kw) -> "_Layout":
        return self

    column = row

    def operator(self, idname: str, **_kw):
        self.log.append(("op", idname))
        return type("Props", (), {})()

    def prop(self, _data, name: str, text: str = "", **_kw) -> None:
        self.log.append(("prop", text or name))

    def label(self, text: str = "", **_kw) -> None:
        self.log.append(("label", text))


def test_the_live_panel_offers_geometry_and_lists_the_moved_meshes(scene_blend, motion_file):
    from types import SimpleNamespace

    from blender_helpers import use_motion

    from gid.addon.live.ui import GID_PT_live

    image = scene_blend["image"]
    use_motion(image, motion_file)
    context = SimpleNamespace(space_data=SimpleNamespace(type="IMAGE_EDITOR", image=image), active_object=None)

    def draw() -> list:
        log: list = []
        GID_PT_live.draw(SimpleNamespace(layout=_Layout(log)), context)
        return log

    assert ("op", "gid.live_geometry") in draw() and ("op", "gid.remove_live_motion") not in draw()
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=10, y_subdivisions=10, size=2.0)
    assert bpy.ops.gid.live_geometry(image=image.name) == {"FINISHED"}  # the active object
    log = draw()
    assert ("op", "gid.remove_live_motion") in log and ("label", "Moving 1 mesh(es): Grid") in log
