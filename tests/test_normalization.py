import json

import numpy as np
import pytest

from gid.gid_engine.errors import FormatError
from gid.gid_engine.motion.normalization import FrequencyNormalizer

from conftest import random_volume


@pytest.fixture
def volumes():
    return [random_volume(seed=s, h=12, w=16) for s in range(5)]


def test_scales_are_per_frequency_95th_percentiles(volumes):
    norm = FrequencyNormalizer.fit(volumes)
    assert norm.K == 16
    c = np.stack([v.coeffs for v in volumes])  # (5, K, 4, H, W)
    for j in (0, 5, 15):
        mags = np.concatenate([np.hypot(c[:, j, 0], c[:, j, 1]).ravel(), np.hypot(c[:, j, 2], c[:, j, 3]).ravel()])
        assert norm.scales[j] == pytest.approx(np.percentile(mags, 95), rel=1e-6)
    # natural motion decays with frequency, and so do the scales
    assert norm.scales[1] > norm.scales[8] > norm.scales[15]


def test_normalized_values_are_spread_and_invertible(volumes):
    norm = FrequencyNormalizer.fit(volumes)
    x = volumes[0].coeffs
    n = norm.normalize(x)
    # eq. 4: sign * sqrt(|S|/s); about 95% of magnitudes fall under 1
    np.testing.assert_allclose(n, np.sign(x) * np.sqrt(np.abs(x) / norm.scales[:, None, None, None]), rtol=1e-5)
    assert np.mean(np.abs(n) <= 1.0) > 0.9
    # the high frequencies are no longer crushed towards zero
    assert np.abs(n[15]).mean() > 0.3 * np.abs(n[1]).mean()
    np.testing.assert_allclose(norm.denormalize(n), x, rtol=1e-5, atol=1e-7)


def test_statistics_save_and_load(tmp_path, volumes):
    norm = FrequencyNormalizer.fit(volumes)
    path = tmp_path / "stats.json"
    norm.save(path)
    loaded = FrequencyNormalizer.load(path)
    np.testing.assert_array_equal(loaded.scales, norm.scales)
    assert loaded.num_volumes == 5


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "cannot read"),
        (json.dumps({"format": "other"}), "not a gid"),
        (json.dumps({"format": "gid.frequency_normalization", "version": 99, "scales": [1.0]}), "version"),
        (json.dumps({"format": "gid.frequency_normalization", "version": 1, "scales": [1.0, -2.0]}), "positive"),
    ],
)
def test_bad_statistics_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "stats.json"
    path.write_text(content)
    with pytest.raises(FormatError, match=message):
        FrequencyNormalizer.load(path)
