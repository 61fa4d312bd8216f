"""``gid animate`` / ``Engine.animate`` (issue 6): one still in, a seamless loop out; all or nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gid.exporters.errors import OutputExistsError
from gid.exporters.opencv import cv2
from gid.gid_engine.cli import main
from gid.gid_engine.engine import Engine
from gid.gid_engine.errors import Cancelled
from gid.gid_engine.media.imaging import load_image
from gid.gid_engine.progress import Job
from gid.gid_engine.motion.sv_file import load_spectral_volume

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "tree_still.png"


def read_png(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:, :, ::-1].astype(np.float32) / 255.0


@pytest.mark.parametrize("renderer", ["splat", "neural"])
def test_animate_cli_writes_a_loop_its_motion_and_a_preview(tmp_path, renderer):
    out = tmp_path / "loop"
    rc = main(["animate", str(SAMPLE), "-o", str(out), "--steps", "2", "--frames", "6", "--backend", "onnx",
               "--renderer", renderer, "--seed", "3"])
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["frame.json", "frame_0001.png", "frame_0002.png", "frame_0003.png", "frame_0004.png",
                     "frame_0005.png", "frame_0006.png", "frame_preview.gif", "motion.gidsv"]
    still = load_image(SAMPLE).pixels[:, :, :3]
    first = read_png(out / "frame_0001.png")
    assert first.shape == still.shape
    assert np.abs(first - still).max() <= 1 / 255 + 1e-6  # anchored: the loop starts on the still
    sv = load_spectral_volume(out / "motion.gidsv")
    assert sv.extra["seed"] == 3 and sv.extra["steps"] == 2
    assert abs(sv.width / sv.height - still.shape[1] / still.shape[0]) < 0.02  # in the image's aspect
    moved = [np.abs(read_png(out / f"frame_000{i}.png") - still).mean() for i in range(2, 7)]
    assert max(moved) > 1e-4


def test_animate_cancelled_midway_leaves_nothing(tmp_path):
    out = tmp_path / "loop"
    job = Job(lambda done, total, what: job.cancel() if what == "rendering" and done == 3 else None)
    with pytest.raises(Cancelled):
        Engine(backend="onnx", renderer="splat").animate(SAMPLE, out, steps=2, frames=8, job=job)
    assert not out.exists()


def test_animate_never_replaces_the_users_files(tmp_path):
    out = tmp_path / "loop"
    out.mkdir()
    (out / "motion.gidsv").write_bytes(b"mine")
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError):
        Engine(backend="onnx", renderer="splat").animate(SAMPLE, out, steps=2, frames=4)
    assert (out / "motion.gidsv").read_bytes() == b"mine" and (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["motion.gidsv", "notes.txt"]
