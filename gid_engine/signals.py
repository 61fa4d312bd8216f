"""Termination requests end a command the way Ctrl-C does: outputs in progress are removed.

Python turns SIGINT into KeyboardInterrupt, which every writer already treats as a cancel (staging
folders and temp files are removed, folders the run created too). SIGTERM (``kill``, a job
scheduler, a container stop) and SIGHUP (a closed terminal or SSH session) would otherwise end the
process at once and leave half a render behind; inside ``terminate_as_interrupt`` they raise
``Terminated``, a KeyboardInterrupt, at the point the main thread is at, and the same cleanup
runs. The command then exits with 128 + the signal's number, as a shell reports a signal death.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

# SIGHUP does not exist on Windows; SIGBREAK (Ctrl-Break) is its console counterpart there.
TERMINATING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGBREAK")
                            if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """The process was asked to terminate by ``signum``; raised where the main thread was."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        """The signal's name, e.g. SIGTERM."""
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_code(self) -> int:
        """128 + the signal's number: what a shell reports for a process the signal ended."""
        return 128 + self.signum


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM/SIGHUP raise ``Terminated`` in the main thread; the handlers that
    were installed before come back when the block ends.

    The first signal raises; later ones while the cleanup runs are ignored, so a second ``kill``
    cannot interrupt the removal of what the first one abandoned. Outside the main thread (where
    Python cannot install handlers) the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if received:
            return
        received.append(signum)
        raise Terminated(signum)

    previous: dict[int, Any] = {}
    for signum in TERMINATING_SIGNALS:
        try:
            previous[signum] = signal.signal(signum, handler)
        except (OSError, ValueError):  # not settable here (an embedding host's policy)
            pass
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
