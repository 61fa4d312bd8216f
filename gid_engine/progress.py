"""Progress reporting and cancellation shared by every long-running engine call.

Long work (extraction, rendering, baking) takes a ``Job``: the CLI wires it to a tqdm bar and
Ctrl-C, the Blender add-on to the status bar and Esc from a worker thread. The engine only
calls ``job.step(...)`` and ``job.check()``; it never knows who is listening.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

from .errors import Cancelled

ProgressCallback = Callable[[int, int, str], None]  # (done, total, what)


class Job:
    """A cancel flag (thread-safe) plus an optional progress callback."""

    def __init__(self, progress: Optional[ProgressCallback] = None) -> None:
        self._progress = progress
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop at its next check; safe to call from any thread."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise ``Cancelled`` if cancellation was asked for."""
        if self._cancel.is_set():
            raise Cancelled()

    def step(self, done: int, total: int, what: str = "") -> None:
        """Report progress, then honour a pending cancel."""
        if self._progress is not None:
            self._progress(done, total, what)
        self.check()


def ensure_job(job: Optional[Job]) -> Job:
    """Let callers pass ``None`` for 'no progress, never cancelled'."""
    return job if job is not None else Job()
