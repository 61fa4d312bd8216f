"""Interactive dynamics in Blender (real headless bpy): pokes on the timeline, live preview,
keyframes, masks, persistence and the bake, on a 64x48 still."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from gid.addon.dynamics import pokes, preview
from gid.exporters.colors import srgb_to_linear
from gid.exporters.frames import decode_frame
from gid.exporters.opencv import cv2
from gid.gid_engine.media.imaging import load_image
from gid.gid_engine.dynamics.interactive import interactive_frames
from gid.gid_engine.dynamics.modal import Poke
from gid.gid_engine.motion.spectral_volume import SpectralVolume
from gid.gid_engine.motion.sv_file import save_spectral_volume

from blender_helpers import image_pixels_top_down
from conftest import textured_image

W, H = 64, 48


def _bump(cx: float = 0.5, cy: float = 0.5, sigma: float = 0.25) -> np.ndarray:
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    return np.exp(-(((xs + 0.5) / W - cx) ** 2 + ((ys + 0.5) / H - cy) ** 2) / (2 * sigma**2)).astype(np.float32)


def write_motion(path: Path) -> Path:
    """Two smooth modes: bin 2 (1 Hz) sways in x, bin 5 (2.5 Hz) in y."""
    coeffs = np.zeros((8, 4, H, W), np.float32)
    coeffs[2, 0] = 2.0 * _bump()
    coeffs[2, 1] = 0.5 * _bump(cx=0.4)
    coeffs[5, 2] = 1.0 * _bump(cy=0.6)
    save_spectral_volume(SpectralVolume(coeffs, fps=30.0, num_frames=60, source="synthetic"), path)
    return path


@pytest.fixture
def setup(registered, tmp_path: Path) -> dict:
    """A saved .blend with the still tex.png, its motion file, the scene's source set to it."""
    rgb = (textured_image(H, W, seed=1) * 255 + 0.5).astype(np.uint8)
    assert cv2.imwrite(str(tmp_path / "tex.png"), rgb[:, :, ::-1])
    write_motion(tmp_path / "motion.gidsv")
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    image = bpy.data.images.load(str(tmp_path / "tex.png"))
    image.gid.motion_path = "//motion.gidsv"
    scene = bpy.context.scene
    scene.gid_interactive.source_image = image
    # The still as the preview shows it: Blender's float images are linear, the PNG is sRGB.
    still = srgb_to_linear(image_pixels_top_down(image), has_alpha=True)
    exact = srgb_to_linear(np.concatenate([rgb / 255.0, np.ones((H, W, 1))], axis=2), has_alpha=True)
    assert float(np.abs(still - exact).max()) < 1e-6
    return {"dir": tmp_path, "blend": blend, "image": image, "scene": scene, "rgb": rgb, "still": still}


def add_two_pokes(scene) -> None:
    """Poke 0: impulse at frame 15, strength keyed 0 @ 10 -> 5 @ 20 (2.5 at 15). Poke 1: a
    4-frame upward drag at frame 25."""
    assert bpy.ops.gid.add_poke(frame=15, position=(0.5, 0.5), direction=(1.0, 0.0), strength=3.0) == {"FINISHED"}
    assert bpy.ops.gid.add_poke(frame=25, position=(0.3, 0.6), direction=(0.0, 1.0), strength=2.0,
                                duration=4.0) == {"FINISHED"}
    p = scene.gid_pokes[0]
    p.strength = 0.0
    assert scene.keyframe_insert("gid_pokes[0].strength", frame=10)
    p.strength = 5.0
    assert scene.keyframe_insert("gid_pokes[0].strength", frame=20)


def preview_at(scene, frame: int) -> np.ndarray:
    scene.frame_set(frame)
    image = scene.gid_interactive.preview_image
    assert image is not None, preview.preview_status(scene)
    return image_pixels_top_down(image).copy()


