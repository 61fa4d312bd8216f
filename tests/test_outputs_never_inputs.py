"""No command replaces a file it reads, even with --overwrite: one guard in the exporters
(``protected_inputs``), fed by every reader, refuses such an output with one line and loses nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from gid.exporters.atomic import atomic_write_bytes, protect_input, protected_inputs
from gid.exporters.errors import OutputIsInputError
from gid.gid_engine.cli import main
from gid.gid_engine.rendering.pipeline import RenderOptions, render_to_dir
from gid.gid_engine.motion.sv_file import save_spectral_volume

from conftest import random_volume

REPO = Path(__file__).resolve().parents[1]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copy(REPO / "samples" / "tree.avi", tmp_path / "clip.avi")
    shutil.copy(REPO / "samples" / "tree_still.png", tmp_path / "still.png")
    vol = random_volume(h=24, w=32, seed=2)
    save_spectral_volume(vol.replace(coeffs=vol.coeffs * np.float32(0.2)), tmp_path / "m.gidsv")
    return tmp_path


def run_refused(argv: list[str], capsys, victim: Path, cwd: Path) -> str:
    before = digest(victim)
    listing = sorted(p.name for p in cwd.iterdir())
    old = os.getcwd()
    os.chdir(cwd)
    try:
        rc = main(argv)
    finally:
        os.chdir(old)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert digest(victim) == before  # the user's file, byte for byte
    assert sorted(p.name for p in cwd.iterdir()) == listing  # and nothing else appeared
    assert err.count("\n") == 0 and "is an input of this command" in err, err
    return err


def test_extract_onto_its_own_video_is_refused(folder, capsys):
    err = run_refused(["extract", "clip.avi", "-o", "clip.avi", "--overwrite"], capsys, folder / "clip.avi", folder)
    assert err == "gid: error: clip.avi is an input of this command (clip.avi); choose another output"


def test_another_name_for_the_input_is_refused_too(folder, capsys):
    os.link(folder / "clip.avi", folder / "same.avi")  # a hard link: another name, the same file
    os.symlink(folder / "clip.avi", folder / "link.avi")
    run_refused(["extract", "same.avi", "-o", "clip.avi", "--overwrite"], capsys, folder / "clip.avi", folder)
    run_refused(["extract", "clip.avi", "-o", "./sub/../link.avi", "--overwrite"], capsys, folder / "clip.avi", folder)


def test_render_into_the_folder_of_its_still_named_like_a_frame(folder, capsys):
    (folder / "still.png").rename(folder / "frame_0001.png")
    run_refused(["render", "frame_0001.png", "-m", "m.gidsv", "-o", ".", "--frames", "3", "--overwrite"], capsys,
                folder / "frame_0001.png", folder)


def test_predict_onto_its_own_image_is_refused(folder, capsys):
    run_refused(["predict", "still.png", "-o", "still.png", "--overwrite", "--steps", "1"], capsys,
                folder / "still.png", folder)


def test_a_sequence_frame_read_by_extract_is_protected(folder, capsys):
    """The readers register what they open: every frame of an image-sequence clip."""
    frames = folder / "frames"
    frames.mkdir()
    for i in range(12):  # 1.2 s at 10 fps: enough for extraction to start
        shutil.copy(folder / "still.png", frames / f"f_{i:04d}.png")
    run_refused(["extract", "frames", "--fps", "10", "-o", "frames/f_0002.png", "--overwrite"], capsys,
                frames / "f_0002.png", folder)


def test_the_engine_api_refuses_too(folder):
    (folder / "still.png").rename(folder / "frame_0002.png")
    before = digest(folder / "frame_0002.png")
    with pytest.raises(OutputIsInputError, match="frame_0002.png is an input"):
        render_to_dir(folder / "frame_0002.png", folder / "m.gidsv", folder, RenderOptions(frames=3), overwrite=True)
    assert digest(folder / "frame_0002.png") == before
    assert sorted(p.name for p in folder.iterdir()) == ["clip.avi", "frame_0002.png", "m.gidsv"]


def test_protection_lasts_for_its_block_only(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"mine")
    protect_input(path)  # outside any block: nothing is registered
    atomic_write_bytes(path, b"new", overwrite=True)
    with protected_inputs():
        protect_input(path)
        with protected_inputs():  # nested: still protected
            with pytest.raises(OutputIsInputError):
                atomic_write_bytes(path, b"lost", overwrite=True)
    atomic_write_bytes(path, b"after", overwrite=True)  # the block ended
    assert path.read_bytes() == b"after"


def test_an_input_deleted_since_protects_nothing(tmp_path):
    """A temporary input that is gone frees its inode; a new file that reuses it is nobody's input
    (a long-running block, e.g. ``gid selftest``'s, must not refuse it)."""
    old = tmp_path / "old.bin"
    old.write_bytes(b"temporary input")
    with protected_inputs(old):
        ident = os.stat(old).st_ino
        old.unlink()
        for i in range(200):  # the file system hands the inode out again, sooner or later
            new = tmp_path / f"new{i}.bin"
            new.write_bytes(b"x")
            if os.stat(new).st_ino == ident:
                break
        atomic_write_bytes(new, b"replaced", overwrite=True)  # whether or not the inode was reused
        assert new.read_bytes() == b"replaced"
