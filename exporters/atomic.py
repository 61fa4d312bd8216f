"""All-or-nothing writes.

A render that is cancelled, crashes or fills the disk must never leave a half-written PNG next to
the user's files, nor replace one of theirs by accident. Single files go to a hidden temp file in
the same folder and are moved in with ``os.replace`` (atomic on one file system); sets of files
(image sequences) are staged in a hidden folder inside the output folder and moved in only when
every file was written; a staging folder holds an OS lock while its transaction runs, so the
next transaction into the folder removes those a killed run left behind. All output bytes pass
through ``write_file`` so that tests can simulate a full disk on the Nth write.

Inside ``protected_inputs(paths)`` no write replaces one of those paths, even with ``overwrite``:
every check that a target may be replaced (``check_overwrite``, a transaction's ``declare`` and
commit) compares it with the inputs by file identity, so another spelling, a symlink or a hard
link to an input is refused too. Callers name the files they read; the exporters refuse, before
any work where the caller checks early, and again at the moment of replacing.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from .errors import ExportError, OutputExistsError, OutputIsInputError

STAGING_PREFIX = ".gid-staging-"
STAGING_LOCK = ".lock"
# A staging folder without its lock file is a transaction being set up, unless it is this old.
UNLOCKED_STAGING_GRACE_S = 60.0
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NO_PERMISSION = {errno.EACCES, errno.EPERM, errno.EROFS}
NAME_MAX_BYTES = 255  # the longest file name Linux, macOS and Windows file systems accept


def write_file(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist), write ``data`` and fsync, so a later rename is durable.

    Every output byte passes through here: tests and ``gid selftest`` replace it to simulate a full
    disk on the Nth write.
    """
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def os_error_to_export(exc: OSError, path: Path) -> ExportError:
    """Turn an OSError into a one-line message that says what the user can do about it."""
    if exc.errno in _DISK_FULL:
        return ExportError(f"disk full while writing {path}; nothing was written")
    if exc.errno == errno.EROFS:
        return ExportError(f"cannot write {path}: the file system is read-only")
    if exc.errno == errno.ENAMETOOLONG:
        return ExportError(name_too_long(path))
    if exc.errno in _NO_PERMISSION:
        return ExportError(f"no permission to write in {path.parent}")
    return ExportError(f"could not write {path}: {exc.strerror or exc}")


def short_name(name: str, limit: int = 60) -> str:
    """``name`` shortened for a one-line message (its start and end kept)."""
    return name if len(name) <= limit else f"{name[: limit // 2]}...{name[-limit // 3:]}"


def name_too_long(path: str | os.PathLike[str]) -> str:
    """The message for a path with a component over ``NAME_MAX_BYTES`` bytes, naming that component."""
    parts = Path(path).parts or (os.fspath(path),)
    longest = max(parts, key=lambda p: len(os.fsencode(p)))
    return (f"file name too long: {short_name(longest)} is {len(os.fsencode(longest))} bytes; "
            f"file systems allow {NAME_MAX_BYTES}")


def remove_quietly(path: Path) -> None:
    """Best-effort removal for cleanup paths, where a second error must not hide the first."""
    try:
        path.unlink()
    except OSError:
        pass


def temp_sibling(path: Path, suffix: str = "") -> Path:
    """A hidden, unique name next to ``path``: same file system, so ``os.replace`` is atomic."""
    return path.with_name(f".{path.name}.gid-tmp-{secrets.token_hex(4)}{suffix}")


