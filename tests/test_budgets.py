"""Runaway requests are refused before any work: each command estimates the frames, pixels and
bytes it implies and refuses what is over the budget, with one line naming the option to change.

Every case asserts the exit code, the one line, that nothing was written and that the process
stayed small (its peak RSS, measured in a child process, far below what the request implied).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gid.gid_engine import budget
from gid.gid_engine.cli import main
from gid.gid_engine.errors import InputError
from gid.gid_engine.media.imaging import header_size
from gid.gid_engine.motion.spectral_volume import SpectralVolume
from gid.gid_engine.motion.sv_file import save_spectral_volume

from conftest import random_volume

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    vol = random_volume(h=24, w=32, seed=2)
    save_spectral_volume(vol.replace(coeffs=vol.coeffs * np.float32(0.2)), tmp_path / "m.gidsv")
    from gid.exporters.opencv import cv2

    cv2.imwrite(str(tmp_path / "still.png"), np.full((48, 64, 3), 128, np.uint8))
    return tmp_path


def refused(argv: list[str], capsys, folder: Path) -> str:
    before = sorted(p.name for p in folder.iterdir())
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.count("\n") == 0 and err.startswith("gid: error: "), err
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written, no folder made
    return err


def peak_rss_of(argv: list[str], cwd: Path) -> tuple[int, str, float]:
    """Run ``gid argv`` in a child process: (exit code, stderr, peak RSS in MiB)."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it would report the parent's peak.
    code = ("import re, sys; from gid.gid_engine.cli import main; rc = main(sys.argv[1:]); "
            "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
            "print(hwm, file=sys.stderr); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True, timeout=300)
    *lines, rss = proc.stderr.strip().splitlines()
    return proc.returncode, "\n".join(lines), int(rss) / 1024


# ----------------------------------------------------------------------------- frames
def test_slow_motion_and_fps_cannot_make_half_a_million_frames(folder, capsys):
    err = refused(["render", str(folder / "still.png"), "-m", str(folder / "m.gidsv"), "-o", str(folder / "out"),
                   "--slowmo", "100", "--fps", "1000", "--fit", "stretch"], capsys, folder)
    assert "makes 500,000 frames, over the limit of 100,000: lower --slowmo or --fps, or set --frames" in err


@pytest.mark.parametrize("fps, num_frames", [(1e-7, 150), (30.0, 3_000_000)])
def test_a_motion_file_whose_loop_is_endless_is_refused_by_its_frame_count(folder, capsys, fps, num_frames):
    """A valid file whose metadata implies millions of frames (or fps 1e-7): the count, not 'out of memory'."""
    vol = random_volume(h=24, w=32, seed=2)
    save_spectral_volume(SpectralVolume(vol.coeffs * np.float32(0.2), fps=fps, num_frames=num_frames),
                         folder / "x.gidsv")
    for command in (["render", str(folder / "still.png")], ["displace", str(folder / "still.png")]):
        err = refused([*command, "-m", str(folder / "x.gidsv"), "-o", str(folder / "out"), "--fit", "stretch"],
                      capsys, folder)
        assert "frames, over the limit of 100,000: lower --slowmo or --fps, or set --frames" in err
        assert "out of memory" not in err and len(err) < 300


# ----------------------------------------------------------------------------- memory
def test_displace_size_has_a_pixel_budget(folder):
    rc, err, rss = peak_rss_of(["displace", "still.png", "-m", "m.gidsv", "-o", "out", "--size", "20000x15000",
                                "--fit", "stretch"], folder)
    assert rc == 2 and "displacing 20000x15000 frames" in err and "over the 2.0 GiB budget" in err, err
    assert "use a smaller image or --size" in err and rss < 400, rss  # refused before any allocation
    assert not (folder / "out").exists()


def test_extract_working_size_has_a_budget_and_a_minimum(folder, capsys):
    clip = REPO / "samples" / "tree.avi"  # 320x240
    err = refused(["extract", str(clip), "-o", str(folder / "x.gidsv"), "--size", "8192x8192"], capsys, folder)
    assert "extracting 8192x8192 motion from 150 frames needs about" in err and "lower --max-side or --size" in err
    for flag in (["--size", "1x1"], ["--max-side", "8"]):
        err = refused(["extract", str(clip), "-o", str(folder / "x.gidsv"), *flag], capsys, folder)
        assert "below optical flow's minimum of 12 px a side" in err


def test_the_budget_can_be_raised_and_lowered(folder, capsys, monkeypatch):
    clip = str(REPO / "samples" / "tree.avi")
    err = refused(["extract", clip, "-o", str(folder / "x.gidsv"), "--memory-budget", "0.25"], capsys, folder)
    assert "over the 256 MiB budget" in err
    monkeypatch.setenv("GID_MEMORY_BUDGET", "0.25")
    assert "over the 256 MiB budget" in refused(["extract", clip, "-o", str(folder / "x.gidsv")], capsys, folder)
    assert main(["extract", clip, "-o", str(folder / "x.gidsv"), "--memory-budget", "4"]) == 0  # the flag wins
    budget.set_memory_budget(None)


def test_a_panorama_is_refused_before_sampling(folder, capsys):
    from gid.exporters.opencv import cv2

    cv2.imwrite(str(folder / "pano.png"), np.full((10, 2000, 3), 90, np.uint8))
    err = refused(["predict", str(folder / "pano.png"), "-o", str(folder / "p.gidsv"), "--steps", "1"], capsys, folder)
    assert "predicting motion for a 2000x10 image (a 32000x160 volume in its aspect)" in err
    assert "crop the image nearer the model's 256x160 aspect" in err


def test_a_jpeg_that_claims_20000x20000_is_refused_from_its_header(folder, capsys):
    from gid.exporters.opencv import cv2

    ok, data = cv2.imencode(".jpg", np.full((16, 16, 3), 200, np.uint8))
    data = bytearray(data.tobytes())
    i = data.find(b"\xff\xc0")
    data[i + 5:i + 9] = (20000).to_bytes(2, "big") * 2
    (folder / "bomb.jpg").write_bytes(bytes(data))
    assert header_size(bytes(data)) == (20000, 20000) and len(data) < 2000
    rc, err, rss = peak_rss_of(["predict", "bomb.jpg", "-o", "b.gidsv"], folder)
    assert rc == 2 and err == "gid: error: image bomb.jpg is 20000x20000; gid accepts at most 268435456 pixels"
    assert rss < 400, rss  # it used to allocate 2.35 GB


def test_a_huge_file_named_png_is_not_read_whole(folder):
    with open(folder / "huge.png", "wb") as f:
        f.truncate(3 * 2**30)  # sparse: 3 GiB that take no disk
    rc, err, rss = peak_rss_of(["predict", "huge.png", "-o", "b.gidsv"], folder)
    assert rc == 2 and "reading image huge.png (3072 MiB file) needs about 3.3 GiB" in err, err
    assert rss < 400, rss


def test_a_zip_bomb_motion_file_is_refused_unread(folder, capsys):
    """2 MB that inflate to GBs: gid writes uncompressed members and refuses compressed ones."""
    vol = random_volume(h=24, w=32, seed=2)
    save_spectral_volume(vol, folder / "ok.gidsv")
    with zipfile.ZipFile(folder / "ok.gidsv") as z:
        members = {n: z.read(n) for n in z.namelist()}
    shape = (16, 4, 4096, 4096)  # 4 GiB of zeros, deflated to a few MB
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(folder / "bomb.gidsv", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.npy", members["metadata.npy"])
        with z.open("coeffs.npy", "w", force_zip64=True) as f:
            f.write(buf.getvalue())
            chunk = bytes(2**24)
            for _ in range(4 * 2**30 // len(chunk)):
                f.write(chunk)
    assert (folder / "bomb.gidsv").stat().st_size < 16 * 2**20
    err = refused(["info", str(folder / "bomb.gidsv")], capsys, folder)
    assert "member 'metadata' is compressed; gid writes uncompressed files" in err


def test_a_motion_file_over_the_budget_is_refused_from_its_declared_shape(folder, capsys):
    vol = random_volume(h=48, w=64, seed=1)
    save_spectral_volume(vol, folder / "big.gidsv")
    err = refused(["info", str(folder / "big.gidsv"), "--memory-budget", "0.25"], capsys, folder)
    assert err.startswith("gid: error: reading motion file big.gidsv (64x48, K=16) needs about")


def test_a_fifo_is_refused_not_waited_on(folder, capsys):
    os.mkfifo(folder / "pipe.gidsv")
    for argv in (["info", str(folder / "pipe.gidsv")],
                 ["render", str(folder / "still.png"), "-m", str(folder / "pipe.gidsv"), "-o", str(folder / "out")]):
        err = refused(argv, capsys, folder)
        assert err.endswith("pipe.gidsv is not a regular file (a folder, a pipe or a device?)")
    os.mkfifo(folder / "pipe.png")
    err = refused(["predict", str(folder / "pipe.png"), "-o", str(folder / "x.gidsv")], capsys, folder)
    assert err.endswith("pipe.png is not a regular file (a pipe or a device?)")


def test_estimates_follow_the_measured_costs():
    """The README's measured peaks: a 4K render ~1.0 GiB, extraction of 5 s of 720p ~8.5 GiB."""
    assert 0.9 * 2**30 < budget.render_bytes(3840, 2160, 16, (256, 144), (512, 288)) < 1.3 * 2**30
    assert 8.0 * 2**30 < budget.extract_bytes(1280, 720, 150) < 9.5 * 2**30
    assert budget.extract_bytes(512, 288, 150) < 2 * 2**30  # the default working size fits the default budget
    with pytest.raises(InputError, match="memory budget must be 0.25 .. 4096 GiB"):
        budget.set_memory_budget(0.0)


def test_animate_checks_the_render_budget_before_sampling(folder, capsys, monkeypatch):
    """A still whose 4K-plus render is over the budget is refused after the model loads, before the
    minutes of sampling: the sampler is never called."""
    from gid.exporters.opencv import cv2
    from gid.gid_engine.prediction import onnx_pipeline

    cv2.imwrite(str(folder / "big.png"), np.full((2000, 3200, 3), 90, np.uint8))
    calls = []
    monkeypatch.setattr(onnx_pipeline.OnnxPriorPipeline, "__call__", lambda *a, **k: calls.append(1))
    err = refused(["animate", str(folder / "big.png"), "-o", str(folder / "loop"), "--memory-budget", "0.75",
                   "--steps", "1", "--backend", "onnx"], capsys, folder)
    assert "rendering 3200x2000 frames with a 256x160 motion needs about" in err and "over the 768 MiB budget" in err
    assert calls == []
