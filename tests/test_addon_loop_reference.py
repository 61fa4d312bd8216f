"""Baked results are referenced by name: deleting or renaming the baked image reads as "not
baked", re-baking sets the reference again, and the reference survives save and reload.

The reference used to be a PointerProperty on ``Image.gid``. bpy 5.0.1 does not clear such a
pointer when its image is removed (``bpy.data.images.remove``); the dangling pointer then read
as whatever datablock reused the memory, and re-baking or purging orphans crashed Blender
(SIGSEGV). A crash kills the interpreter, so the removal scenario runs in a fresh process
(``removed_results_scenario``) that writes what it observed to a JSON file for the test to check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

bpy = pytest.importorskip("bpy")

from gid import addon
from gid.addon import handlers, props, ui
from gid.addon.nodes import compositor_tree

from blender_helpers import add_material_with_texture, fresh_blend, use_motion
from conftest import write_still

TESTS = Path(__file__).resolve().parent
NO_LOOP = "image 'tex.png' has no baked loop yet: bake a loop first"
LOOP_NAME = "GID loop tex.png"
DISP_NAME = "GID displacement tex.png"


# ----------------------------------------------------------------------------- helpers
class LayoutRecorder:
    """Stands in for ``bpy.types.UILayout`` in ``ui.draw_panel``: records label texts, accepts
    every other call (sub-layouts share the record)."""

    def __init__(self, labels: list[str] | None = None) -> None:
        self.labels = labels if labels is not None else []

    def label(self, text: str = "", icon: str = "NONE") -> None:
        self.labels.append(text)

    def column(self, **_kw: Any) -> "LayoutRecorder":
        return LayoutRecorder(self.labels)

    row = box = column

    def prop(self, *_a: Any, **_kw: Any) -> None:
        pass

    operator = separator = prop


def panel_labels() -> list[str]:
    """The label texts the GID panel draws for the current context (the active material's node)."""
    layout = LayoutRecorder()
    ui.draw_panel(layout, bpy.context)
    return layout.labels


def compositor_loop(image_name: str = "tex.png") -> str:
    """Run the compositor-loop operator as a script would: "FINISHED", or its error text."""
    try:
        result = bpy.ops.gid.setup_compositor_loop("EXEC_DEFAULT", image=image_name)
    except RuntimeError as exc:  # background mode: an ERROR report raises, with its text
        return str(exc).removeprefix("Error: ").strip()
    return "FINISHED" if result == {"FINISHED"} else str(result)


def reopen() -> bpy.types.Image:
    """Save the open .blend, open it again, and return the user's image (a new Python object)."""
    assert bpy.ops.wm.save_mainfile() == {"FINISHED"}
    assert bpy.ops.wm.open_mainfile(filepath=bpy.data.filepath) == {"FINISHED"}
    return bpy.data.images["tex.png"]


def describe(seq: bpy.types.Image | None) -> dict | None:
    """What a test needs to know of a baked sequence datablock, as plain JSON values."""
    if seq is None:
        return None
    return {"name": seq.name, "source": seq.source, "filepath": seq.filepath, "fake_user": seq.use_fake_user}


def bake(image: bpy.types.Image, frames: int = 4, add_node: bool = True) -> None:
    image.gid.frames = frames
    assert bpy.ops.gid.bake_loop("EXEC_DEFAULT", image=image.name, add_node=add_node) == {"FINISHED"}


# ----------------------------------------------------------------------------- removal (subprocess)
def removed_results_scenario(folder_arg: str, motion_arg: str, out_arg: str) -> None:
    """Bake a loop and displacement maps, delete both datablocks, then use everything that reads
    the references; records the outcomes in ``out_arg`` (JSON). Runs in its own process."""
    folder, seen = Path(folder_arg), {}
    fresh_blend()
    addon.register()
    try:
        write_still(folder / "tex.png")
        bpy.ops.wm.save_as_mainfile(filepath=str(folder / "scene.blend"))
        image = bpy.data.images.load(str(folder / "tex.png"))
        add_material_with_texture(image)
        use_motion(image, Path(motion_arg))
        s = image.gid
        bake(image)
        assert bpy.ops.gid.bake_displacement("EXEC_DEFAULT", image=image.name) == {"FINISHED"}
        seen["baked"] = [describe(props.loop_image(s)), describe(props.displacement_image(s))]

        bpy.data.images.remove(props.loop_image(s))
        bpy.data.images.remove(props.displacement_image(s))
        for i in range(20):  # reuse the freed memory: a dangling pointer read as one of these
            bpy.data.images.new(f"filler {i}", 8, 8)
        seen["removed"] = [describe(props.loop_image(s)), describe(props.displacement_image(s))]
        seen["removed_names"] = [s.loop_image_name, s.displacement_image_name, s.loop_frames]
        seen["removed_labels"] = ui.result_labels(s)
        seen["removed_panel"] = panel_labels()
        seen["removed_compositor"] = compositor_loop()
        seen["removed_compositor_tree"] = compositor_tree(bpy.context.scene, create=False) is not None
        # Purging visits every ID reference: a dangling one crashed here.
        bpy.ops.outliner.orphans_purge(do_recursive=True)
        seen["purged"] = [describe(props.loop_image(s)), "filler 0" in bpy.data.images]

        bake(image, frames=5)  # crashed (SIGSEGV) with the dangling pointer on 5.0.1
        assert bpy.ops.gid.bake_displacement("EXEC_DEFAULT", image=image.name) == {"FINISHED"}
        seen["rebaked"] = [describe(props.loop_image(s)), describe(props.displacement_image(s)), s.loop_frames]
        seen["rebaked_panel"] = panel_labels()
        seen["rebaked_compositor"] = compositor_loop()
        tree = compositor_tree(bpy.context.scene, create=False)
        seen["compositor_plays"] = [n.image.name for n in tree.nodes if n.bl_idname == "CompositorNodeImage"]

        s = reopen().gid
        seen["reopened"] = [describe(props.loop_image(s)), describe(props.displacement_image(s)), s.loop_frames]
        seen["reopened_compositor"] = compositor_loop()

        bpy.data.images.remove(props.loop_image(s))  # deleted, then saved that way
        s = reopen().gid
        seen["removed_reopened"] = [describe(props.loop_image(s)), s.loop_image_name]
        seen["removed_reopened_compositor"] = compositor_loop()
    finally:
        Path(out_arg).write_text(json.dumps(seen))
        addon.unregister()


def test_deleted_baked_images_read_as_not_baked(tmp_path: Path, motion_file: Path) -> None:
    out = tmp_path / "seen.json"
    code = ("import sys; sys.path.insert(0, '.'); from test_addon_loop_reference import removed_results_scenario;"
            " removed_results_scenario(*sys.argv[1:])")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(motion_file), str(out)], cwd=TESTS,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"rc {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    seen = json.loads(out.read_text())

    loop = {"name": LOOP_NAME, "source": "SEQUENCE", "filepath": "//gid/tex/loop/frame_0001.png",
            "fake_user": True}
    disp = {"name": DISP_NAME, "source": "SEQUENCE", "filepath": "//gid/tex/displacement/disp_node_0001.exr",
            "fake_user": True}
    assert seen["baked"] == [loop, disp]
    # Deleted: nothing resolves (not a filler that reused the memory), the panel lists no result,
    # the operator asks for a bake and builds nothing.
    assert seen["removed"] == [None, None]
    assert seen["removed_names"] == [LOOP_NAME, DISP_NAME, 4]  # stale names are harmless
    assert seen["removed_labels"] == []
    assert "tex.png" in seen["removed_panel"]
    assert not [t for t in seen["removed_panel"] if t.startswith(("Loop:", "Displacement:"))]
    assert seen["removed_compositor"] == NO_LOOP and seen["removed_compositor_tree"] is False
    assert seen["purged"] == [None, False]
    # Re-baking loads new datablocks (the names are free again) and references them.
    assert seen["rebaked"] == [loop, disp, 5]
    assert f"Loop: {LOOP_NAME} (5 frames)" in seen["rebaked_panel"]
    assert seen["rebaked_compositor"] == "FINISHED" and seen["compositor_plays"] == [LOOP_NAME]
    # The reference survives save and reload, also of a sequence deleted before the save.
    assert seen["reopened"] == [loop, disp, 5] and seen["reopened_compositor"] == "FINISHED"
    assert seen["removed_reopened"] == [None, LOOP_NAME]
    assert seen["removed_reopened_compositor"] == NO_LOOP