# ----------------------------------------------------------------------------------- pokes
def test_pokes_convert_to_engine_coordinates_and_keys_are_read_at_the_pokes_frame(setup: dict) -> None:
    scene = setup["scene"]
    add_two_pokes(scene)
    expected = (Poke(15, 0.5, 0.5, 1.0, 0.0, strength=2.5, radius=0.05),
                Poke(25, 0.3, 0.4, 0.0, -1.0, strength=2.0, radius=0.05, duration=4.0))
    for current in (1, 10, 15, 20, 40):  # independent of where the playhead is
        scene.frame_set(current)
        got = pokes.read_pokes(scene)
        assert len(got) == 2
        for g, e in zip(got, expected):
            for name in ("frame", "x", "y", "dx", "dy", "strength", "radius", "duration"):
                assert getattr(g, name) == pytest.approx(getattr(e, name), abs=1e-6), (current, name)
    scene.frame_set(20)
    assert scene.gid_pokes[0].strength == pytest.approx(5.0)  # the RNA value is animated...
    assert pokes.read_pokes(scene)[0].strength == pytest.approx(2.5, abs=1e-6)  # ...the poke acts at 15

    # A keyed drag is split into 1-frame drags, each with the value at its frame.
    drag = scene.gid_pokes[1]
    drag.strength = 1.0
    scene.keyframe_insert("gid_pokes[1].strength", frame=25)
    drag.strength = 4.0
    scene.keyframe_insert("gid_pokes[1].strength", frame=28)
    for fc in pokes.scene_fcurves(scene):
        if fc.data_path == "gid_pokes[1].strength":
            for kp in fc.keyframe_points:
                kp.interpolation = "LINEAR"
    split = [p for p in pokes.read_pokes(scene) if p.frame >= 25]
    assert [p.frame for p in split] == [25, 26, 27, 28]
    assert [p.duration for p in split] == [1, 1, 1, 1]
    assert [p.strength for p in split] == pytest.approx([1.0, 2.0, 3.0, 4.0], abs=1e-6)

    # Disabled and zero-direction pokes do nothing.
    scene.gid_pokes[0].enabled = False
    scene.gid_pokes[1].direction = (0.0, 0.0)
    assert pokes.read_pokes(scene) == ()


def test_removing_a_poke_moves_later_keyframes_down(setup: dict) -> None:
    scene = setup["scene"]
    add_two_pokes(scene)
    assert bpy.ops.gid.add_poke(frame=40, position=(0.7, 0.2), direction=(1.0, 1.0), strength=1.0) == {"FINISHED"}
    p2 = scene.gid_pokes[2]
    p2.radius = 0.1
    scene.keyframe_insert("gid_pokes[2].radius", frame=30)
    p2.radius = 0.2
    scene.keyframe_insert("gid_pokes[2].radius", frame=50)
    assert bpy.ops.gid.remove_poke(index=0) == {"FINISHED"}
    paths = sorted(fc.data_path for fc in pokes.scene_fcurves(scene))
    assert paths == ["gid_pokes[1].radius"]
    assert [p.frame for p in scene.gid_pokes] == [25, 40]
    assert pokes.read_pokes(scene)[1].radius == pytest.approx(0.15, abs=1e-6)  # keyed 0.1 @ 30, 0.2 @ 50


# ----------------------------------------------------------------------------------- preview
def test_preview_is_the_still_until_the_poke_then_moves(setup: dict) -> None:
    scene, still = setup["scene"], setup["still"]
    add_two_pokes(scene)
    diffs = {}
    for frame in range(1, 31):
        px = preview_at(scene, frame)
        assert px.shape == (H, W, 4)
        diffs[frame] = float(np.abs(px - still).max())
        if frame <= 15:  # the impulse at 15 changes the velocity; the picture moves from 16 on
            assert np.array_equal(px, still), frame
    assert all(diffs[f] > 0 for f in range(16, 31))
    assert max(diffs.values()) > 0.1
    assert preview.preview_status(scene) == "Frame 30: 2 poke(s), 7 modes"
    image = scene.gid_interactive.preview_image
    assert image.name == "GID Preview" and image.is_float and tuple(image.size) == (W, H)


def test_scrubbing_back_gives_the_same_pixels_as_playing_forward(setup: dict) -> None:
    scene = setup["scene"]
    add_two_pokes(scene)
    forward = {f: preview_at(scene, f) for f in range(1, 41)}
    for f in (33, 18, 27, 40, 16, 33):  # backwards, forwards, repeated
        assert np.array_equal(preview_at(scene, f), forward[f]), f
    preview.clear_caches()  # a fresh session jumping straight to a frame
    assert np.array_equal(preview_at(scene, 27), forward[27])
    assert float(np.abs(forward[27] - forward[26]).max()) > 0.01


def test_a_black_mask_freezes_the_preview(setup: dict) -> None:
    scene, still = setup["scene"], setup["still"]
    add_two_pokes(scene)
    moving = preview_at(scene, 22)
    assert float(np.abs(moving - still).max()) > 0.1
    mask = bpy.data.images.new("mask", W, H)
    mask.generated_color = (0.0, 0.0, 0.0, 1.0)
    scene.gid_interactive.mask_image = mask
    for frame in (18, 22, 30):
        assert np.array_equal(preview_at(scene, frame), still), frame
    # Painting it white again (pixels written as Texture Paint would) brings the motion back.
    mask.pixels.foreach_set(np.ones(W * H * 4, np.float32))
    scene.frame_set(21)
    assert np.array_equal(preview_at(scene, 22), moving)


