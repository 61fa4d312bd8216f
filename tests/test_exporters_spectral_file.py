"""The .gidsv spectral volume file: exact round trip and a clear error for each kind of damage."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

from gid.exporters.errors import ExportError, FileFormatError, OutputExistsError
from gid.exporters.spectral_file import load_spectral_file, save_spectral_file


def coeffs(k=3, h=5, w=6, seed=0):
    return np.random.default_rng(seed).standard_normal((k, 4, h, w)).astype(np.float32)


def write_raw(path, arr, meta):
    """Build a file by hand, bypassing save_spectral_file's own checks."""
    buf = io.BytesIO()
    np.savez(buf, coeffs=arr, metadata=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    path.write_bytes(buf.getvalue())


def good_meta(arr, **extra):
    return {"format": "gid.spectral_volume", "version": 1, "shape": list(arr.shape),
            "sha256": hashlib.sha256(arr.tobytes()).hexdigest(), **extra}


def test_round_trip_exact(tmp_path):
    c = coeffs()
    path = save_spectral_file(tmp_path / "tree.gidsv", c, {"fps": 30, "source": "tree.avi", "version": 99})
    assert path.name == "tree.gidsv" and [p.name for p in tmp_path.iterdir()] == ["tree.gidsv"]
    back, meta = load_spectral_file(path)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, c)
    assert meta["fps"] == 30 and meta["source"] == "tree.avi"
    assert meta["version"] == 1 and meta["shape"] == [3, 4, 5, 6]  # reserved keys are ours
    assert meta["sha256"] == hashlib.sha256(c.tobytes()).hexdigest()
    with zipfile.ZipFile(path) as zf:  # uncompressed npz, readable with numpy alone
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())


def test_float64_is_stored_as_float32_and_no_overwrite(tmp_path):
    c = coeffs().astype(np.float64)
    path = save_spectral_file(tmp_path / "a.gidsv", c, {})
    np.testing.assert_array_equal(load_spectral_file(path)[0], c.astype(np.float32))
    before = path.read_bytes()
    with pytest.raises(OutputExistsError):
        save_spectral_file(path, coeffs(seed=1), {})
    assert path.read_bytes() == before
    save_spectral_file(path, coeffs(seed=1), {}, overwrite=True)
    np.testing.assert_array_equal(load_spectral_file(path)[0], coeffs(seed=1))


def test_save_rejects_bad_input(tmp_path):
    with pytest.raises(ExportError, match=r"expected \(K, 4, H, W\)"):
        save_spectral_file(tmp_path / "a.gidsv", np.zeros((2, 3, 4, 4), np.float32), {})
    bad = coeffs()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ExportError, match="NaN"):
        save_spectral_file(tmp_path / "a.gidsv", bad, {})
    with pytest.raises(ExportError, match="not plain JSON"):
        save_spectral_file(tmp_path / "a.gidsv", coeffs(), {"x": object()})
    assert list(tmp_path.iterdir()) == []


def damaged(tmp_path, how):
    path = tmp_path / "v.gidsv"
    c = coeffs()
    if how == "missing":
        return tmp_path / "nope.gidsv"
    if how == "empty":
        path.write_bytes(b"")
    elif how == "not_zip":
        path.write_bytes(b"hello world, not a zip")
    elif how == "truncated":
        save_spectral_file(path, c, {})
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "flipped":
        save_spectral_file(path, c, {})
        data = bytearray(path.read_bytes())
        data[data.index(c.tobytes()[:64]) + 100] ^= 0xFF  # a byte inside the array data
        path.write_bytes(bytes(data))
    elif how == "sha":
        c2 = c.copy()
        c2[1, 2, 3, 4] += 1.0  # consistent zip, stale checksum
        write_raw(path, c2, good_meta(c))
    elif how == "version":
        write_raw(path, c, good_meta(c, version=2))
    elif how == "format":
        write_raw(path, c, good_meta(c, format="something.else"))
    elif how == "shape":
        write_raw(path, c, good_meta(c, shape=[3, 4, 6, 5]))
    elif how == "not4d":
        c3 = c[:, 0]
        write_raw(path, c3, good_meta(c3))
    elif how == "dtype":
        c64 = c.astype(np.float64)
        write_raw(path, c64, good_meta(c64))
    elif how == "nan":
        c[0, 1, 2, 3] = np.nan
        write_raw(path, c, good_meta(c))
    elif how == "json":
        buf = io.BytesIO()
        np.savez(buf, coeffs=c, metadata=np.frombuffer(b"{not json", np.uint8))
        path.write_bytes(buf.getvalue())
    elif how == "member":
        buf = io.BytesIO()
        np.savez(buf, coeffs=c)
        path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize("how, message", [
    ("missing", "not found"),
    ("empty", "is empty"),
    ("not_zip", "not an npz/zip archive"),
    ("truncated", "truncated or damaged"),
    ("flipped", "checksum mismatch: file is corrupt"),
    ("sha", "checksum mismatch: file is corrupt"),
    ("version", "version 2 is newer than this gid supports"),
    ("format", "not a gid spectral volume"),
    ("shape", r"shape mismatch: metadata says \[3, 4, 6, 5\], array is \[3, 4, 5, 6\]"),
    ("not4d", r"expected \(K, 4, H, W\)"),
    ("dtype", "dtype is float64, expected float32"),
    ("nan", "NaN or infinite"),
    ("json", "metadata is not valid JSON"),
    ("member", "member 'metadata' is missing"),
])
def test_damage_gives_specific_one_line_error(tmp_path, how, message):
    with pytest.raises(FileFormatError, match=message) as info:
        load_spectral_file(damaged(tmp_path, how))
    assert "\n" not in str(info.value)
