"""Faults of the system around a command (long names, read-only disks, closed or full streams,
a locale that cannot spell a file's name) end in one line and exit 2, never an internal error.

Each case runs ``gid`` in a child process as a user would and asserts the exit code, the single
line on stderr and that the user's files are byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gid.gid_engine.motion.sv_file import save_spectral_volume

from conftest import random_volume

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux file-system and locale behaviour")


def gid(*args: str, cwd: Path, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    full = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    full.pop("GID_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "gid.gid_engine.cli", *args], cwd=cwd, env=full, timeout=600, **kw)


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    from gid.exporters.opencv import cv2

    vol = random_volume(h=24, w=32, seed=2)
    save_spectral_volume(vol.replace(coeffs=vol.coeffs * np.float32(0.2)), tmp_path / "m.gidsv")
    cv2.imwrite(str(tmp_path / "still.png"), np.full((48, 64, 3), 128, np.uint8))
    return tmp_path


def one_line(r: subprocess.CompletedProcess) -> str:
    err = r.stderr.decode() if isinstance(r.stderr, bytes) else r.stderr
    assert r.returncode == 2, err
    assert err.count("\n") == 1 and err.startswith("gid: error: ") and "internal error" not in err, err
    return err.strip()


@pytest.mark.parametrize("suffix", ["", ".gidsv"], ids=["render-folder", "extract-file"])
def test_an_output_name_over_255_bytes(folder, suffix):
    before = digest(folder)
    name = "a" * 300 + suffix
    if suffix:
        r = gid("extract", str(Path(__file__).parents[1] / "samples" / "tree.avi"), "-o", name, "--size", "32x24",
                cwd=folder, capture_output=True, text=True)
    else:
        r = gid("render", "still.png", "-m", "m.gidsv", "-o", name, "--frames", "2", "--fit", "stretch",
                cwd=folder, capture_output=True, text=True)
    err = one_line(r)
    assert f"is {300 + len(suffix)} bytes; file systems allow 255" in err and len(err) < 200
    assert digest(folder) == before


def test_stdout_full_is_one_line(folder):
    with open("/dev/full", "w") as full:
        r = gid("info", "m.gidsv", cwd=folder, stdout=full, stderr=subprocess.PIPE, text=True)
    assert one_line(r) == "gid: error: cannot write to standard output: No space left on device"


def test_stderr_closed_still_renders(folder):
    """``2>&-``: no stream to report on must not turn a good render into a failure."""
    r = subprocess.run(f"{sys.executable} -m gid.gid_engine.cli render still.png -m m.gidsv -o out --frames 2 "
                       "--fit stretch 2>&-", shell=True, cwd=folder, timeout=600)
    assert r.returncode == 0
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["frame.json", "frame_0001.png", "frame_0002.png"]


@pytest.mark.parametrize("seed", ["-1", str(2**64), "x"])
def test_a_seed_out_of_range_is_refused_by_argparse(folder, seed):
    r = gid("predict", "still.png", "-o", "p.gidsv", "--seed", seed, "--steps", "1", cwd=folder,
            capture_output=True, text=True)
    assert r.returncode == 2 and "internal error" not in r.stderr
    assert r.stderr.startswith("gid: error: predict: argument --seed: must be an integer "
                               "0 .. 9,223,372,036,854,775,807, got ")
    assert r.stderr.count("\n") == 1
    assert not (folder / "p.gidsv").exists()


def test_a_file_name_the_locale_cannot_spell(folder):
    """Under LANG=C (no UTF-8 coercion) a non-ASCII name is read, written and reported."""
    os.rename(folder / "still.png", folder / "caf\u00e9.png")
    env = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    r = gid("render", "caf\u00e9.png", "-m", "m.gidsv", "-o", "out\u00e9", "--frames", "2", "--fit", "stretch",
            cwd=folder, env=env, capture_output=True)
    assert r.returncode == 0, r.stderr
    out = folder / "out\u00e9"
    assert (out / "frame_0002.png").is_file()
    import json

    assert json.loads((out / "frame.json").read_text("utf-8"))["params"]["image"]["path"].endswith(".png")


def test_an_undecodable_file_name(folder):
    """A name that is not UTF-8 at all (Latin-1 bytes): the sidecar records it as valid JSON."""
    raw = os.fsencode(folder) + b"/caf\xe9.png"
    os.rename(folder / "still.png", raw)
    r = gid("render", os.fsdecode(raw), "-m", "m.gidsv", "-o", "out", "--frames", "2", "--fit", "stretch",
            cwd=folder, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    import json

    doc = json.loads((folder / "out" / "frame.json").read_bytes().decode("utf-8"))
    assert os.fsencode(doc["params"]["image"]["path"]).endswith(b"caf\xe9.png")


def test_mp4_on_a_read_only_folder(folder, monkeypatch):
    """A folder gid may not write in: the reason in one line, nothing left (root ignores modes, so
    the read-only file system is simulated where the encoder opens its file)."""
    from gid.gid_engine.cli import main

    ro = folder / "ro"
    ro.mkdir()
    real_open = open

    def read_only(path, mode="r", *a, **kw):
        if "x" in mode or "w" in mode:
            if Path(path).parent == ro:
                raise OSError(30, "Read-only file system", str(path))
        return real_open(path, mode, *a, **kw)

    import builtins

    monkeypatch.setattr(builtins, "open", read_only)
    import io
    import contextlib

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["render", str(folder / "still.png"), "-m", str(folder / "m.gidsv"), "-o", str(ro), "--format",
                   "mp4", "--frames", "2", "--fit", "stretch"])
    monkeypatch.undo()
    assert rc == 2, err.getvalue()
    assert err.getvalue().strip() == f"gid: error: cannot write {ro / 'frame.mp4'}: the file system is read-only"
    assert list(ro.iterdir()) == []
