"""Every way a user can hold the add-on wrong ends in one ERROR report and CANCELLED.

In background mode an operator that reports an ERROR makes ``bpy.ops`` raise RuntimeError with
the message, so each case asserts the message and that no datablock and no file appeared.
"""

from __future__ import annotations

from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

from gid.addon import blender_io as bio
from gid.addon import props
from gid.addon.nodes import compositor_tree
from gid.addon.utils import paths
from gid.addon.utils.errors import OutputFolderError
from gid.gid_engine.motion.sv_file import save_spectral_volume

from blender_helpers import use_motion
from conftest import H, W, random_volume, write_still, write_video


def snapshot(folder: Path) -> dict:
    """What an operator could have created: datablocks by kind, and files on disk."""
    return {
        "images": sorted(i.name for i in bpy.data.images),
        "materials": len(bpy.data.materials),
        "node_groups": len(bpy.data.node_groups),
        "compositor": compositor_tree(bpy.context.scene, create=False) is not None,
        "files": sorted(str(p.relative_to(folder)) for p in folder.rglob("*")),
    }


def expect_error(op, match: str, folder: Path, **kwargs) -> None:
    before = snapshot(folder)
    with pytest.raises(RuntimeError, match=match):
        op("EXEC_DEFAULT", **kwargs)
    assert snapshot(folder) == before


def test_no_image_selected(registered, tmp_path: Path) -> None:
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "s.blend"))
    for op in (bpy.ops.gid.bake_loop, bpy.ops.gid.bake_displacement, bpy.ops.gid.extract_motion,
               bpy.ops.gid.predict_motion, bpy.ops.gid.setup_compositor_loop):
        expect_error(op, "no image selected", tmp_path)
    expect_error(bpy.ops.gid.bake_loop, "no image named 'nope'", tmp_path, image="nope")


def test_packed_image(scene_blend: dict, motion_file: Path) -> None:
    image = scene_blend["image"]
    use_motion(image, motion_file)
    image.pack()
    expect_error(bpy.ops.gid.bake_loop, "packed into the .blend; unpack it first", scene_blend["dir"],
                 image=image.name)


def test_generated_image(scene_blend: dict, motion_file: Path) -> None:
    image = bpy.data.images.new("painted", W, H)
    use_motion(image, motion_file)
    expect_error(bpy.ops.gid.bake_loop, "'painted' is a generated image; save it to a file first",
                 scene_blend["dir"], image=image.name)
    expect_error(bpy.ops.gid.predict_motion, "save it to a file first", scene_blend["dir"], image=image.name)


def test_image_file_missing(scene_blend: dict, motion_file: Path) -> None:
    folder = scene_blend["dir"]
    write_still(folder / "gone.png")
    image = bpy.data.images.load(str(folder / "gone.png"))
    use_motion(image, motion_file)
    (folder / "gone.png").unlink()
    expect_error(bpy.ops.gid.bake_displacement, "image file not found: .*gone.png", folder, image=image.name)


def test_huge_image_over_the_scene_limit(scene_blend: dict, motion_file: Path) -> None:
    image = scene_blend["image"]
    use_motion(image, motion_file)
    bpy.context.scene.gid.max_pixels = 1000
    expect_error(bpy.ops.gid.bake_loop, r"is 64x48; gid accepts at most 1000 pixels", scene_blend["dir"],
                 image=image.name)
    bpy.context.scene.gid.max_pixels = W * H  # exactly at the limit is allowed
    image.gid.frames = 4
    assert bpy.ops.gid.bake_loop("EXEC_DEFAULT", image=image.name) == {"FINISHED"}
    assert bpy.types.Scene.bl_rna.properties["gid"].fixed_type.properties["max_pixels"].default == 16384 ** 2


def test_output_folder_not_writable(scene_blend: dict, motion_file: Path) -> None:
    folder, image = scene_blend["dir"], scene_blend["image"]
    (folder / "file.txt").write_text("in the way")
    use_motion(image, motion_file)
    image.gid.output_dir = str(folder / "file.txt" / "sub")
    expect_error(bpy.ops.gid.bake_loop, "file.txt is a file, not a folder", folder, image=image.name)
    image.gid.output_dir = str(folder / "file.txt")
    expect_error(bpy.ops.gid.bake_loop, "is a file; choose a folder", folder, image=image.name)


def test_unsaved_blend_with_relative_output(registered, tmp_path: Path, motion_file: Path) -> None:
    write_still(tmp_path / "tex.png")
    image = bpy.data.images.load(str(tmp_path / "tex.png"))
    image.gid.motion_path = str(motion_file)
    assert bpy.data.filepath == ""
    expect_error(bpy.ops.gid.bake_loop, "save the .blend first or choose an absolute output folder", tmp_path,
                 image=image.name)
    # An absolute output folder works without a saved .blend (and then stores absolute paths).
    image.gid.output_dir = str(tmp_path / "out")
    image.gid.frames = 4
    assert bpy.ops.gid.bake_loop("EXEC_DEFAULT", image=image.name) == {"FINISHED"}
    assert props.loop_image(image.gid).filepath == str(tmp_path / "out" / "loop" / "frame_0001.png")


def test_no_motion_and_missing_motion_file(scene_blend: dict) -> None:
    image = scene_blend["image"]
    expect_error(bpy.ops.gid.bake_loop, "no motion yet: extract motion", scene_blend["dir"], image=image.name)
    image.gid.motion_path = "//nowhere.gidsv"
    expect_error(bpy.ops.gid.bake_displacement, "motion file not found", scene_blend["dir"], image=image.name)