# ----------------------------------------------------------------------------- in process
def test_renamed_loop_reads_as_not_baked(scene_blend: dict, motion_file: Path) -> None:
    image = scene_blend["image"]
    add_material_with_texture(image)
    use_motion(image, motion_file)
    bake(image)
    seq = props.loop_image(image.gid)
    seq.name = "my loop"
    assert props.loop_image(image.gid) is None and ui.result_labels(image.gid) == []
    assert compositor_loop() == NO_LOOP
    # Re-baking loads a datablock of its own; the user's renamed one is left as it is.
    bake(image)
    again = props.loop_image(image.gid)
    assert again is not None and again.name == LOOP_NAME and again != seq
    assert bpy.data.images["my loop"].filepath == again.filepath == "//gid/tex/loop/frame_0001.png"
    assert ui.result_labels(image.gid) == [(f"Loop: {LOOP_NAME} (4 frames)", "SEQUENCE")]


def test_loop_no_node_shows_survives_reload(scene_blend: dict, motion_file: Path) -> None:
    """A name holds no user: the fake user keeps a sequence nothing shows in the saved file."""
    image = scene_blend["image"]
    add_material_with_texture(image)  # the still's user, so the .blend keeps it
    use_motion(image, motion_file)
    bake(image, add_node=False)
    seq = props.loop_image(image.gid)
    assert seq.users == 1 and seq.use_fake_user  # the fake user is its only user
    before = describe(seq)
    image = reopen()
    assert describe(props.loop_image(image.gid)) == before and before["name"] == LOOP_NAME
    assert image.gid.loop_frames == 4 and compositor_loop() == "FINISHED"