def ensure_folder(folder: Path) -> list[Path]:
    """Create ``folder`` (and parents) or fail with a message naming it.

    Returns the folders this call created, deepest first, so that a write that fails afterwards
    can remove them again with ``remove_created_folders`` (a failed export leaves no trace).
    """
    created = missing_folders(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ExportError(f"cannot use {folder} as output folder: it is a file") from None
    except OSError as exc:
        remove_created_folders(created)
        if exc.errno == errno.ENAMETOOLONG:
            raise ExportError(name_too_long(folder)) from None
        if exc.errno == errno.EROFS:
            raise ExportError(f"cannot create folder {folder}: the file system is read-only") from None
        if exc.errno in _NO_PERMISSION:
            raise ExportError(f"no permission to create folder {folder}") from None
        raise ExportError(f"cannot create folder {folder}: {exc.strerror or exc}") from None
    return created


def missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist, deepest first."""
    missing: list[Path] = []
    p = Path(folder)
    while not os.path.lexists(p) and p.parent != p:
        missing.append(p)
        p = p.parent
    return missing


def remove_created_folders(created: Iterable[Path]) -> None:
    """Remove the folders ``ensure_folder`` created, deepest first, each only if it is empty."""
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            pass


class AllOrNothing:
    """The files of one operation that writes several outputs in steps: kept together or removed
    together.

    ``with AllOrNothing(folder) as outputs:`` then ``outputs.add(paths)`` after each step writes its
    files (each step is itself atomic: a transaction, or one file written and renamed). When the
    block ends with an exception (a later step failing, Cancel, Ctrl-C), every file added is removed
    and so are the folders under ``folder`` the block created, if they are empty; the exception
    goes on. ``keep_replaced``: leave files that existed before the block (a step that replaced
    them cannot bring the old content back, and an earlier complete output under that name is
    better than none), else remove every file added.
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None, keep_replaced: bool = False) -> None:
        self.folder = None if folder is None else Path(folder)
        self.keep_replaced = keep_replaced
        self.paths: list[Path] = []
        self._created: list[Path] = []
        self._before: set[Path] = set()

    def __enter__(self) -> AllOrNothing:
        if self.folder is not None:
            self._created = missing_folders(self.folder)
            if self.keep_replaced and self.folder.is_dir():
                self._before = set(self.folder.iterdir())
        return self

    def add(self, paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[Path]:
        """Record files a finished step wrote; returns them (as paths)."""
        items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        added = [Path(p) for p in items]
        self.paths.extend(added)
        return added

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            return
        for path in self.paths:  # best effort: the failure being reported matters more
            if not (self.keep_replaced and path in self._before):
                remove_quietly(path)
        remove_created_folders(self._created)


# The inputs protected in this context: (device, inode) and the name they were read by; None
# outside any ``protected_inputs`` block (readers then register nothing).
_PROTECTED: ContextVar[list[tuple[tuple[int, int], str]] | None] = ContextVar("gid_protected_inputs", default=None)


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    return st.st_dev, st.st_ino


@contextmanager
def protected_inputs(*paths: str | os.PathLike[str] | None) -> Iterator[None]:
    """Within the block, no export replaces one of ``paths`` nor a file ``protect_input`` names.

    Blocks nest (an inner block adds to what the outer one protects, until it ends). Paths that do
    not name an existing file are skipped: there is nothing to lose. The protection belongs to the
    current context; a worker thread opens its own block for its job.
    """
    protected = list(_PROTECTED.get() or [])
    token = _PROTECTED.set(protected)
    try:
        for path in paths:
            if path is not None:
                protect_input(path)
        yield
    finally:
        _PROTECTED.reset(token)


def protect_input(path: str | os.PathLike[str]) -> None:
    """Readers call this for every file they read: inside a ``protected_inputs`` block it cannot be
    replaced by an output until the block ends; outside one this does nothing."""
    protected = _PROTECTED.get()
    if protected is not None and (ident := _identity(path)) is not None:
        protected.append((ident, os.fspath(path)))


def refuse_inputs(targets: Iterable[Path]) -> None:
    """Raise OutputIsInputError if one of ``targets`` is a protected input (see ``protected_inputs``)."""
    protected = _PROTECTED.get()
    if not protected:
        return
    for target in targets:
        ident = _identity(target)
        if ident is None:
            continue
        for known, name in protected:
            # Still that file at that name: an input deleted since (a temporary file) frees its
            # inode for reuse, and a new file there is nobody's input.
            if ident == known and _identity(name) == known:
                raise OutputIsInputError(f"{target} is an input of this command ({name}); choose another output")


def check_overwrite(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing file unless asked, or an input at all, before any work is done."""
    refuse_inputs([path])
    if not overwrite and os.path.lexists(path):
        raise OutputExistsError(f"{path} already exists; use overwrite to replace it")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    check_overwrite(path, overwrite)
    created = ensure_folder(path.parent)
    tmp = temp_sibling(path)
    try:
        write_file(tmp, data)
        check_overwrite(path, overwrite)  # someone may have created it meanwhile
        os.replace(tmp, path)
    except BaseException as exc:
        remove_quietly(tmp)
        remove_created_folders(created)
        if isinstance(exc, OSError):
            raise os_error_to_export(exc, path) from None
        raise
    return path


def _check_name(name: str) -> str:
    """Only plain file names: a name must not be able to escape the output folder."""
    bad = not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name
    if bad or (os.altsep and os.altsep in name):
        raise ExportError(f"invalid output file name {name!r}: use a plain file name")
    return name


def _hold_lock(path: Path) -> BinaryIO:
    """Create ``path`` and hold an exclusive OS lock on it until the returned file is closed.

    The operating system releases the lock when the process ends however it ends (SIGKILL, a power
    cut's reboot), so a lock that can be taken marks its folder as abandoned.
    """
    f = open(path, "a+b")
    try:
        _lock_file(f)
    except BaseException:
        f.close()
        raise
    return f


def _lock_file(f: BinaryIO) -> None:
    """Take an exclusive, non-blocking lock on ``f`` (OSError when another process holds it)."""
    if os.name == "nt":
        import msvcrt

        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _is_abandoned(staging: Path) -> bool:
    """Whether ``staging`` belongs to no running transaction: its lock can be taken, or it has no
    lock file and is older than a transaction needs to create one."""
    lock = staging / STAGING_LOCK
    try:
        f = open(lock, "r+b")
    except FileNotFoundError:
        try:
            return time.time() - staging.stat().st_mtime > UNLOCKED_STAGING_GRACE_S
        except OSError:
            return False
    except OSError:
        return False
    try:
        _lock_file(f)
    except OSError:
        return False  # a live transaction holds it
    finally:
        f.close()
    return True


def remove_stale_staging(out_dir: Path) -> list[Path]:
    """Remove the staging folders in ``out_dir`` that runs killed mid-write left behind (SIGKILL,
    a crash, a power cut), so the next run into the folder cleans up after them. Staging folders of
    transactions still running (in this or another process) are kept. Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(out_dir))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False):
            staging = Path(entry.path)
            if _is_abandoned(staging):
                shutil.rmtree(staging, ignore_errors=True)
                removed.append(staging)
    return removed


class OutputTransaction:
    """Write a set of files into ``out_dir`` that appears whole or not at all.

    Usage::

        with OutputTransaction(out_dir) as tx:
            tx.declare(names)          # fail fast, before rendering anything
            tx.write_bytes(name, data) # or: writer(tx.staged_path(name))
        tx.written                     # final paths, after commit

    Any exception (KeyboardInterrupt and engine cancellation included) discards the staging
    folder; the user's files in ``out_dir`` are only touched when replaced on commit with
    ``overwrite=True``.
    """

    def __init__(self, out_dir: str | os.PathLike[str], overwrite: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.overwrite = overwrite
        self.written: list[Path] = []
        self._staging: Path | None = None
        self._names: list[str] = []
        self._created: list[Path] = []
        self._lock: BinaryIO | None = None

    def __enter__(self) -> OutputTransaction:
        self._created = ensure_folder(self.out_dir)
        remove_stale_staging(self.out_dir)
        try:
            self._staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.out_dir))
            self._lock = _hold_lock(self._staging / STAGING_LOCK)
        except OSError as exc:
            if self._staging is not None:
                shutil.rmtree(self._staging, ignore_errors=True)
                self._staging = None
            remove_created_folders(self._created)
            if exc.errno in _NO_PERMISSION:
                raise ExportError(f"no permission to write in {self.out_dir}") from None
            raise ExportError(f"cannot write in {self.out_dir}: {exc.strerror or exc}") from None
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        try:
            if exc_type is None:
                self._commit()
        finally:
            if self._lock is not None:  # released first: Windows cannot delete a file held open
                self._lock.close()
                self._lock = None
            if self._staging is not None:
                shutil.rmtree(self._staging, ignore_errors=True)
            if exc_type is not None:  # a failed export leaves no trace, not even the folders it made
                remove_created_folders(self._created)
        return False

    def _conflicts(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if os.path.lexists(self.out_dir / n)]

    def _raise_conflicts(self, names: list[str]) -> None:
        refuse_inputs(self.out_dir / n for n in names)
        conflicts = self._conflicts(names)
        if conflicts and not self.overwrite:
            more = f" (and {len(conflicts) - 1} more of the {len(names)} outputs)" if len(conflicts) > 1 else ""
            raise OutputExistsError(
                f"{self.out_dir / conflicts[0]} already exists{more}; use overwrite to replace"
            )

    def declare(self, names: Iterable[str]) -> None:
        """Check up front that none of ``names`` would replace an existing file."""
        self._raise_conflicts([_check_name(n) for n in names])

    def staged_path(self, name: str) -> Path:
        """A real path inside the staging folder, for writers that want a file name."""
        if self._staging is None:
            raise RuntimeError("OutputTransaction used outside its 'with' block")
        if _check_name(name) in self._names:
            raise ExportError(f"{name} is written twice in one export")
        self._names.append(name)
        return self._staging / name

    def write_bytes(self, name: str, data: bytes) -> None:
        """Stage ``data`` as ``name``; it reaches ``out_dir`` on commit."""
        staged = self.staged_path(name)
        try:
            write_file(staged, data)
        except OSError as exc:
            raise os_error_to_export(exc, self.out_dir / name) from None

    def _commit(self) -> None:
        assert self._staging is not None
        missing = [n for n in self._names if not (self._staging / n).is_file()]
        if missing:
            raise ExportError(f"{missing[0]} was not produced; nothing was written")
        self._raise_conflicts(self._names)
        existed = set(self._conflicts(self._names))
        moved: list[Path] = []
        try:
            for name in self._names:
                target = self.out_dir / name
                os.replace(self._staging / name, target)
                moved.append(target)
        except OSError as exc:
            for target in moved:  # undo what we can: files that did not exist before
                if target.name not in existed:
                    remove_quietly(target)
            raise os_error_to_export(exc, self.out_dir / name) from None
        self.written = moved