def test_the_handler_never_raises(setup: dict) -> None:
    scene = setup["scene"]
    add_two_pokes(scene)
    setup["image"].gid.motion_path = "//missing.gidsv"
    scene.frame_set(20)  # would raise into Blender if the handler did
    assert preview.preview_status(scene).startswith("Error: motion file not found")
    scene.gid_interactive.source_image = None
    scene.frame_set(21)
    assert preview.preview_status(scene).startswith("Error: choose the image to poke")
    scene.gid_interactive.preview_enabled = False
    scene.frame_set(22)
    assert preview.preview_status(scene).startswith("Error: choose")  # off: nothing runs, nothing changes


# ----------------------------------------------------------------------------------- persistence
def test_pokes_keyframes_and_settings_survive_save_and_reopen(setup: dict) -> None:
    scene = setup["scene"]
    add_two_pokes(scene)
    settings = scene.gid_interactive
    settings.damping, settings.stiffness_scale, settings.mass_scale = 0.08, 1.5, 0.75
    settings.frequencies, settings.num_peaks = "PEAKS", 2
    mask = bpy.data.images.new("mask", W, H)
    mask.generated_color = (1.0, 1.0, 1.0, 1.0)
    settings.mask_image = mask
    before = preview_at(scene, 24)
    pokes_before = pokes.read_pokes(scene)
    bpy.ops.wm.save_mainfile()

    bpy.ops.wm.open_mainfile(filepath=str(setup["blend"]))
    scene = bpy.context.scene
    s = scene.gid_interactive
    assert [(p.frame, tuple(p.position), tuple(p.direction), p.radius, p.duration, p.enabled)
            for p in scene.gid_pokes] == [
        (15, pytest.approx((0.5, 0.5)), pytest.approx((1.0, 0.0)), pytest.approx(0.05), 0.0, True),
        (25, pytest.approx((0.3, 0.6)), pytest.approx((0.0, 1.0)), pytest.approx(0.05), 4.0, True)]
    curves = {fc.data_path: [(tuple(k.co)) for k in fc.keyframe_points] for fc in pokes.scene_fcurves(scene)}
    assert curves == {"gid_pokes[0].strength": [(10.0, 0.0), (20.0, 5.0)]}
    assert (s.damping, s.stiffness_scale, s.mass_scale) == pytest.approx((0.08, 1.5, 0.75))
    assert (s.frequencies, s.num_peaks, s.source_image.name, s.mask_image.name) == ("PEAKS", 2, "tex.png", "mask")
    assert pokes.read_pokes(scene) == pokes_before
    assert np.array_equal(preview_at(scene, 24), before)


def test_save_as_elsewhere_keeps_the_motion_override(setup: dict) -> None:
    from gid.addon import blender_io as bio

    scene, folder = setup["scene"], setup["dir"]
    add_two_pokes(scene)
    setup["image"].gid.motion_path = ""
    scene.gid_interactive.motion_path = "//motion.gidsv"
    before = preview_at(scene, 23)
    assert float(np.abs(before - setup["still"]).max()) > 0.05
    other = folder / "versions" / "v2.blend"
    other.parent.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(other))
    assert scene.gid_interactive.motion_path == "//../motion.gidsv"
    bpy.ops.wm.open_mainfile(filepath=str(other))
    scene = bpy.context.scene
    assert bio.abspath(scene.gid_interactive.motion_path) == folder / "motion.gidsv"
    assert np.array_equal(preview_at(scene, 23), before)


