"""Training data of the motion prior: synthetic pairs, real pairs, the dataset, the shards."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gid.gid_engine.errors import InputError
from gid.gid_tools.motion_prior.data import (
    generate_shards,
    load_stills,
    motion_texture_check,
    read_shard,
    real_pairs,
    split_names,
    synthetic_pair,
    synthetic_volume,
)
from gid.gid_tools.motion_prior.data.real import start_frames
from gid.gid_tools.motion_prior.data.synthetic import SPLITS, still_splits
from gid.gid_engine.repo_data import STILL_SETS
from gid.gid_engine.motion.spectral_volume import SpectralVolume

from conftest import REPO, textured_image

STILLS = REPO / "data" / "stills"


@pytest.fixture(scope="module")
def batch64():
    """64 synthetic pairs at 256x160 (about 3 s)."""
    return [synthetic_pair(i, seed=7) for i in range(64)]


# ----------------------------------------------------------------------------- stills
def test_stills_are_committed_licensed_and_split():
    splits = json.loads((STILLS / "splits.json").read_text())
    assert len(splits["eval"]) == 2 and len(splits["train"]) >= 10
    for train, held_out in STILL_SETS.values():
        assert not set(splits[held_out]) & set(splits[train])
    # v2 extends v1: the shipped models' stills stay where their commands find them
    assert splits["train_v2"][: len(splits["train"])] == splits["train"]
    assert splits["eval_v2"][: len(splits["eval"])] == splits["eval"]
    assert len(splits["train_v2"]) == 24 and len(splits["eval_v2"]) == 4
    licenses = (STILLS / "LICENSES.md").read_text()
    files = sorted(p.name for p in STILLS.glob("*.jpg"))
    assert files == sorted(splits["train_v2"] + splits["eval_v2"])
    assert sum(p.stat().st_size for p in STILLS.iterdir()) <= 3 * 2**20
    for name in files:
        assert f"`{name}`" in licenses  # every file has its row: source, path, author, license
    for split in SPLITS:
        for still in load_stills(split):
            assert still.pixels.dtype == np.uint8 and still.pixels.shape[2] == 3
            assert max(still.pixels.shape[:2]) <= 512
    with pytest.raises(InputError):
        split_names("test")
    with pytest.raises(InputError, match="v1, v2"):
        still_splits("v3")


def test_the_v2_still_set_draws_the_new_stills_and_other_pairs():
    """The same pair index of the v2 set is another pair (its own random stream), and its draws reach
    the stills v1 does not have."""
    v1 = synthetic_pair(3, split="train", width=64, height=40, k=4)
    v2 = synthetic_pair(3, split="train_v2", width=64, height=40, k=4)
    assert not np.array_equal(v1[0], v2[0])
    assert v2[1].extra["split"] == "train_v2"
    drawn = {synthetic_pair(i, split="train_v2", width=32, height=24, k=2)[1].extra["still"] for i in range(48)}
    assert drawn - set(split_names("train"))  # new stills are drawn
    assert drawn <= set(split_names("train_v2"))


# ----------------------------------------------------------------------------- synthetic
def test_synthetic_pair_shapes_and_dtypes():
    image, vol = synthetic_pair(0)
    assert image.shape == (160, 256, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert isinstance(vol, SpectralVolume)
    assert vol.coeffs.shape == (16, 4, 160, 256) and vol.coeffs.dtype == np.float32
    assert (vol.fps, vol.num_frames, vol.source) == (30.0, 150, "synthetic")
    assert vol.extra["index"] == 0 and vol.extra["split"] == "train"
    image, vol = synthetic_pair(5, split="eval", width=96, height=64, k=8)
    assert image.shape == (64, 96, 3) and vol.coeffs.shape == (8, 4, 64, 96)
    assert vol.extra["still"] in split_names("eval")


def test_synthetic_pair_is_deterministic():
    a_img, a_vol = synthetic_pair(11, seed=3)
    b_img, b_vol = synthetic_pair(11, seed=3)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_vol.coeffs, b_vol.coeffs)
    assert a_img.tobytes() == b_img.tobytes()
    for other in (synthetic_pair(12, seed=3), synthetic_pair(11, seed=4), synthetic_pair(11, seed=3, split="eval")):
        assert not np.array_equal(a_img, other[0])
        assert not np.array_equal(a_vol.coeffs, other[1].coeffs)


def test_power_decays_with_frequency_and_sway_is_mostly_horizontal(batch64):
    power = np.zeros(16)
    px = py = 0.0
    for _, vol in batch64:
        c = vol.coeffs.astype(np.float64)
        power += np.square(c).mean(axis=(1, 2, 3))
        px += np.square(c[1:, 0:2]).sum()
        py += np.square(c[1:, 2:4]).sum()
    assert power[1:4].mean() > 30.0 * power[10:16].mean()
    assert power[1] > power[5] > power[12]
    assert px > 2.0 * py
    moving = sum(1 for _, v in batch64 if np.abs(v.coeffs[1:]).max() > 0.05)
    assert moving >= 48  # most scenes move; a few are all flat or drew static regions


def test_amplitudes_are_a_few_pixels(batch64):
    peaks = [2.0 * np.sqrt(np.square(v.coeffs[1:4]).reshape(3, 2, 2, -1).sum(axis=2)).max() for _, v in batch64]
    median = float(np.median(peaks))
    assert 0.5 < median < 5.0  # px at 256x160, per 0.2-0.6 Hz bin


def test_spatially_coherent(batch64):
    for _, vol in batch64[:16]:
        c = vol.coeffs[1:].reshape(-1, vol.height, vol.width).astype(np.float64)
        if np.abs(c).max() < 0.05:
            continue
        horiz = np.corrcoef(c[:, :, 1:].ravel(), c[:, :, :-1].ravel())[0, 1]
        vert = np.corrcoef(c[:, 1:, :].ravel(), c[:, :-1, :].ravel())[0, 1]
        assert horiz > 0.8 and vert > 0.8


def test_anchored_and_motion_texture_is_sane(batch64):
    for _, vol in batch64:
        assert np.abs(vol.displacement_at(0.0)).max() < 1e-5  # F_0 == 0, like extracted data
        assert np.all(vol.coeffs[0, 1] == 0) and np.all(vol.coeffs[0, 3] == 0)
    for _, vol in batch64[:3]:
        report = motion_texture_check(vol)
        assert report["ok"], report
        assert report["finite"] and report["max_displacement"] < 12.0
        assert report["period_error"] < 1e-4


def test_flat_sky_is_static():
    h, w = 160, 256
    image = textured_image(h, w, seed=2)
    sky = int(0.4 * h)
    image[:sky] = np.array([0.45, 0.65, 0.95], dtype=np.float32)  # a flat blue sky
    moving = []
    for seed in range(6):
        vol = synthetic_volume(image, seed=seed)
        amp = 2.0 * np.sqrt(np.square(vol.coeffs[1:]).sum(axis=1)).sum(axis=0)  # bound on sway, px
        assert amp[: sky - 16].max() < 1e-3
        moving.append(float(amp[sky + 16 :].mean()))
    assert np.mean(moving) > 0.3


def test_synthetic_volume_rejects_bad_input():
    with pytest.raises(InputError):
        synthetic_volume(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(InputError):
        synthetic_pair(-1)


# ----------------------------------------------------------------------------- dataset
def test_normalizer_fit_and_dataset_roundtrip():
    torch = pytest.importorskip("torch")
    from gid.gid_tools.motion_prior.data import MotionPairDataset, fit_frequency_normalizer

    norm = fit_frequency_normalizer(n=24, seed=1, width=128, height=80)
    assert norm.K == 16 and np.all(np.isfinite(norm.scales)) and np.all(norm.scales > 0)
    assert norm.scales[1] > norm.scales[12]
    data = MotionPairDataset(6, seed=5, width=128, height=80, normalizer=norm)
    assert len(data) == 6
    inside = []
    for i in range(len(data)):
        item = data[i]
        assert set(item) == {"image", "volume", "index"} and item["index"] == i
        assert item["image"].shape == (3, 80, 128) and item["image"].dtype == torch.float32
        assert -1.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
        assert item["volume"].shape == (16, 4, 80, 128) and item["volume"].dtype == torch.float32
        raw = synthetic_pair(i, seed=5, width=128, height=80)[1].coeffs
        back = norm.denormalize(item["volume"].numpy())
        np.testing.assert_allclose(back, raw, rtol=1e-4, atol=1e-6)
        inside.append(float((item["volume"].abs() <= 1.0).float().mean()))
        assert torch.equal(data[i]["volume"], item["volume"])  # deterministic per index
    assert np.mean(inside) > 0.9
    loader = torch.utils.data.DataLoader(data, batch_size=3)
    batch = next(iter(loader))
    assert batch["image"].shape == (3, 3, 80, 128) and batch["volume"].shape == (3, 16, 4, 80, 128)


def test_dataset_mixes_in_real_pairs_with_correct_flips():
    pytest.importorskip("torch")
    from gid.gid_tools.motion_prior.data import MotionPairDataset

    rng = np.random.default_rng(0)
    image = rng.random((40, 64, 3)).astype(np.float32)
    coeffs = rng.normal(size=(16, 4, 40, 64)).astype(np.float32)
    real = [(image, SpectralVolume(coeffs, source="clip"))]
    data = MotionPairDataset(20, width=64, height=40, real=real, real_fraction=1.0)
    flips = 0
    for i in range(20):
        img, c, is_real = data.pair(i)
        assert is_real
        if np.array_equal(img, image):
            np.testing.assert_array_equal(c, coeffs)
        else:
            flips += 1
            np.testing.assert_array_equal(img, image[:, ::-1])
            np.testing.assert_array_equal(c[:, 2:], coeffs[:, 2:, :, ::-1])
            np.testing.assert_array_equal(c[:, :2], -coeffs[:, :2, :, ::-1])
    assert 0 < flips < 20
    mixed = MotionPairDataset(200, width=64, height=40, real=real, real_fraction=0.1)
    n_real = sum(mixed.pair(i)[2] for i in range(0, 200, 4))
    assert 0 < n_real < 15


# ----------------------------------------------------------------------------- real clips
def test_real_pairs_from_the_sample_clip(tmp_path):
    clip = REPO / "samples" / "tree.avi"
    assert start_frames(clip) == [0, 10, 20, 30, 40, 50]  # full 5 s windows of the 68 frames
    pairs = real_pairs([clip], width=64, height=40, max_pairs=2, cache_dir=tmp_path)
    assert len(pairs) == 2
    for (image, vol), start in zip(pairs, (0, 10)):
        assert image.shape == (40, 64, 3) and image.dtype == np.float32
        assert vol.coeffs.shape == (16, 4, 40, 64) and np.isfinite(vol.coeffs).all()
        assert vol.extra["start_frame"] == start and "padding" not in vol.extra
    again = real_pairs([clip], width=64, height=40, max_pairs=2, cache_dir=tmp_path)  # from the cache
    assert len(list(tmp_path.glob("*.npz"))) == 2
    for (a_img, a_vol), (b_img, b_vol) in zip(pairs, again):
        assert np.array_equal(a_img, b_img) and np.array_equal(a_vol.coeffs, b_vol.coeffs)


# ----------------------------------------------------------------------------- shards
def test_shards_match_synthetic_pairs_across_processes(tmp_path):
    paths = generate_shards(tmp_path, n=4, seed=2, workers=2, width=64, height=40, shard_size=2)
    assert [p.name for p in paths] == ["shard_00000.npz", "shard_00001.npz"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["count"] == 4 and manifest["K"] == 16 and len(manifest["shards"]) == 2
    for path in paths:
        images, volumes, indices = read_shard(path)
        assert images.dtype == np.float16 and volumes.dtype == np.float16
        for img, vol, index in zip(images, volumes, indices):
            ref_img, ref_vol = synthetic_pair(int(index), seed=2, width=64, height=40)
            assert np.array_equal(img, ref_img.astype(np.float16))  # bit-identical in another process
            assert np.array_equal(vol, ref_vol.coeffs.astype(np.float16))
