"""Simulated training data (``gid make-data``): the physics, the exact ground truth, and the shards.

The bpy-free parts are checked against closed forms; the Blender parts run in a child process
(the scene builder resets Blender's state, which the add-on tests in this process rely on)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gid.gid_tools.simdata.motion import (VertexModes, cantilever_frequency, cantilever_shape, oscillator_response,
                                          wind_spectrum)
from gid.gid_tools.simdata.scenes import ALL_KINDS, Material, Part, Scene, build_scene
from gid.gid_tools.simdata.shards import View, quantize, read_shard, write_shard
from gid.gid_tools.simdata.truth import Hits, Projection, trajectories
from gid.gid_engine.errors import InputError
from gid.gid_engine.motion.spectral_volume import SpectralVolume

REPO = Path(__file__).resolve().parents[1]


def test_cantilever_mode_is_clamped_at_the_anchor_and_one_at_the_tip():
    s = np.linspace(0, 1, 101)
    shape = cantilever_shape(s)
    assert shape[0] == pytest.approx(0.0, abs=1e-12) and shape[-1] == pytest.approx(1.0, abs=1e-12)
    assert (shape[1] - shape[0]) / 0.01 < 0.02  # flat at the clamp
    assert np.all(np.diff(shape) > 0)
    # natural frequency scales as r / L^2
    f = cantilever_frequency(2.0, 0.05)
    assert cantilever_frequency(4.0, 0.05) == pytest.approx(f / 4)
    assert cantilever_frequency(2.0, 0.10) == pytest.approx(f * 2)


def test_oscillator_resonates_at_its_natural_frequency():
    n, fps = 150, 30.0
    force = np.zeros(n // 2 + 1, complex)
    force[1:] = 1.0  # flat spectrum
    x = oscillator_response(force, 1.0, 0.05, n, fps)
    spec = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(n, 1 / fps)
    assert freqs[np.argmax(spec)] == pytest.approx(1.0, abs=0.2)
    assert spec.max() / spec[1] == pytest.approx(1 / (2 * 0.05), rel=0.15)  # resonance gain 1/(2 zeta)
    w = np.fft.irfft(wind_spectrum(np.random.default_rng(0), n, fps), n=n)
    assert w.std() == pytest.approx(1.0, rel=1e-6) and abs(w.mean()) < 1e-9


def test_vertex_modes_sum_their_entries():
    rng = np.random.default_rng(1)
    modes = VertexModes(rng.integers(0, 5, (7, 3)).astype(np.int32), rng.normal(size=(7, 3, 3)).astype(np.float32))
    q = rng.normal(size=(5, 4))
    want = np.zeros((4, 7, 3))
    for v in range(7):
        for j in range(3):
            want[:, v] += modes.w[v, j][None, :] * q[modes.idx[v, j]][:, None]
    np.testing.assert_allclose(modes.displacement(q), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(modes.displacement(q[:, 2]), want[2], rtol=1e-5, atol=1e-5)


def _camera(width: int = 64, height: int = 40) -> Projection:
    """A camera at the origin looking down -z (world = camera space), 36 mm sensor, 50 mm lens."""
    half_w = 18.0 / 50.0
    return Projection(np.eye(4), -half_w, half_w, -half_w * height / width, half_w * height / width, 1.0,
                      width, height)


def test_trajectories_of_a_translating_plane_are_exact():
    """A fronto-parallel plane at depth 5 moving sideways by a(t) metres moves every pixel it covers
    by a(t) * focal_px / 5, exactly (no rays needed: the hits are given)."""
    cam = _camera()
    verts = np.array([[-10.0, -10.0, -5.0], [10.0, -10.0, -5.0], [10.0, 10.0, -5.0], [-10.0, 10.0, -5.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    modes = VertexModes(np.zeros((4, 1), np.int32), np.tile(np.array([[[1.0, 0.0, 0.0]]], np.float32), (4, 1, 1)))
    t = np.arange(150)
    q = (0.02 * np.sin(2 * np.pi * 3 * t / 150))[None]
    part = Part("plane", verts, faces, np.zeros((4, 2), np.float32), Material(), modes)
    scene = Scene("test", 0, [part], q, None, [])  # type: ignore[arg-type]
    origin, dirs = cam.rays()
    hit = origin + dirs * (5.0 / -dirs[..., 2:3])  # where each ray meets z = -5
    tri = np.where(hit[..., 1] - hit[..., 0] > 0, 1, 0)  # which triangle of the quad
    a, b, c = (verts[faces[tri][..., i]] for i in range(3))
    from gid.gid_tools.simdata.truth import barycentric

    bary = barycentric(hit.reshape(-1, 3), a.reshape(-1, 3), b.reshape(-1, 3), c.reshape(-1, 3)).reshape(40, 64, 3)
    texture, moving = trajectories(scene, Hits(np.zeros((40, 64), np.int32), tri, bary), cam)
    assert moving.all()
    focal_px = 64 / (2 * 18.0 / 50.0)
    want = q[0] * focal_px / 5.0
    np.testing.assert_allclose(texture[:, 0, 20, 32], want, atol=1e-4)
    np.testing.assert_allclose(texture[:, 0], np.broadcast_to(want[:, None, None], (150, 40, 64)), atol=1e-4)
    assert np.abs(texture[:, 1]).max() < 1e-6
    sv = SpectralVolume.from_motion_texture(texture)
    assert np.hypot(sv.coeffs[3, 0], sv.coeffs[3, 1]).mean() == pytest.approx(0.02 * focal_px / 5.0 / 2, rel=1e-4)


def test_projection_maps_ray_points_to_pixel_centres():
    cam = _camera()
    origin, dirs = cam.rays()
    px = cam.pixels(origin + 7.0 * dirs)
    xs, ys = np.meshgrid(np.arange(64) + 0.5, np.arange(40) + 0.5)
    np.testing.assert_allclose(px[..., 0], xs, atol=1e-6)
    np.testing.assert_allclose(px[..., 1], ys, atol=1e-6)


def test_scenes_are_deterministic_and_anchored():
    stills = ("mate_garden.jpg",)
    for kind in ALL_KINDS:
        a, b = build_scene(11, kind, stills=stills, cameras=2), build_scene(11, kind, stills=stills, cameras=2)
        assert a.kind == kind and np.array_equal(a.q, b.q)
        assert all(np.array_equal(p.verts, r.verts) for p, r in zip(a.parts, b.parts))
        assert np.abs(a.q[:, 0]).max() == 0.0  # frame 0 is the rest pose
        assert any(p.moves for p in a.parts) and any(not p.moves for p in a.parts)
    tree = build_scene(11, "tree", stills=stills)
    branches = tree.parts[0]
    # the trunk's base ring is clamped: it never moves
    base = branches.verts[:, 2] < 1e-9
    assert base.any() and np.abs(branches.modes.displacement(tree.q)[:, base]).max() < 1e-9


def test_a_stream_moves_its_water_only_along_the_current_and_in_band():
    """A stream (by name only): the banks and rocks are static; the water is still at the banks and
    moves most mid-channel; its surface points move mostly along the current; the motion's power lies
    in the spectral volume's band (below K = 16 bins of 0.2 Hz); and the drawn mix of kinds is the
    one every shipped model's data was made with."""
    stills = ("mate_garden.jpg",)
    assert "".join(build_scene(s, stills=stills, cameras=1).kind[0] for s in range(12)) == "tctwttgttgtf"
    for seed in range(3):
        scene = build_scene(seed, "stream", stills=stills, cameras=2)
        water = scene.parts[0]
        assert water.name == "water" and [p.name for p in scene.parts if p.moves] == ["water"]
        d = water.modes.displacement(scene.q)  # (T, N, 3)
        rms = np.sqrt((d ** 2).sum(-1).mean(0))
        across = water.uv[:, 1] / water.uv[:, 1].max()  # 0 and 1: the two banks
        assert rms[(across < 1e-6) | (across > 1 - 1e-6)].max() < 1e-9
        assert rms[np.abs(across - 0.5) < 0.15].mean() > 0.1 * rms.max()
        first, last = np.argmin(water.uv[:, 0] + water.uv[:, 1]), np.argmax(water.uv[:, 0] - water.uv[:, 1])
        along = water.verts[last] - water.verts[first]  # the grid runs downstream along u, level
        along /= np.linalg.norm(along)
        side = np.cross([0, 0, 1.0], along)
        assert np.abs(d @ along).mean() > 1.8 * np.abs(d @ side).mean()  # 2.3 to 2.9 here
        power = np.abs(np.fft.rfft(d - d.mean(0), axis=0)) ** 2
        freqs = np.fft.rfftfreq(scene.num_frames, 1 / scene.fps)
        assert power[freqs <= 16 * scene.fps / scene.num_frames].sum() > 0.95 * power.sum()


