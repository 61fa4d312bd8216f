"""Image / displacement sequences: naming, read-back, overwrite, cancel and full-disk safety."""

from __future__ import annotations

import errno

import numpy as np
import pytest

import gid.exporters.atomic as atomic
from gid.exporters.displacement import displacement_scale, write_displacement_sequence
from gid.exporters.errors import ExportError, OutputExistsError
from gid.exporters.frames import decode_frame
from gid.exporters.sequence import write_image_sequence
from gid.exporters.sidecar import read_sidecar

rng = np.random.default_rng(7)


def frames(n, h=4, w=6, c=3):
    return [rng.uniform(0, 1, (h, w, c)).astype(np.float32) for _ in range(n)]


def snapshot(folder):
    return {p.name: (p.read_bytes() if p.is_file() else None) for p in sorted(folder.iterdir())}


def user_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_bytes(b"user notes")
    (out / "render_0001.jpg").write_bytes(b"\xff\xd8 not ours")
    return out


def test_png_sequence_files_and_sidecar(tmp_path):
    src = frames(3)
    seen = []
    paths = write_image_sequence(iter(src), tmp_path, "shot", count=3, fmt="png", depth=16,
                                 sidecar={"fps": 24}, on_frame=lambda i, n: seen.append((i, n)))
    assert [p.name for p in paths] == ["shot_0001.png", "shot_0002.png", "shot_0003.png", "shot.json"]
    assert seen == [(1, 3), (2, 3), (3, 3)]
    for p, x in zip(paths, src):
        np.testing.assert_array_equal(decode_frame(p), np.floor(x.astype(np.float64) * 65535 + 0.5).astype(np.uint16))
    doc = read_sidecar(tmp_path / "shot.json")
    assert doc["kind"] == "image_sequence" and doc["params"] == {"fps": 24}
    assert doc["files"]["pattern"] == "shot_####.png" and doc["files"]["count"] == 3
    assert (doc["files"]["width"], doc["files"]["height"], doc["files"]["colorspace"]) == (6, 4, "sRGB")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


def test_exr_sequence_start_and_half(tmp_path):
    src = frames(2, c=4)
    paths = write_image_sequence(src, tmp_path, "lin", count=2, fmt="exr", source_linear=True, start=10)
    assert [p.name for p in paths] == ["lin_0010.exr", "lin_0011.exr"]
    np.testing.assert_array_equal(decode_frame(paths[1]), src[1].astype(np.float16).astype(np.float32))


def test_consumes_lazily(tmp_path):
    produced = []

    def gen():
        for i, x in enumerate(frames(3)):
            produced.append(i)
            yield x

    def on_frame(done, count):
        assert produced == list(range(done))  # one frame pulled per frame written

    write_image_sequence(gen(), tmp_path, "f", count=3, on_frame=on_frame)


def test_no_overwrite_checked_before_rendering(tmp_path):
    out = user_folder(tmp_path)
    (out / "shot_0002.png").write_bytes(b"precious")
    before = snapshot(out)

    def gen():
        raise AssertionError("must not render when outputs already exist")
        yield

    with pytest.raises(OutputExistsError, match="shot_0002.png already exists"):
        write_image_sequence(gen(), out, "shot", count=3)
    assert snapshot(out) == before


def test_overwrite_replaces(tmp_path):
    (tmp_path / "shot_0001.png").write_bytes(b"old")
    [p] = write_image_sequence(frames(1), tmp_path, "shot", count=1, overwrite=True)
    assert decode_frame(p).shape == (4, 6, 3)


class Cancelled(Exception):
    pass


@pytest.mark.parametrize("exc", [KeyboardInterrupt, Cancelled])
def test_cancel_midway_leaves_folder_untouched(tmp_path, exc):
    out = user_folder(tmp_path)
    before = snapshot(out)

    def gen():
        yield from frames(2)
        raise exc()

    with pytest.raises(exc):
        write_image_sequence(gen(), out, "shot", count=5, sidecar={})
    assert snapshot(out) == before


def test_cancel_from_progress_callback(tmp_path):
    out = user_folder(tmp_path)
    before = snapshot(out)

    def on_frame(done, count):
        if done == 2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        write_image_sequence(frames(4), out, "shot", count=4, on_frame=on_frame)
    assert snapshot(out) == before


