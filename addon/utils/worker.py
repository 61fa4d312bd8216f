"""Running engine calls off Blender's UI thread, with progress and cancel.

Blender's data is not thread-safe, so the split is strict: a worker thread runs one bpy-free
callable ``run(job)`` (plain values in, plain values out) and posts what happens to a
``queue.Queue``; the main thread drains the queue from a modal operator's timer and alone
touches bpy. Cancel is the engine's ``Job.cancel()`` flag: the engine raises ``Cancelled`` at
its next check and its exporters discard everything they staged, so nothing is left to undo.

This module imports no bpy on purpose: the same code runs synchronously for ``execute()``
(scripts, headless tests) and threaded for ``invoke()``.
"""

from __future__ import annotations

import queue
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ...exporters.atomic import protected_inputs
from ...exporters.errors import ExportError
from ...gid_engine.errors import Cancelled, GidError
from ...gid_engine.progress import Job

Run = Callable[[Job], Any]


@dataclass
class Message:
    """One event from the worker: ``kind`` is progress, done, cancelled or error."""

    kind: str
    done: int = 0
    total: int = 0
    what: str = ""
    result: Any = None
    error: str = ""


@dataclass
class Outcome:
    """How a job ended, as the operator needs it."""

    status: str  # "done" | "cancelled" | "error"
    result: Any = None
    error: str = ""
    messages: list[str] = field(default_factory=list)


def user_message(exc: BaseException) -> str:
    """One line for a report. Our errors are written for users; anything else is a bug, so
    it keeps its type name (and the traceback goes to the console)."""
    if isinstance(exc, (GidError, ExportError)):
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    traceback.print_exception(type(exc), exc, exc.__traceback__)
    return f"internal error ({type(exc).__name__}: {exc}); see the system console"


@protected_inputs()  # no output of the job may replace a file it reads (each thread has its own)
def run_job(run: Run, job: Job) -> Outcome:
    """Run ``run(job)`` here and classify how it ended (the worker thread's body, too)."""
    try:
        return Outcome("done", result=run(job))
    except Cancelled as exc:
        return Outcome("cancelled", error=str(exc))
    except Exception as exc:
        if job.cancelled:  # a cancel can surface as another error from a half-closed writer
            return Outcome("cancelled", error=Cancelled().args[0])
        return Outcome("error", error=user_message(exc))


class Worker:
    """One engine call on a daemon thread; poll() from the main thread for its messages."""

    def __init__(self, run: Run, name: str = "gid-worker") -> None:
        self.queue: "queue.Queue[Message]" = queue.Queue()
        self.job = Job(self._progress)
        self._run = run
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.outcome: Optional[Outcome] = None

    def _progress(self, done: int, total: int, what: str) -> None:
        self.queue.put(Message("progress", done=done, total=total, what=what))

    def _main(self) -> None:
        outcome = run_job(self._run, self.job)
        self.queue.put(Message(outcome.status, result=outcome.result, error=outcome.error))

    def start(self) -> "Worker":
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the engine to stop (thread-safe, returns at once)."""
        self.job.cancel()

    def join(self, timeout: Optional[float] = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def poll(self) -> tuple[Optional[tuple[int, int, str]], Optional[Outcome]]:
        """Drain the queue: the latest progress (done, total, what) and the outcome once ended."""
        latest = None
        while True:
            try:
                msg = self.queue.get_nowait()
            except queue.Empty:
                break
            if msg.kind == "progress":
                latest = (msg.done, msg.total, msg.what)
            else:
                self.outcome = Outcome(msg.kind, result=msg.result, error=msg.error)
        return latest, self.outcome


# One job at a time: the panel's Cancel button and file-load handlers need to find it.
_current: Optional[Worker] = None
_lock = threading.Lock()


def current() -> Optional[Worker]:
    """The running (or finished but not yet collected) worker, if any."""
    return _current


def start(run: Run, name: str = "gid-worker") -> Worker:
    """Start ``run`` on a worker thread; refuses while another job is still running."""
    global _current
    with _lock:
        if _current is not None and _current.alive:
            raise GidError("another GID job is running; wait for it or cancel it first")
        _current = Worker(run, name).start()
        return _current


def release(worker: Worker) -> None:
    """Forget ``worker`` once its operator has collected the outcome."""
    global _current
    with _lock:
        if _current is worker:
            _current = None


def cancel_current(wait: float = 0.0) -> bool:
    """Cancel the running job (if any); with ``wait`` > 0 also wait that long for it to stop."""
    worker = _current
    if worker is None:
        return False
    worker.cancel()
    if wait > 0:
        worker.join(wait)
    return True


def progress_fraction(done: int, total: int) -> float:
    return min(1.0, max(0.0, done / total)) if total > 0 else 0.0