def test_closeups_look_into_the_crown_and_change_nothing_else():
    """``closeups``: a tree's cameras move into its crown (the leaves fill the frame: the crown is
    wider than the view at the target's distance); geometry, motion and every other kind are as
    at ``closeups=0``."""
    import math

    stills = ("mate_garden.jpg",)
    far, near = build_scene(11, "tree", stills=stills), build_scene(11, "tree", stills=stills, closeups=1.0)
    assert np.array_equal(far.q, near.q)
    assert all(np.array_equal(p.verts, r.verts) for p, r in zip(far.parts, near.parts))
    leaves = near.parts[1].verts
    crown = float(max(np.ptp(leaves[:, 0]), np.ptp(leaves[:, 2])))
    for cam_far, cam in zip(far.cameras, near.cameras):
        dist = float(np.linalg.norm(np.subtract(cam.location, cam.target)))
        view_h = 2 * dist * math.tan(math.atan(36.0 * 160 / 256 / 2 / cam.lens_mm))
        assert view_h < 0.65 * crown  # the leaves fill the frame
        assert np.all(leaves.min(0) - 0.5 * np.ptp(leaves, 0) <= cam.target)
        assert np.all(cam.target <= leaves.max(0) + 0.5 * np.ptp(leaves, 0))
        far_h = 2 * np.linalg.norm(np.subtract(cam_far.location, cam_far.target)) * math.tan(
            math.atan(36.0 * 160 / 256 / 2 / cam_far.lens_mm))
        assert far_h > view_h
    for kind in ("grass", "flag"):
        a, b = build_scene(11, kind, stills=stills), build_scene(11, kind, stills=stills, closeups=1.0)
        assert a.cameras == b.cameras


