"""The `gid` command end to end, in a subprocess like a user runs it, on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gid.gid_engine.motion.sv_file import load_spectral_volume, save_spectral_volume

from conftest import REPO, random_volume

SAMPLES = REPO / "samples"


def gid(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("GID_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "gid.gid_engine.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture(scope="module")
def tree_motion(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("motion") / "tree.gidsv"
    r = gid("extract", str(SAMPLES / "tree.avi"), "-o", str(out), "--size", "320x240")
    assert r.returncode == 0, r.stderr
    return out


def test_extract_on_the_shipped_clip(tree_motion):
    sv = load_spectral_volume(tree_motion)
    assert sv.coeffs.shape == (16, 4, 240, 320)
    assert sv.extra["source_fps"] == pytest.approx(15.0, abs=0.01)
    # a tree swaying: visible motion, mostly at low frequencies
    power = (sv.coeffs[1:] ** 2).sum(axis=(1, 2, 3))
    assert power.sum() > 0 and power[:5].sum() > power[10:].sum()


def test_render_png_loop_on_the_shipped_sample(tree_motion, tmp_path):
    out = tmp_path / "loop"
    r = gid("render", str(SAMPLES / "tree_still.png"), "--motion", str(tree_motion), "-o", str(out),
            "--frames", "12", "--amplitude", "3")
    assert r.returncode == 0, r.stderr
    files = sorted(out.glob("frame_*.png"))
    assert [f.name for f in files[:2]] == ["frame_0001.png", "frame_0002.png"] and len(files) == 12
    import cv2

    still = cv2.imread(str(SAMPLES / "tree_still.png"))
    first = cv2.imread(str(files[0]))
    assert np.abs(first.astype(int) - still.astype(int)).max() <= 1  # frame 1 is the still
    middle = cv2.imread(str(files[6]))
    assert np.abs(middle.astype(int) - still.astype(int)).mean() > 0.5  # and it moves
    sidecar = json.loads((out / "frame.json").read_text())
    assert sidecar["params"]["frames"] == 12 and sidecar["params"]["options"]["amplitude"] == 3


def test_render_never_overwrites_without_consent(tree_motion, tmp_path):
    out = tmp_path / "loop"
    out.mkdir()
    mine = out / "frame_0001.png"
    mine.write_bytes(b"the user's own file")
    r = gid("render", str(SAMPLES / "tree_still.png"), "--motion", str(tree_motion), "-o", str(out), "--frames", "3")
    assert r.returncode == 2 and "exists" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert mine.read_bytes() == b"the user's own file" and listing(out) == ["frame_0001.png"]
    r = gid("render", str(SAMPLES / "tree_still.png"), "--motion", str(tree_motion), "-o", str(out), "--frames", "3",
            "--overwrite")
    assert r.returncode == 0 and mine.read_bytes()[:4] == b"\x89PNG"


def test_render_exr_and_mp4(tree_motion, tmp_path):
    r = gid("render", str(SAMPLES / "tree_still.png"), "--motion", str(tree_motion), "-o", str(tmp_path / "exr"),
            "--frames", "2", "--format", "exr", "--depth", "float")
    assert r.returncode == 0, r.stderr
    from gid.exporters.frames import decode_frame

    exr = decode_frame(tmp_path / "exr" / "frame_0001.exr")
    assert exr.dtype == np.float32 and exr.shape == (240, 320, 3)
    # EXR is scene-linear: the sRGB still was converted (0.5 sRGB is 0.214 linear)
    assert exr.mean() < 0.9 * (np.asarray(__import__("cv2").imread(str(SAMPLES / "tree_still.png")), float)
                               / 255).mean()
    r = gid("render", str(SAMPLES / "tree_still.png"), "--motion", str(tree_motion), "-o", str(tmp_path / "mp4"),
            "--frames", "5", "--format", "mp4")
    assert r.returncode == 0, r.stderr
    import cv2

    cap = cv2.VideoCapture(str(tmp_path / "mp4" / "frame.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5


def test_displace_writes_both_kinds(tree_motion, tmp_path):
    out = tmp_path / "disp"
    r = gid("displace", str(SAMPLES / "tree_still.png"), "--motion", str(tree_motion), "-o", str(out), "--frames", "4")
    assert r.returncode == 0, r.stderr
    assert len(list(out.glob("disp_[0-9]*.exr"))) == 4 and len(list(out.glob("disp_node_*.exr"))) == 4
    node = json.loads((out / "disp_node.json").read_text())
    assert node["params"]["scale"] > 0


def test_info_prints_metadata(tree_motion):
    r = gid("info", str(tree_motion))
    assert r.returncode == 0 and json.loads(r.stdout)["K"] == 16


# ------------------------------------------------------------------------------ bad inputs
def _corrupt_png(tmp_path: Path) -> Path:
    p = tmp_path / "corrupt.png"
    p.write_bytes((SAMPLES / "tree_still.png").read_bytes()[:300])
    return p


@pytest.mark.parametrize(
    "case",
    ["missing_video", "text_as_video", "one_frame_video", "empty_image", "corrupt_image",
     "wrong_motion_file", "size_mismatch", "missing_motion", "bad_amplitude", "prior_eval_against",
     "prior_eval_sim_extracted"],
)
def test_bad_input_is_one_line_nonzero_and_writes_nothing(case, tree_motion, tmp_path):
    out = tmp_path / "out"
    still = str(SAMPLES / "tree_still.png")
    if case == "missing_video":
        args = ["extract", str(tmp_path / "nope.mp4"), "-o", str(out / "m.gidsv")]
    elif case == "text_as_video":
        bad = tmp_path / "bad.avi"
        bad.write_text("this is not a video")
        args = ["extract", str(bad), "-o", str(out / "m.gidsv")]
    elif case == "one_frame_video":
        import cv2

        one = tmp_path / "one.avi"
        w = cv2.VideoWriter(str(one), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
        w.write(np.zeros((48, 64, 3), np.uint8))
        w.release()
        args = ["extract", str(one), "-o", str(out / "m.gidsv")]
    elif case == "empty_image":
        empty = tmp_path / "empty.png"
        empty.write_bytes(b"")
        args = ["render", str(empty), "--motion", str(tree_motion), "-o", str(out)]
    elif case == "corrupt_image":
        args = ["render", str(_corrupt_png(tmp_path)), "--motion", str(tree_motion), "-o", str(out)]
    elif case == "wrong_motion_file":
        args = ["render", still, "--motion", still, "-o", str(out)]
    elif case == "size_mismatch":
        sq = tmp_path / "square.gidsv"
        save_spectral_volume(random_volume(h=30, w=30), sq)
        args = ["render", still, "--motion", str(sq), "-o", str(out)]
    elif case == "missing_motion":
        args = ["render", still, "--motion", str(tmp_path / "none.gidsv"), "-o", str(out)]
    elif case == "prior_eval_against":  # --against compares renderers only
        args = ["eval", "prior", "--against", str(out), "--json", str(out / "e.json")]
    elif case == "prior_eval_sim_extracted":  # so does --sim-extracted
        args = ["eval", "prior", "--sim-extracted", str(out), "--json", str(out / "e.json")]
    else:
        args = ["render", still, "--motion", str(tree_motion), "-o", str(out), "--amplitude", "-1"]
    r = gid(*args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gid: error: ") and "Traceback" not in r.stderr
    assert listing(out) == []


def test_ctrl_c_mid_render_leaves_no_output(tree_motion, tmp_path):
    """SIGINT while frames are being staged: exit 130, the output folder is as before."""
    import signal
    import time

    out = tmp_path / "loop"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "gid.gid_engine.cli", "render", str(SAMPLES / "tree_still.png"),
                             "--motion", str(tree_motion), "-o", str(out), "--frames", "3000"],
                            stderr=subprocess.PIPE, text=True, env=env,
                            # a run started in the background (`make test &`) inherits SIGINT ignored,
                            # and Python then keeps ignoring it: give the child the default disposition
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300  # a fresh interpreter imports numpy, cv2 and onnxruntime first: slow on busy CIs
    while time.monotonic() < deadline and not any(out.glob(".gid-staging-*/frame_0003.png")):
        time.sleep(0.02)
    assert any(out.glob(".gid-staging-*/frame_0003.png")), "rendering never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "cancelled" in err
    assert not out.exists()  # the folder it created is gone too


def test_cancel_during_the_second_displacement_set_removes_the_first(tree_motion, tmp_path):
    """`--kind both` writes two sets; a cancel in the second must not leave the first behind."""
    from gid.gid_engine.errors import Cancelled
    from gid.gid_engine.rendering.pipeline import RenderOptions, displace_to_dir
    from gid.gid_engine.progress import Job

    calls = []

    def progress(done, total, what):
        calls.append(what)
        if len(calls) == 4 + 2:  # all 4 forward maps written, then 2 frames into the second set
            job.cancel()

    job = Job(progress)
    out = tmp_path / "disp"
    with pytest.raises(Cancelled):
        displace_to_dir((320, 240), tree_motion, out, RenderOptions(frames=4), kind="both", job=job)
    assert listing(out) == []
