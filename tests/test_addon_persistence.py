"""Settings, the motion file and baked results survive saving and reopening the .blend (also
"Save As" into another folder): reopening needs no recomputation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

from gid.addon import blender_io as bio
from gid.addon import props
from gid.addon.utils.paths import remap_relative

from blender_helpers import add_material_with_texture


def _bake_everything(scene_blend: dict, motion_file: Path) -> None:
    folder, image = scene_blend["dir"], scene_blend["image"]
    shutil.copy(motion_file, folder / "motion_in.gidsv")
    add_material_with_texture(image)
    s = image.gid
    s.motion_path = "//motion_in.gidsv"
    s.mode, s.frames, s.fps, s.amplitude, s.slowmo = "DISPLACEMENT", 6, 12.0, 1.25, 2.0
    s.seed, s.steps, s.device, s.video_path, s.variation = 7, 33, "CPU", "//clip.avi", 0.4
    assert bpy.ops.gid.bake_loop("EXEC_DEFAULT") == {"FINISHED"}
    s.frames = 4
    assert bpy.ops.gid.bake_displacement("EXEC_DEFAULT", image=image.name) == {"FINISHED"}
    s.frames = 6


def _check_reopened(folder: Path, scale: float) -> None:
    image = bpy.data.images["tex.png"]
    s = image.gid
    assert (s.mode, s.frames, s.fps, s.amplitude, s.slowmo) == ("DISPLACEMENT", 6, 12.0, 1.25, 2.0)
    assert (s.seed, s.steps, s.device) == (7, 33, "CPU") and s.variation == pytest.approx(0.4)
    assert bio.abspath(s.motion_path) == folder / "motion_in.gidsv"
    assert bio.abspath(s.video_path) == folder / "clip.avi"
    loop = props.loop_image(s)
    assert loop is not None and loop.source == "SEQUENCE" and s.loop_frames == 6
    assert loop.filepath.startswith("//") and bio.abspath(loop.filepath) == folder / "gid/tex/loop/frame_0001.png"
    assert loop.colorspace_settings.name == "sRGB"
    disp = props.displacement_image(s)
    assert disp is not None and disp.source == "SEQUENCE" and s.displacement_frames == 4
    assert bio.abspath(disp.filepath) == folder / "gid/tex/displacement/disp_node_0001.exr"
    assert disp.colorspace_settings.name == "Non-Color"
    assert s.displacement_scale == pytest.approx(scale)
    assert s.status.startswith("Baked 4 displacement maps")
    node = next(n for n in bpy.data.materials["backdrop"].node_tree.nodes if getattr(n, "image", None) == loop)
    iu = node.image_user
    assert (iu.frame_duration, iu.frame_start, iu.use_cyclic) == (6, 1, True)
    # Runtime job state is per session.
    assert bpy.context.window_manager.gid.running is False


def test_settings_and_results_survive_reload(scene_blend: dict, motion_file: Path) -> None:
    folder = scene_blend["dir"]
    _bake_everything(scene_blend, motion_file)
    scale = scene_blend["image"].gid.displacement_scale
    bpy.context.window_manager.gid.message = "busy"
    bpy.ops.wm.save_mainfile()
    mtimes = {p: p.stat().st_mtime_ns for p in (folder / "gid").rglob("*")}

    bpy.ops.wm.open_mainfile(filepath=str(scene_blend["blend"]))
    _check_reopened(folder, scale)
    assert bpy.context.window_manager.gid.message == ""
    # Nothing needs recomputing: the compositor is set up from the stored loop, no file changes.
    assert bpy.ops.gid.setup_compositor_loop("EXEC_DEFAULT", image="tex.png") == {"FINISHED"}
    assert {p: p.stat().st_mtime_ns for p in (folder / "gid").rglob("*")} == mtimes


def test_save_as_elsewhere_keeps_paths_pointing_at_the_same_files(scene_blend: dict, motion_file: Path) -> None:
    folder = scene_blend["dir"]
    _bake_everything(scene_blend, motion_file)
    scale = scene_blend["image"].gid.displacement_scale
    other = folder / "versions" / "v2.blend"
    other.parent.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(other))
    assert bpy.data.images["tex.png"].gid.motion_path == "//../motion_in.gidsv"

    bpy.ops.wm.open_mainfile(filepath=str(other))
    _check_reopened(folder, scale)


def test_remap_relative() -> None:
    assert remap_relative("//a/m.gidsv", "/p", "/p/sub") == "//../a/m.gidsv"
    assert remap_relative("//m.gidsv", "/p/sub", "/p") == "//sub/m.gidsv"
    assert remap_relative("/abs/m.gidsv", "/p", "/q") == "/abs/m.gidsv"
    assert remap_relative("//m.gidsv", "/p", "/p") == "//m.gidsv"
    assert remap_relative("//m.gidsv", "", "/p") == "//m.gidsv"  # unsaved before: nothing to remap