def test_leaf_density_scales_the_leaves_only_when_asked():
    """``leaf_density`` 1 is the scene as it was; 3 puts three times the leaves on each branch (the
    tree's draws shift with the extra leaves, so the count is taken per branch: each branch adds two
    modes, each leaf one)."""
    stills = ("mate_garden.jpg",)
    base, same = build_scene(11, "tree", stills=stills), build_scene(11, "tree", stills=stills, leaf_density=1.0)
    assert np.array_equal(base.q, same.q) and base.cameras == same.cameras

    def per_branch(scene: Scene) -> float:
        leaves = len(scene.parts[1].verts) // 4
        return leaves / ((scene.info["modes"] - leaves) / 2)

    for seed in (0, 1):
        ratio = per_branch(build_scene(seed, "tree", stills=stills, cameras=1, leaf_density=3.0)) / per_branch(
            build_scene(seed, "tree", stills=stills, cameras=1))
        assert 2.7 < ratio < 3.3


def test_a_folder_resumes_with_its_own_settings_only(tmp_path):
    """A manifest written before ``kind``/``closeups`` existed resumes with their defaults; other
    values are refused in one line before anything is made."""
    from dataclasses import asdict

    from gid.gid_tools.simdata.make import MakeSettings, make_data

    before = {k: v for k, v in json.loads(json.dumps(asdict(MakeSettings()))).items() if k not in ("kind", "closeups")}
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "gid.simdata.manifest", "version": 1,
                                                        "settings": {"train": before}}))
    rng = np.random.default_rng(0)
    write_shard(tmp_path / "train_00000000.npz", [View(rng.random((8, 12, 3)).astype(np.float32),
                                                      SpectralVolume(np.zeros((16, 4, 8, 12), np.float32)))],
                {"kind": "tree", "seed": 0}, size=(12, 8), k=16, fps=30.0, num_frames=150)
    summary = make_data(tmp_path, 1, MakeSettings(), workers=1, log=lambda m: None)
    assert summary["views"] == 1 and summary["made_scenes"] == 0  # resumed: nothing rendered
    with pytest.raises(InputError, match="other settings"):
        make_data(tmp_path, 1, MakeSettings(kind="tree", closeups=1.0), workers=1)
    with pytest.raises(InputError, match="other settings"):
        make_data(tmp_path, 1, MakeSettings(samples=4), workers=1)