def _as_old_file(settings: Any) -> bpy.types.Image:
    """Make ``settings`` look like a .blend of the pointer-based versions: the legacy pointer set,
    no name, and no fake user (the pointer was the sequence's user)."""
    seq = props.loop_image(settings)
    props.set_loop_image(settings, None)
    seq.use_fake_user = False
    settings.loop_image = seq  # safe: nothing is removed while it is set
    return seq


def test_legacy_pointer_migrates_on_load(scene_blend: dict, motion_file: Path) -> None:
    image = scene_blend["image"]
    add_material_with_texture(image)  # the still's user, so the .blend keeps it
    use_motion(image, motion_file)
    bake(image, add_node=False)
    seq = _as_old_file(image.gid)
    assert image.gid.loop_image_name == "" and seq.users == 1

    s = reopen().gid
    assert s.loop_image_name == LOOP_NAME and s.loop_image is None  # moved, pointer cleared
    loop = props.loop_image(s)
    assert loop is not None and loop.use_fake_user and loop.users == 1
    assert compositor_loop() == "FINISHED"
    before = describe(loop)
    s = reopen().gid  # kept by the fake user now, not the pointer
    assert describe(props.loop_image(s)) == before


def test_legacy_migration_keeps_names_and_skips_non_sequences(scene_blend: dict, motion_file: Path) -> None:
    image = scene_blend["image"]
    add_material_with_texture(image)  # the still's user, so the .blend keeps it
    use_motion(image, motion_file)
    bake(image, add_node=False)
    s = image.gid
    other = bpy.data.images.new("other", 4, 4)
    other.use_fake_user = True
    s.loop_image = other  # an old pointer, but the name (newer) wins
    s.displacement_image = image  # not a sequence: never a baked result
    assert handlers.migrate_all_images() == 1
    assert (s.loop_image, s.displacement_image) == (None, None)
    assert (s.loop_image_name, s.displacement_image_name) == (LOOP_NAME, "")
    assert handlers.migrate_all_images() == 0


def test_panel_lists_only_results_that_resolve(scene_blend: dict) -> None:
    s = scene_blend["image"].gid
    assert ui.result_labels(s) == []
    seq = bpy.data.images.new("baked", 4, 4)
    props.set_loop_image(s, seq)
    s.loop_frames = 3
    props.set_displacement_image(s, seq)
    s.displacement_scale = 2.5
    assert seq.use_fake_user
    assert ui.result_labels(s) == [("Loop: baked (3 frames)", "SEQUENCE"),
                                      ("Displacement: baked (scale 2.5)", "MOD_DISPLACE")]
    props.set_displacement_image(s, None)
    assert s.displacement_image_name == "" and props.displacement_image(s) is None
    assert props.image_named("") is None and props.image_named("no such image") is None