def test_disk_full_on_third_write(tmp_path, monkeypatch):
    out = user_folder(tmp_path)
    before = snapshot(out)
    real, calls = atomic.write_file, []

    def flaky(path, data):
        calls.append(path)
        if len(calls) == 3:
            real(path, data[: len(data) // 2])  # a partial file is on disk when the error comes
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(atomic, "write_file", flaky)
    with pytest.raises(ExportError, match="disk full") as info:
        write_image_sequence(frames(5), out, "shot", count=5)
    assert len(calls) == 3 and "\n" not in str(info.value)
    assert snapshot(out) == before


def test_permission_error_message(tmp_path, monkeypatch):
    def denied(path, data):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic, "write_file", denied)
    with pytest.raises(ExportError, match="no permission to write in"):
        write_image_sequence(frames(1), tmp_path, "shot", count=1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("n", [2, 4])
def test_wrong_frame_count(tmp_path, n):
    with pytest.raises(ExportError, match="frames"):
        write_image_sequence(frames(n), tmp_path, "shot", count=3)
    assert list(tmp_path.iterdir()) == []


def test_frame_validation(tmp_path):
    bad = [frames(1)[0], frames(1, h=5)[0]]
    with pytest.raises(ExportError, match=r"frame 2 has shape \(5, 6, 3\), frame 1 had \(4, 6, 3\)"):
        write_image_sequence(bad, tmp_path, "shot", count=2)
    with pytest.raises(ExportError, match="float"):
        write_image_sequence([np.zeros((4, 4, 3), np.uint8)], tmp_path, "shot", count=1)
    with pytest.raises(ExportError, match="depth"):
        write_image_sequence(frames(1), tmp_path, "shot", count=1, fmt="png", depth="half")
    assert list(tmp_path.iterdir()) == []


def fields(n, h=5, w=8):
    return [(rng.standard_normal((2, h, w)) * 4).astype(np.float32) for _ in range(n)]


def test_displacement_pixels_sequence(tmp_path):
    src = fields(2)
    paths = write_displacement_sequence(iter(src), 2, tmp_path, "disp")
    assert [p.name for p in paths] == ["disp_0001.exr", "disp_0002.exr", "disp.json"]
    for p, f in zip(paths, src):
        back = decode_frame(p)
        np.testing.assert_array_equal(back[..., 0], f[0])
        np.testing.assert_array_equal(back[..., 1], f[1])
        np.testing.assert_array_equal(back[..., 2], 0)
    params = read_sidecar(paths[-1])["params"]
    assert params["convention"].startswith("R=dx G=dy pixels, y down, forward") and "scale" not in params


def test_displacement_displace_node_sequence(tmp_path):
    src = fields(3)
    scale = displacement_scale(src)
    assert scale == max(float(np.abs(f).max()) for f in src)
    paths = write_displacement_sequence(src, 3, tmp_path, "node", kind="displace_node", sidecar={"fps": 30})
    params = read_sidecar(paths[-1])["params"]
    assert params["scale"] == scale and params["fps"] == 30 and params["displacement"] == "displace_node"
    vmax = 0.0
    for p, f in zip(paths, src):
        v = decode_frame(p)
        np.testing.assert_allclose(v[..., 0] * scale, f[0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(v[..., 1] * scale, -f[1], rtol=1e-6, atol=1e-6)  # y up in Blender
        vmax = max(vmax, float(np.abs(v).max()))
    assert vmax == pytest.approx(1.0, abs=1e-6) and vmax <= 1.0


def test_displace_node_stream_needs_scale(tmp_path):
    with pytest.raises(ExportError, match="needs scale="):
        write_displacement_sequence(iter(fields(1)), 1, tmp_path, "node", kind="displace_node")
    paths = write_displacement_sequence(iter(fields(1)), 1, tmp_path, "node", kind="displace_node", scale=2.0)
    assert read_sidecar(paths[-1])["params"]["scale"] == 2.0
    assert displacement_scale([np.zeros((2, 2, 2), np.float32)]) == 1e-6
