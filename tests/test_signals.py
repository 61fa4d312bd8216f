"""SIGTERM and SIGHUP end a command like Ctrl-C: exit 128 + signal, one line, nothing left; a run
killed outright (SIGKILL) leaves a staging folder that the next run into that folder removes.

Each test runs ``gid`` in a child process on real files, signals it while frames are being staged
and asserts the exit code, the message, and that the output folder holds exactly the user's
files, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gid.exporters.atomic import STAGING_PREFIX, OutputTransaction, remove_stale_staging

from conftest import REPO

SAMPLES = REPO / "samples"
pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals")


def start(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("GID_DEBUG", None)
    # A run started in the background inherits ignored signals; give the child the defaults.
    def defaults() -> None:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)

    return subprocess.Popen([sys.executable, "-m", "gid.gid_engine.cli", *args], stderr=subprocess.PIPE, text=True,
                            env=env, preexec_fn=defaults)


def wait_for_staged_frame(proc: subprocess.Popen, out: Path, name: str = "frame_0003.png") -> None:
    deadline = time.monotonic() + 300  # a fresh interpreter imports numpy, OpenCV and onnxruntime first
    while time.monotonic() < deadline and proc.poll() is None and not list(out.glob(f"{STAGING_PREFIX}*/{name}")):
        time.sleep(0.02)
    assert list(out.glob(f"{STAGING_PREFIX}*/{name}")), f"rendering never started: {proc.stderr.read()}"


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def motion(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("motion") / "tree.gidsv"
    r = subprocess.run([sys.executable, "-m", "gid.gid_engine.cli", "extract", str(SAMPLES / "tree.avi"), "-o",
                        str(out), "--size", "160x120"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return out


def users_folder(tmp_path: Path) -> Path:
    out = tmp_path / "loop"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file\n")
    (out / "frame_0001.png").write_bytes(b"not gid's: an older frame the user keeps")
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_termination_signal_mid_render_is_a_cancel(motion, tmp_path, sig):
    out = users_folder(tmp_path)
    before = digest(out)
    proc = start("render", str(SAMPLES / "tree_still.png"), "-m", str(motion), "-o", str(out), "--frames", "3000",
                 "--overwrite")
    wait_for_staged_frame(proc, out)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert err.strip().splitlines()[-1] == f"gid: stopped by {signal.Signals(sig).name}; nothing was written"
    assert digest(out) == before  # the user's files untouched, no staging folder, no frame of ours


def test_a_termination_signal_mid_animate_is_a_cancel(tmp_path):
    out = users_folder(tmp_path)
    before = digest(out)
    proc = start("animate", str(SAMPLES / "tree_still.png"), "-o", str(out), "--frames", "3000", "--steps", "1",
                 "--overwrite")
    wait_for_staged_frame(proc, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1] == "gid: stopped by SIGTERM; nothing was written"
    assert digest(out) == before


def test_a_folder_a_killed_run_left_is_cleaned_by_the_next_run(motion, tmp_path):
    out = users_folder(tmp_path)
    before = digest(out)
    proc = start("render", str(SAMPLES / "tree_still.png"), "-m", str(motion), "-o", str(out), "--frames", "3000",
                 "--overwrite")
    wait_for_staged_frame(proc, out)
    proc.kill()  # SIGKILL: no cleanup can run
    proc.communicate(timeout=60)
    assert list(out.glob(f"{STAGING_PREFIX}*")), "SIGKILL should have left the staging folder"
    r = subprocess.run([sys.executable, "-m", "gid.gid_engine.cli", "render", str(SAMPLES / "tree_still.png"), "-m",
                        str(motion), "-o", str(out), "--frames", "4"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "frame_0001.png already exists" in r.stderr  # the user's frame is kept...
    assert not list(out.glob(f"{STAGING_PREFIX}*"))  # ...and the abandoned staging is gone
    assert digest(out) == before


def test_a_staging_folder_in_use_is_kept(tmp_path):
    """Another transaction's staging (held lock) survives; an unlocked one is removed; a young one
    without a lock file (a transaction being set up) is kept until it is a minute old."""
    with OutputTransaction(tmp_path) as tx:
        tx.write_bytes("a.txt", b"a")
        live = next(tmp_path.glob(f"{STAGING_PREFIX}*"))
        young = tmp_path / f"{STAGING_PREFIX}young"
        young.mkdir()
        old = tmp_path / f"{STAGING_PREFIX}old"
        old.mkdir()
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        abandoned = tmp_path / f"{STAGING_PREFIX}abandoned"
        abandoned.mkdir()
        (abandoned / ".lock").write_bytes(b"")
        (abandoned / "frame_0001.png").write_bytes(b"x" * 100)
        assert sorted(p.name for p in remove_stale_staging(tmp_path)) == [abandoned.name, old.name]
        assert live.exists() and young.exists()
    assert (tmp_path / "a.txt").read_bytes() == b"a" and not live.exists()
