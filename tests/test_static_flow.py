"""The learned Eulerian baseline of ``gid eval`` (models/static_flow.py, motion_prior/static_flow.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from gid.gid_engine.errors import FormatError, InputError
from gid.gid_engine.prediction.baselines import static_flow_baseline
from gid.gid_tools.motion_prior.evaluate import magnitude_map
from gid.gid_tools.motion_prior.models.static_flow import StaticFlowNet
from gid.gid_tools.motion_prior.static_flow import (StaticFlowTrainArgs, canonical_field,
                                                     learned_static_flow, load_static_flow, train_static_flow)
from gid.gid_engine.motion.spectral_volume import SpectralVolume


def _swaying(m: np.ndarray, k: int = 2) -> SpectralVolume:
    """A volume whose every pixel sways along ``m`` (2, H, W) at bin ``k``: F_t = m sin(w t)."""
    coeffs = np.zeros((16, 4) + m.shape[1:], dtype=np.float32)
    coeffs[k, 1] = -0.5 * m[0]
    coeffs[k, 3] = -0.5 * m[1]
    return SpectralVolume(coeffs)


def test_canonical_field_recovers_the_axis_with_a_positive_x():
    yy, xx = np.mgrid[0:32, 0:48].astype(np.float32)
    m = np.stack([np.cos(xx / 7.0) * 2.0, np.sin(yy / 5.0) * 1.5])  # signs vary across the image
    got = canonical_field(_swaying(m))
    assert np.all(got[0] >= -1e-5)
    sign = np.where((m[0] < 0) | ((m[0] == 0) & (m[1] < 0)), -1.0, 1.0)
    assert np.abs(got - m * sign).max() < 1e-3 * np.abs(m).max()
    # the oracle baseline built from the field sways exactly like the reference
    ref = _swaying(m, k=1)
    base = static_flow_baseline(ref, 1)
    assert np.abs(magnitude_map(base) - magnitude_map(ref)).max() < 1e-3


def test_tiny_training_fits_exports_and_loads(tmp_path):
    out = tmp_path / "run"
    summary = train_static_flow(StaticFlowTrainArgs(steps=120, out=out, pairs=3, batch=3, lr=2e-3,
                                                    export=tmp_path / "weights"), log=lambda m: None)
    assert summary["last_loss"] < 0.6 * summary["first_loss"]
    model = load_static_flow(tmp_path / "weights")
    assert isinstance(model, StaticFlowNet)
    image = np.random.default_rng(0).random((160, 256, 3)).astype(np.float32)
    like = SpectralVolume(np.zeros((16, 4, 160, 256), dtype=np.float32))
    vol = learned_static_flow(model, image, like, k_star=1)
    energy = np.abs(vol.coeffs).reshape(16, -1).sum(axis=1)
    assert energy[1] > 0 and energy[[0, *range(2, 16)]].sum() == 0  # one frequency, one phase
    # a damaged weight file is refused by its checksum
    weights = tmp_path / "weights" / "static_flow.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(FormatError, match="checksum"):
        load_static_flow(tmp_path / "weights")
    assert load_static_flow(tmp_path / "nothing") is None
    training = json.loads((tmp_path / "weights" / "static_flow.json").read_text())["training"]
    assert training["steps"] == 120 and training["stills"] == "v1"
    # --resume with other pairs would silently train on other data: refused before any is made
    for other, flag in (({"stills": "v2"}, r"--stills v1 \(not v2\)"), ({"data_seed": 1}, "--data-seed 0"),
                        ({"pairs": 4}, r"--pairs 3 \(not 4\)")):
        args = dict(steps=120, out=out, pairs=3, batch=3, lr=2e-3, resume=True) | other
        with pytest.raises(InputError, match=flag):
            train_static_flow(StaticFlowTrainArgs(**args), log=lambda m: None)


def test_the_still_set_picks_the_training_pairs():
    """``--stills v2``: the targets are the v2 split's pairs, not v1's at the same index."""
    from gid.gid_tools.motion_prior.data import synthetic_pair
    from gid.gid_tools.motion_prior.static_flow import _TargetMaker

    v2 = _TargetMaker(0, "train_v2")(5)
    image, _ = synthetic_pair(5, split="train_v2")
    assert np.allclose(v2["images"], image.transpose(2, 0, 1) * 2.0 - 1.0)
    assert not np.allclose(_TargetMaker(0)(5)["images"], v2["images"])


@pytest.mark.parametrize("damage", [b"{not json", b'{"format": "gid.static_flow"}', b"[1, 2]"],
                         ids=["not-json", "no-files", "not-an-object"])
def test_a_corrupt_shipped_index_is_one_line(tmp_path, damage):
    """A copy of the shipped static-flow folder with its index damaged: FormatError naming the file."""
    import shutil

    from gid.gid_tools.motion_prior.static_flow import INDEX, WEIGHTS_DIR, load_static_flow

    if not (WEIGHTS_DIR / INDEX).is_file():
        pytest.skip("no static-flow weights shipped")
    copy = tmp_path / "static_flow"
    shutil.copytree(WEIGHTS_DIR, copy)
    (copy / INDEX).write_bytes(damage)
    with pytest.raises(FormatError, match=r"static_flow\.json is corrupt \(.+\); reinstall gid") as info:
        load_static_flow(copy)
    assert "\n" not in str(info.value)


def _sim_folder(tmp_path, size=(256, 160), n=2):
    """A folder with one simulated shard of ``n`` views that sway along known fields."""
    from gid.gid_tools.simdata.shards import View, write_shard

    w, h = size
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    views = []
    for i in range(n):
        m = np.stack([np.cos(xx / (9.0 + i)) * 2.0, np.sin(yy / 7.0) * 1.0 + 0.5 * i])
        views.append(View(rng.random((h, w, 3)).astype(np.float32), _swaying(m, k=3)))
    folder = tmp_path / f"sim_{w}x{h}"
    folder.mkdir()
    write_shard(folder / "train_00000000.npz", views, {"kind": "flag", "seed": 0}, size=(w, h), k=16, fps=30.0,
                num_frames=150)
    return folder, views


def test_simulated_views_replace_a_share_of_the_pairs(tmp_path):
    """``--sim``: the pairs ``is_sim_pair`` picks are the shards' stills with the canonical field of
    their exact volumes; the others stay synthetic; views of another size are refused in one line."""
    from gid.gid_tools.motion_prior.data import synthetic_pair
    from gid.gid_tools.motion_prior.static_flow import _TargetMaker
    from gid.gid_tools.motion_prior.data.simulated import is_sim_pair, sim_pick
    from gid.gid_tools.simdata.datasets import SimViews

    folder, views = _sim_folder(tmp_path)
    sims = SimViews([folder])
    maker = _TargetMaker(0, "train", sims, 0.5)
    picked = [i for i in range(12) if is_sim_pair(0, "train", i, 0.5)]
    assert 0 < len(picked) < 12  # both kinds at a share of one half
    for i in range(12):
        got = maker(i)
        if i in picked:
            j = sim_pick(sims, 0, "train", i)[0]
            want = canonical_field(views[j].volume)
            image = np.rint(views[j].image * 255) / 255 * 2.0 - 1.0
            assert np.abs(got["images"] - image.transpose(2, 0, 1)).max() < 1e-5
            assert np.abs(got["fields"] - want).max() < 0.02 * np.abs(want).max()  # int8 shards
        else:
            image, _ = synthetic_pair(i, seed=0, split="train")
            assert np.allclose(got["images"], image.transpose(2, 0, 1) * 2.0 - 1.0)
    small, _ = _sim_folder(tmp_path, size=(128, 80), n=1)
    with pytest.raises(InputError, match="256x160"):
        _TargetMaker(0, "train", SimViews([small]), 1.0)(0)


def test_a_simulated_run_starts_from_weights_and_keeps_its_data(tmp_path):
    """``--init-from`` starts from the given network (at a vanishing learning rate the run ends where
    it started); the run records its shards, so resuming it with other shards or none is refused."""
    folder, _ = _sim_folder(tmp_path)
    quiet = dict(log=lambda m: None)
    base = dict(steps=2, pairs=3, batch=3, ckpt_every=2)
    train_static_flow(StaticFlowTrainArgs(out=tmp_path / "a", lr=1e-2, export=tmp_path / "w", **base), **quiet)
    summary = train_static_flow(StaticFlowTrainArgs(out=tmp_path / "b", sim=(str(folder),), sim_fraction=1.0, lr=1e-9,
                                                    init_from=tmp_path / "w", export=tmp_path / "w2", **base), **quiet)
    assert summary["sim"][0] == "sim" and summary["init_from"] == str(tmp_path / "w")
    start, end = load_static_flow(tmp_path / "w").state_dict(), load_static_flow(tmp_path / "w2").state_dict()
    fresh = StaticFlowNet().state_dict()
    assert max(float((end[k] - start[k]).abs().max()) for k in start) < 1e-6
    assert max(float((fresh[k] - start[k]).abs().max()) for k in start) > 1e-2
    with pytest.raises(InputError, match="--sim"):
        train_static_flow(StaticFlowTrainArgs(out=tmp_path / "b", resume=True, lr=1e-9, **base), **quiet)
    with pytest.raises(InputError, match="--init-from"):
        train_static_flow(StaticFlowTrainArgs(out=tmp_path / "d", lr=1e-9, init_from=tmp_path / "nothing", **base),
                          **quiet)


def test_distillation_learns_the_mean_of_its_teachers(tmp_path):
    """``--teacher``: every target is the mean of the teachers' output fields for the pair's image (and
    for its mirror image when the step mirrors it), so a student started from one teacher moves toward
    the mean; the run records its teachers by checksum, and resuming it without them is refused."""
    from gid.gid_tools.motion_prior.static_flow import _TargetMaker, export_static_flow, teacher_fields

    folders = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        folders.append(tmp_path / f"t{seed}")
        export_static_flow(StaticFlowNet(), folders[-1], {"stage": "test"})
    t0, t1 = (load_static_flow(f) for f in folders)
    images = torch.from_numpy(np.stack([_TargetMaker(0)(i)["images"] for i in range(3)]))
    with torch.no_grad():
        want = (t0(images) + t1(images)) / 2
        start_gap = float((t0(images) - want).abs().mean())
    got = teacher_fields([t0, t1], images, batch=2)
    assert float((got - want).abs().max()) < 1e-5
    assert start_gap > 1e-3  # two random networks disagree
    quiet = dict(log=lambda m: None)
    base = dict(pairs=3, batch=3, lr=2e-3, ckpt_every=40, init_from=folders[0], teachers=tuple(folders))
    summary = train_static_flow(StaticFlowTrainArgs(steps=40, out=tmp_path / "s", export=tmp_path / "w", **base),
                                **quiet)
    assert summary["teacher"] == [json.loads((f / "static_flow.json").read_text())["files"][0]["sha256"][:12]
                                  for f in folders]
    assert abs(summary["first_loss"] - start_gap) < 0.5 * start_gap  # the first step's loss is the gap (+ mirrors)
    with torch.no_grad():
        end_gap = float((load_static_flow(tmp_path / "w")(images) - want).abs().mean())
    assert end_gap < 0.7 * start_gap  # measured 0.48 of it after 40 steps
    with pytest.raises(InputError, match="--teacher"):
        train_static_flow(StaticFlowTrainArgs(steps=40, out=tmp_path / "s", resume=True, pairs=3, batch=3,
                                              lr=2e-3), **quiet)
    with pytest.raises(InputError, match="--teacher: no static-flow weights"):
        train_static_flow(StaticFlowTrainArgs(steps=2, out=tmp_path / "x", pairs=3, batch=3,
                                              teachers=(tmp_path / "nothing",)), **quiet)
