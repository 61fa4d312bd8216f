"""All-or-nothing writing: single files and file sets, overwrite rules, full disk, cancel."""

from __future__ import annotations

import errno
import os

import pytest

import gid.exporters.atomic as atomic
from gid.exporters.atomic import OutputTransaction, atomic_write_bytes
from gid.exporters.errors import ExportError, OutputExistsError


def snapshot(folder):
    """Every entry (hidden ones included) with its bytes, to prove nothing changed."""
    return {p.name: (p.read_bytes() if p.is_file() else None) for p in sorted(folder.iterdir())}


def test_atomic_write_creates_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.bin"
    assert atomic_write_bytes(target, b"hello") == target
    assert target.read_bytes() == b"hello"
    assert [p.name for p in target.parent.iterdir()] == ["a.bin"]


def test_atomic_write_refuses_to_overwrite_and_keeps_user_file(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"user data")
    with pytest.raises(OutputExistsError, match="already exists"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"user data"
    atomic_write_bytes(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new"
    assert snapshot(tmp_path) == {"a.bin": b"new"}


def test_atomic_write_disk_full_removes_temp(tmp_path, monkeypatch):
    real = atomic.write_file

    def full(path, data):
        real(path, data[:3])  # a partial temp file exists when the error hits
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "write_file", full)
    with pytest.raises(ExportError, match="disk full while writing .*a.bin; nothing was written"):
        atomic_write_bytes(tmp_path / "a.bin", b"payload")
    assert list(tmp_path.iterdir()) == []


def test_transaction_commits_all_files(tmp_path):
    out = tmp_path / "new" / "out"
    with OutputTransaction(out) as tx:
        tx.declare(["a.txt", "b.txt"])
        tx.write_bytes("a.txt", b"A")
        tx.staged_path("b.txt").write_bytes(b"B")
        assert snapshot(out).keys() == {tx._staging.name}  # nothing visible before commit
    assert snapshot(out) == {"a.txt": b"A", "b.txt": b"B"}
    assert tx.written == [out / "a.txt", out / "b.txt"]


def test_declare_reports_first_conflict_and_count(tmp_path):
    (tmp_path / "b.txt").write_bytes(b"user b")
    (tmp_path / "c.txt").write_bytes(b"user c")
    before = snapshot(tmp_path)
    with pytest.raises(OutputExistsError, match=r"b\.txt already exists \(and 1 more of the 3 outputs\)"):
        with OutputTransaction(tmp_path) as tx:
            tx.declare(["a.txt", "b.txt", "c.txt"])
    assert snapshot(tmp_path) == before


def test_overwrite_replaces_only_written_files(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"old a")
    (tmp_path / "keep.txt").write_bytes(b"keep")
    with OutputTransaction(tmp_path, overwrite=True) as tx:
        tx.declare(["a.txt"])
        tx.write_bytes("a.txt", b"new a")
    assert snapshot(tmp_path) == {"a.txt": b"new a", "keep.txt": b"keep"}


def test_conflict_appearing_during_export_is_caught_at_commit(tmp_path):
    with pytest.raises(OutputExistsError):
        with OutputTransaction(tmp_path) as tx:
            tx.declare(["a.txt"])
            tx.write_bytes("a.txt", b"ours")
            (tmp_path / "a.txt").write_bytes(b"theirs")
    assert snapshot(tmp_path) == {"a.txt": b"theirs"}


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_exception_discards_staging(tmp_path, exc):
    (tmp_path / "user.txt").write_bytes(b"mine")
    before = snapshot(tmp_path)
    with pytest.raises(exc):
        with OutputTransaction(tmp_path) as tx:
            tx.write_bytes("a.txt", b"A")
            raise exc()
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "a\\b"])
def test_rejects_non_plain_names(tmp_path, name):
    with pytest.raises(ExportError, match="invalid output file name"):
        with OutputTransaction(tmp_path) as tx:
            tx.write_bytes(name, b"x")
    assert list(tmp_path.iterdir()) == []


def test_out_dir_that_is_a_file(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ExportError, match="it is a file"):
        with OutputTransaction(tmp_path / "f"):
            pass


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ExportError, match="no permission to write in"):
            with OutputTransaction(ro):
                pass
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("nested", ["a", "a/b/c"])
def test_a_failed_write_removes_the_folders_it_created(tmp_path, monkeypatch, nested):
    """Disk full on the first write: 'nothing was written' is true of folders too."""
    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "write_file", full)
    (tmp_path / "keep").mkdir()  # an empty folder of the user's, inside which nothing was made
    with pytest.raises(ExportError, match="disk full while writing .*; nothing was written"):
        atomic_write_bytes(tmp_path / nested / "x.bin", b"data")
    with pytest.raises(ExportError, match="disk full"):
        with OutputTransaction(tmp_path / nested) as tx:
            tx.write_bytes("frame_0001.png", b"png")
    with pytest.raises(ExportError, match="disk full"):
        atomic_write_bytes(tmp_path / "keep" / nested / "x.bin", b"data")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["keep"]


# ----------------------------------------------------------------------------- all or nothing
def test_all_or_nothing_removes_what_a_failed_operation_wrote(tmp_path):
    from gid.exporters.atomic import AllOrNothing

    old = tmp_path / "out" / "old.png"
    old.parent.mkdir()
    old.write_bytes(b"old")
    deep = tmp_path / "new" / "deeper"
    with pytest.raises(RuntimeError, match="second step"):
        with AllOrNothing(deep) as outputs:
            deep.mkdir(parents=True)
            (deep / "a.exr").write_bytes(b"a")
            outputs.add([deep / "a.exr"])
            raise RuntimeError("second step failed")
    assert not (tmp_path / "new").exists()  # its files and the folders it made are gone

    with pytest.raises(KeyboardInterrupt):
        with AllOrNothing(old.parent, keep_replaced=True) as outputs:
            old.write_bytes(b"replaced")
            (old.parent / "new.png").write_bytes(b"new")
            outputs.add([old, old.parent / "new.png"])
            raise KeyboardInterrupt
    assert sorted(p.name for p in old.parent.iterdir()) == ["old.png"]  # a file that was there stays

    with AllOrNothing(tmp_path / "ok") as outputs:
        (tmp_path / "ok").mkdir()
        outputs.add(tmp_path / "ok" / "f")
        (tmp_path / "ok" / "f").write_bytes(b"f")
    assert (tmp_path / "ok" / "f").read_bytes() == b"f" and outputs.paths == [tmp_path / "ok" / "f"]