def test_amplitude_range_reaches_the_settings_and_bad_ranges_are_refused(tmp_path, monkeypatch, capsys):
    """``--amplitude LO HI`` becomes the run's ``amplitude_px`` (recorded in the manifest, so a resume
    with another range is refused); an empty or negative range is one line and makes nothing."""
    from gid.gid_engine.cli import main
    from gid.gid_tools.simdata import make

    seen = []
    monkeypatch.setattr(make, "make_data", lambda out, scenes, settings, **kw: seen.append(settings) or {})
    assert main(["make-data", "-o", str(tmp_path), "--scenes", "1", "--amplitude", "3", "12"]) == 0
    assert seen[0].amplitude_px == (3.0, 12.0)
    assert main(["make-data", "-o", str(tmp_path), "--scenes", "1"]) == 0
    assert seen[1].amplitude_px == (0.75, 6.0)
    for bad in (["0", "4"], ["5", "2"], ["-1", "3"], ["2", "100"]):
        assert main(["make-data", "-o", str(tmp_path / "x"), "--amplitude", *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("gid: error: --amplitude") and "\n" not in err
    assert len(seen) == 2 and not (tmp_path / "x").exists()


def test_kind_reaches_making_and_verifying(tmp_path, monkeypatch):
    """``--kind stream`` (a kind outside the drawn mix) reaches the scenes both made and verified."""
    from gid.gid_engine.cli import main
    from gid.gid_tools.simdata import make, verify

    seen = []
    monkeypatch.setattr(make, "make_data", lambda out, scenes, settings, **kw: seen.append(settings) or {})
    monkeypatch.setattr(verify, "verify_scenes",
                        lambda out, count, settings, **kw: seen.append(settings) or {"summary": {}})
    assert main(["make-data", "-o", str(tmp_path), "--scenes", "1", "--kind", "stream"]) == 0
    assert main(["make-data", "-o", str(tmp_path), "--verify", "1", "--kind", "stream"]) == 0
    assert [s.kind for s in seen] == ["stream", "stream"]
    assert seen[1].build(seen[1].seed(0)).kind == "stream"


def test_shards_round_trip_and_refuse_damage(tmp_path):
    rng = np.random.default_rng(0)
    coeffs = rng.normal(0, 2, (16, 4, 8, 12)).astype(np.float32)
    q, s = quantize(coeffs)
    assert np.abs(q.astype(np.float32) * s[:, :, None, None] - coeffs).max() <= s.max() / 2 + 1e-6
    view = View(rng.random((8, 12, 3)).astype(np.float32), SpectralVolume(coeffs),
                target=rng.random((8, 12, 3)).astype(np.float32), flow=rng.normal(size=(2, 8, 12)).astype(np.float32),
                target_frame=9, info={"camera": 0})
    path = write_shard(tmp_path / "train_00000001.npz", [view, View(view.image, SpectralVolume(coeffs))],
                       {"kind": "tree", "seed": 1}, size=(12, 8), k=16, fps=30.0, num_frames=150)
    shard = read_shard(path)
    assert len(shard) == 2 and list(shard.triples()) == [0]
    assert np.abs(shard.coeffs(0) - coeffs).max() <= s.max() / 2 + 1e-6
    assert np.abs(shard.image(0) - view.image).max() <= 0.5 / 255 + 1e-6
    path.write_bytes(path.read_bytes()[:100])
    from gid.gid_engine.errors import FormatError

    with pytest.raises(FormatError, match="cannot read shard"):
        read_shard(path)


_CHILD = r"""
import json, sys
from pathlib import Path
import numpy as np
from gid.gid_tools.simdata.make import MakeSettings, make_scene
from gid.gid_tools.simdata.shards import read_shard
out = Path(sys.argv[1])
settings = MakeSettings(width=96, height=64, cameras=2, samples=8, triple_fraction=1.0, amplitude_px=(10.0, 14.0))
first = make_scene(int(sys.argv[2]), settings, out)
again = make_scene(int(sys.argv[2]), settings, out)
print(json.dumps({"first": first, "again": again}))
"""


@pytest.mark.skipif(__import__("importlib").util.find_spec("bpy") is None, reason="needs the bpy module")
def test_rendered_frames_move_as_the_ground_truth_says(tmp_path):
    """A flag scene made by Blender: the shard resumes, and the motion the engine's optical flow
    measures between the rendered frame 0 and the rendered later frame is the exact motion: its
    end-point error against the truth is under half of what "no motion" scores, on the moving pixels."""
    out = tmp_path / "data"
    seed = next(s for s in range(100) if build_scene(s, stills=("mate_garden.jpg",)).kind == "flag")
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(out), str(seed)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["again"]["resumed"] and result["again"]["views"] == result["first"]["views"] >= 1
    shard = read_shard(out / f"train_{seed:08d}.npz")
    assert shard.meta["kind"] == "flag" and len(list(shard.triples())) == len(shard)
    from gid.gid_engine.media.imaging import to_gray_u8
    from gid.gid_engine.motion.extract import flow_function

    flow_fn = flow_function()
    ratios = []
    for i in shard.triples():
        flow = shard.flows[i].astype(np.float32)
        measured = flow_fn(to_gray_u8(shard.image(i)), to_gray_u8(shard.targets[i].astype(np.float32) / 255))
        measured = measured.transpose(2, 0, 1)
        moving = np.hypot(flow[0], flow[1]) > 0.3
        assert moving.sum() > 100
        epe_truth = np.hypot(*(measured - flow))[moving].mean()
        epe_still = np.hypot(*measured)[moving].mean()
        ratios.append(epe_truth / epe_still)
        vol = shard.volume(i)
        assert vol.mean_magnitude()[~moving].mean() < vol.mean_magnitude()[moving].mean()
    assert ratios and max(ratios) < 0.5, ratios


def test_renderer_stacks_carry_the_exact_flow_and_weights(tmp_path):
    from gid.gid_tools.renderer.data import stack_triple
    from gid.gid_tools.simdata.datasets import SimViews, sim_pairs, sim_triple_kinds, sim_triple_stacks

    rng = np.random.default_rng(3)
    coeffs = rng.normal(0, 1, (16, 4, 8, 12)).astype(np.float32)
    flow = rng.normal(size=(2, 8, 12)).astype(np.float32)
    view = View(rng.random((8, 12, 3)).astype(np.float32), SpectralVolume(coeffs),
                target=rng.random((8, 12, 3)).astype(np.float32), flow=flow, target_frame=5)
    for split in ("train", "eval"):
        write_shard(tmp_path / f"{split}_00000004.npz", [view, View(view.image, SpectralVolume(coeffs))],
                    {"kind": "grass", "seed": 4}, size=(12, 8), k=16, fps=30.0, num_frames=150)
    stacks = sim_triple_stacks(tmp_path, "train")
    assert stacks.shape == (1, 9, 8, 12)
    triple = stack_triple(stacks[0])
    np.testing.assert_allclose(triple.flow, flow, atol=2e-3)  # float16 on disk
    z = SpectralVolume(read_shard(tmp_path / "train_00000004.npz").coeffs(0)).mean_magnitude()
    np.testing.assert_allclose(triple.z[0], z, rtol=1e-5)
    np.testing.assert_allclose(triple.target, view.target.transpose(2, 0, 1), atol=0.5 / 255 + 1e-6)
    assert len(SimViews([tmp_path], "train")) == 2 and len(sim_pairs(tmp_path, "eval")) == 2
    write_shard(tmp_path / "eval_00000005.npz", [view, view], {"kind": "flag", "seed": 5}, size=(12, 8), k=16,
                fps=30.0, num_frames=150)
    kinds = sim_triple_kinds(tmp_path, "eval")  # one per renderer stack, in the stacks' order
    assert kinds == ["grass", "flag", "flag"] and len(sim_triple_stacks(tmp_path, "eval")) == len(kinds)
    from gid.gid_engine.errors import InputError

    with pytest.raises(InputError, match="no simulated train shards"):
        SimViews([tmp_path / "empty"], "train")