def test_motion_for_another_aspect_ratio(scene_blend: dict, tmp_path_factory: pytest.TempPathFactory) -> None:
    """An engine error (GidError raised in the worker) arrives as the report, not a traceback."""
    image = scene_blend["image"]
    tall = tmp_path_factory.mktemp("tall") / "tall.gidsv"
    save_spectral_volume(random_volume(h=W, w=H), tall)
    image.gid.motion_path = str(tall)
    image.gid.frames = 4
    expect_error(bpy.ops.gid.bake_loop, "aspect", scene_blend["dir"], image=image.name)
    assert image.gid.status.startswith("Error:") and props.loop_image(image.gid) is None


def test_foreign_files_are_never_replaced(scene_blend: dict, motion_file: Path) -> None:
    folder, image = scene_blend["dir"], scene_blend["image"]
    loop = folder / "gid" / "tex" / "loop"
    loop.mkdir(parents=True)
    (loop / "frame_0001.png").write_bytes(b"somebody else's frame")
    use_motion(image, motion_file)
    image.gid.frames = 4
    expect_error(bpy.ops.gid.bake_loop, "not a GID bake; choose another output folder", folder, image=image.name)
    assert (loop / "frame_0001.png").read_bytes() == b"somebody else's frame"
    # The same for a motion file that is not ours.
    (folder / "gid" / "tex" / "motion.gidsv").write_bytes(b"not npz")
    write_video(folder / "v.avi")
    image.gid.video_path = "//v.avi"
    expect_error(bpy.ops.gid.extract_motion, "is not a GID motion file", folder, image=image.name)


def test_extract_needs_a_usable_video(scene_blend: dict) -> None:
    folder, image = scene_blend["dir"], scene_blend["image"]
    expect_error(bpy.ops.gid.extract_motion, "choose a video", folder, image=image.name)
    image.gid.video_path = "//missing.avi"
    expect_error(bpy.ops.gid.extract_motion, "video not found", folder, image=image.name)
    write_video(folder / "short.avi", frames=6)  # 0.4 s: too short even to mirror
    image.gid.video_path = "//short.avi"
    expect_error(bpy.ops.gid.extract_motion, "needs at least 1 s", folder, image=image.name)
    assert image.gid.motion_path == ""


def test_writable_folder_rule(tmp_path: Path) -> None:
    """The pure check behind the output-folder errors, without bpy state."""
    assert paths.first_existing_parent(tmp_path / "a" / "b") == tmp_path
    paths.check_writable_folder(tmp_path / "a" / "b")  # creatable: fine
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputFolderError, match="is a file, not a folder"):
        paths.check_writable_folder(tmp_path / "f" / "sub")


def test_unsaved_blend_with_a_relative_video(registered, tmp_path: Path, monkeypatch) -> None:
    """``//clip.avi`` in an unsaved .blend is refused like the image and motion paths, not read from
    the working folder (which holds a clip of that name here)."""
    write_still(tmp_path / "tex.png")
    write_video(tmp_path / "clip.avi")
    monkeypatch.chdir(tmp_path)
    image = bpy.data.images.load(str(tmp_path / "tex.png"))
    image.gid.video_path = "//clip.avi"
    image.gid.output_dir = str(tmp_path / "out")
    assert bpy.data.filepath == ""
    expect_error(bpy.ops.gid.extract_motion, r"video //clip.avi is relative to the .blend, which is not saved: "
                 "save the .blend first", tmp_path, image=image.name)
    assert image.gid.motion_path == ""


def test_linked_image_paths_resolve_in_their_library_and_results_are_refused(registered, tmp_path: Path,
                                                                             motion_file: Path) -> None:
    """A texture library (lib/lib.blend with //tex/still.png) linked into a shot in another folder:
    the image's file is found in the library's folder, and a bake, whose results Blender would not
    save on linked data, is refused with the way out; the library file is not touched."""
    from blender_helpers import fresh_blend

    lib = tmp_path / "lib"
    (lib / "tex").mkdir(parents=True)
    write_still(lib / "tex" / "still.png")
    image = bpy.data.images.load(str(lib / "tex" / "still.png"))
    image.name = "backdrop"
    image.use_fake_user = True
    bpy.ops.wm.save_as_mainfile(filepath=str(lib / "lib.blend"), relative_remap=True)
    assert image.filepath == "//tex/still.png"
    library_bytes = (lib / "lib.blend").read_bytes()

    fresh_blend()
    shot = tmp_path / "shot"
    shot.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(shot / "shot.blend"))
    with bpy.data.libraries.load(str(lib / "lib.blend"), link=True, relative=True) as (src, dst):
        dst.images = ["backdrop"]
    linked = dst.images[0]
    assert linked.library is not None and linked.filepath == "//tex/still.png"
    assert bio.image_path(linked) == lib / "tex" / "still.png"
    assert bio.check_source_image(linked) == lib / "tex" / "still.png"  # was "image file not found"
    for op in (bpy.ops.gid.bake_loop, bpy.ops.gid.bake_displacement, bpy.ops.gid.predict_motion,
               bpy.ops.gid.extract_motion):
        expect_error(op, r"image 'backdrop' is linked from lib.blend; .*make the image local first", tmp_path,
                     image=linked.name)
    assert not any(i.name.startswith("GID") for i in bpy.data.images)
    assert (lib / "lib.blend").read_bytes() == library_bytes
