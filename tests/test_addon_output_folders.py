"""Each image's results live in a folder of its own, and no bake replaces another image's files.

'tex a.png' and 'tex_a.png' sanitise to the same folder name; an owner file in each image's
output folder (written when a job succeeds) says whose results it holds, so the second image gets
a folder of its own, and a shared folder (a template without {image}) is refused, not merged.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from gid.addon.utils import paths
from gid.exporters.frames import decode_frame

from blender_helpers import use_motion
from conftest import write_still, write_video


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def two_images(registered, tmp_path: Path, motion_file: Path) -> dict:
    """A saved .blend with two different stills whose names sanitise alike."""
    stills = {name: write_still(tmp_path / name, seed=seed) for name, seed in (("tex a.png", 1), ("tex_a.png", 7))}
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    images = {name: bpy.data.images.load(str(tmp_path / name)) for name in stills}
    for image in images.values():
        use_motion(image, motion_file)
    assert paths.safe_name("tex a.png") == paths.safe_name("tex_a.png") == "tex_a"
    return {"dir": tmp_path, "images": images, "stills": stills}


def bake(image: "bpy.types.Image") -> None:
    image.gid.frames = 4
    assert bpy.ops.gid.bake_loop("EXEC_DEFAULT", image=image.name, add_node=False) == {"FINISHED"}


def test_names_that_sanitise_alike_bake_into_their_own_folders(two_images: dict) -> None:
    folder, images, stills = two_images["dir"], two_images["images"], two_images["stills"]
    bake(images["tex a.png"])
    first = folder / "gid" / "tex_a"
    before = digests(first)
    assert json.loads((first / paths.OWNER_FILE).read_text())["image"] == "tex a.png"

    bake(images["tex_a.png"])
    assert digests(first) == before  # the first image's loop, byte for byte
    second = folder / "gid" / next(k for k in paths.output_keys("tex_a.png") if k != "tex_a")
    assert json.loads((second / paths.OWNER_FILE).read_text())["image"] == "tex_a.png"
    for name, root in (("tex a.png", first), ("tex_a.png", second)):
        frame = decode_frame(root / "loop" / "frame_0001.png").astype(int)
        own = np.abs(frame - stills[name].astype(int)).mean()
        other = np.abs(frame - stills["tex_a.png" if name == "tex a.png" else "tex a.png"].astype(int)).mean()
        assert own < 8 < other, (name, own, other)  # each loop animates its own still
        assert images[name].gid.loop_frames == 4

    bake(images["tex a.png"])  # a re-bake finds its own folder again
    assert sorted(p.name for p in (folder / "gid").iterdir()) == sorted(["tex_a", second.name])


def test_extracting_for_the_second_image_keeps_the_first_images_motion(two_images: dict) -> None:
    folder, images = two_images["dir"], two_images["images"]
    write_video(folder / "sway.avi")
    for image in images.values():
        image.gid.video_path = "//sway.avi"
    assert bpy.ops.gid.extract_motion("EXEC_DEFAULT", image="tex a.png") == {"FINISHED"}
    motion_a = folder / "gid" / "tex_a" / paths.MOTION_FILE
    before = motion_a.read_bytes()
    assert bpy.ops.gid.extract_motion("EXEC_DEFAULT", image="tex_a.png") == {"FINISHED"}
    assert motion_a.read_bytes() == before
    assert images["tex a.png"].gid.motion_path == "//gid/tex_a/motion.gidsv"
    assert images["tex_a.png"].gid.motion_path.startswith("//gid/tex_a-")


def test_a_shared_output_folder_is_refused_for_the_second_image(two_images: dict, capfd) -> None:
    folder, images = two_images["dir"], two_images["images"]
    for image in images.values():
        image.gid.output_dir = "//shared/"  # no {image}: one folder for both
    bake(images["tex a.png"])
    before = digests(folder / "shared")
    images["tex_a.png"].gid.frames = 4
    with pytest.raises(RuntimeError):
        bpy.ops.gid.bake_loop("EXEC_DEFAULT", image="tex_a.png", add_node=False)
    err = capfd.readouterr().out
    assert "holds the GID results of image 'tex a.png', not of 'tex_a.png'; put {image} in the output folder" in err
    assert digests(folder / "shared") == before


def test_a_folder_baked_before_owner_files_is_known_by_its_still(two_images: dict) -> None:
    """Results of an older gid (no owner file) belong to the still their sidecar names."""
    folder, images = two_images["dir"], two_images["images"]
    bake(images["tex a.png"])
    root = folder / "gid" / "tex_a"
    (root / paths.OWNER_FILE).unlink()  # as an older gid left it
    before = digests(root)
    assert paths.folder_owner(root) == paths.Owner("", str((folder / "tex a.png").resolve()))
    bake(images["tex_a.png"])
    assert digests(root) == before
    bake(images["tex a.png"])  # its own still: the folder is its own again, and now says so
    assert json.loads((root / paths.OWNER_FILE).read_text())["image"] == "tex a.png"