# ----------------------------------------------------------------------------------- bake
def test_bake_equals_the_engines_interactive_frames(setup: dict) -> None:
    scene, folder = setup["scene"], setup["dir"]
    add_two_pokes(scene)
    scene.frame_start, scene.frame_end = 14, 19
    assert bpy.ops.gid.bake_interaction("EXEC_DEFAULT") == {"FINISHED"}
    out = folder / "gid" / "tex" / "interactive"
    assert sorted(p.name for p in out.iterdir()) == sorted([f"frame_{i:04d}.png" for i in range(1, 7)] + ["frame.json"])
    _, sim = preview.get_simulator(scene)
    expected = list(interactive_frames(load_image(folder / "tex.png"), sim, pokes.read_pokes(scene), range(14, 20),
                                       preview.get_splatter("cpu")))
    worst = 0.0
    for i, frame in enumerate(expected, start=1):
        png = decode_frame(out / f"frame_{i:04d}.png").astype(np.float32) / 255.0
        worst = max(worst, float(np.abs(png - frame).max()))
    assert worst <= 1 / 255
    assert np.array_equal(decode_frame(out / "frame_0002.png"), setup["rgb"])  # frame 15: still at rest
    assert float(np.abs(expected[-1] - expected[0]).max()) > 0.05  # and it did move by frame 19

    s = scene.gid_interactive
    seq = s.baked_image
    assert seq is not None and seq.source == "SEQUENCE" and (s.baked_frames, s.baked_start) == (6, 14)
    assert seq.filepath == "//gid/tex/interactive/frame_0001.png"
    assert setup["image"].gid.status.startswith("Baked frames 14-19 (6)")

    # Re-baking with displacement maps reuses the image and adds the Displace-node maps.
    s.bake_displacement = True
    assert bpy.ops.gid.bake_interaction("EXEC_DEFAULT") == {"FINISHED"}
    assert s.baked_image == seq and len([i for i in bpy.data.images if i.source == "SEQUENCE"]) == 2
    disp = s.baked_displacement_image
    assert disp.colorspace_settings.name == "Non-Color" and s.baked_displacement_scale > 0.1
    raw = decode_frame(out / "disp_0006.exr")
    np.testing.assert_allclose(np.moveaxis(raw[:, :, :2], 2, 0), sim.displacement_at(19, pokes.read_pokes(scene)),
                               atol=1e-6)


def test_live_dynamics_keys_follow_the_pokes(setup: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """gid.live_dynamics keys the group's modal coordinates to the simulation on every frame; the
    group's series is then the simulator's displacement, and adding a poke rewrites the keys."""
    from blender_helpers import add_material_with_texture

    from gid.addon.dynamics import pokes as scene_pokes
    from gid.addon.dynamics import preview
    from gid.addon.live import handlers as live_handlers
    from gid.addon.live import ops as live_ops
    from gid.gid_engine.rendering.live import modal_volume

    scene, image = setup["scene"], setup["image"]
    scene.frame_start, scene.frame_end = 1, 60
    add_material_with_texture(image)
    assert bpy.ops.gid.add_poke(frame=15, position=(0.5, 0.5), direction=(1.0, 0.0), strength=3.0) == {"FINISHED"}
    assert bpy.ops.gid.live_dynamics(image=image.name) == {"FINISHED"}
    (node,) = live_ops.dynamics_nodes(scene)
    assert not node.inputs["Vector"].links[0].from_node.get(live_ops.TAG_DYNAMICS)  # fed by coordinates

    def check(frames: tuple[int, ...]) -> None:
        _key, sim = preview.get_simulator(scene, image)
        pokes = scene_pokes.read_pokes(scene)
        modal = modal_volume(sim.basis)
        for f in frames:
            scene.frame_set(f)
            q = sim.state_at(f, pokes)[0]
            got = np.array([node.inputs[f"q{j} Re"].default_value + 1j * node.inputs[f"q{j} Im"].default_value
                            for j in range(len(q))])
            assert np.allclose(got, q, atol=1e-6 + 1e-5 * np.abs(q).max()), f
            c = modal.coeffs.astype(np.float64)
            series = np.stack([(c[:, 0] * got.real[:, None, None] - c[:, 1] * got.imag[:, None, None]).sum(0),
                               (c[:, 2] * got.real[:, None, None] - c[:, 3] * got.imag[:, None, None]).sum(0)])
            assert np.allclose(series, sim.displacement_at(f, pokes), atol=1e-4)

    check((10, 20, 33))
    def keyed_at(f: int) -> list[float]:
        scene.frame_set(f)
        return [s.default_value for s in node.inputs if s.name.startswith("q")]

    before = keyed_at(40)
    looked = []  # the handler's look at the pokes: only after updates that may have changed them
    real_state = live_handlers._state
    monkeypatch.setattr(live_handlers, "_state", lambda s: looked.append(s.name) or real_state(s))
    bpy.ops.mesh.primitive_plane_add()
    bpy.context.view_layer.update()
    looked.clear()
    for x in range(5):  # an object dragged about: the pokes are not read
        bpy.context.object.location.x = float(x)
        bpy.context.view_layer.update()
    assert looked == []
    assert bpy.ops.gid.add_poke(frame=30, position=(0.3, 0.6), direction=(0.0, 1.0), strength=4.0) == {"FINISHED"}
    bpy.context.view_layer.update()  # the depsgraph handler sees the new poke and keys again
    assert looked and set(looked) == {scene.name}
    check((35, 40))
    assert keyed_at(40) != pytest.approx(before)  # the new poke moved the keys
