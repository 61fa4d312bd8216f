"""Checks for the public API's arguments, made at the door.

The engine's public functions (``Engine``'s methods, ``render_frames``, ``predict_motion``,
``Timing`` ...) check their arguments before any work, so a wrong value is refused with an error
that names the argument and what it accepts (``ArgumentError``/``ArgumentTypeError``, which are
also ``ValueError``/``TypeError``) instead of an AttributeError deep inside, or a silent
conversion (``Timing(frames=2.5)`` rendering 3 frames). The CLI's option types use the same
checks, so a value means the same in both.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Optional, TypeVar

from .errors import ArgumentError, ArgumentTypeError

T = TypeVar("T")
SEED_MAX = 2**63 - 1  # what both numpy's and torch's generators accept


def _kind(value: Any) -> str:
    return type(value).__name__


def integer(value: Any, name: str, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
    """``value`` as an int: an int or numpy integer (not a bool, not 2.5, not '4'), within [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be an integer, got {_kind(value)} {value!r}")
    value = int(value)
    _check_range(value, name, lo, hi)
    return value


def number(value: Any, name: str, lo: Optional[float] = None, hi: Optional[float] = None,
           lo_open: bool = False) -> float:
    """``value`` as a finite float (an int, float or numpy number; not a bool or a string), within
    [lo, hi] (or (lo, hi] with ``lo_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name} must be a number, got {_kind(value)} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ArgumentError(f"{name} must be a finite number, got {value!r}")
    if lo_open and lo is not None and value <= lo:
        high = "" if hi is None else f" and at most {_show(hi)}"
        raise ArgumentError(f"{name} must be greater than {_show(lo)}{high}, got {_show(value)}")
    _check_range(value, name, None if lo_open else lo, hi)
    return value


def _show(value: float) -> str:
    """A number as a message shows it: floats in 6 digits, integers in full unless absurdly long."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return f"{value:,}" if abs(value) < 10**30 else f"{float(value):.3g}"


def _check_range(value: float, name: str, lo: Optional[float], hi: Optional[float]) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            raise ArgumentError(f"{name} must be between {_show(lo)} and {_show(hi)}, got {_show(value)}")
        if lo is not None:
            raise ArgumentError(f"{name} must be at least {_show(lo)}, got {_show(value)}")
        raise ArgumentError(f"{name} must be at most {_show(hi)}, got {_show(value)}")


def boolean(value: Any, name: str) -> bool:
    """``value`` when it is a bool (numpy's too); 'false' or 1 are refused, not guessed."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise ArgumentTypeError(f"{name} must be True or False, got {_kind(value)} {value!r}")


def choice(value: Any, name: str, options: Iterable[str]) -> str:
    """``value`` when it is one of ``options`` (strings)."""
    options = tuple(options)
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be one of {', '.join(options)}, got {_kind(value)} {value!r}")
    if value not in options:
        raise ArgumentError(f"{name} must be one of {', '.join(options)}, got {value!r}")
    return value


def instance(value: Any, name: str, cls: type[T], hint: str = "") -> T:
    """``value`` when it is a ``cls``; the error names the argument, the type and ``hint``."""
    if not isinstance(value, cls):
        extra = f" ({hint})" if hint else ""
        raise ArgumentTypeError(f"{name} must be a {cls.__name__}{extra}, got {_kind(value)} {value!r:.60}")
    return value


def path(value: Any, name: str) -> Path:
    """``value`` as a Path when it is a str or os.PathLike (not bytes, not None, not empty)."""
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes):
        p = Path(value)
        if str(value) == "":
            raise ArgumentError(f"{name} must name a file or folder, got an empty string")
        return p
    raise ArgumentTypeError(f"{name} must be a path (str or pathlib.Path), got {_kind(value)} {value!r:.60}")


def callable_or_none(value: Any, name: str) -> Optional[Callable[..., Any]]:
    """``value`` when it is None or callable."""
    if value is not None and not callable(value):
        raise ArgumentTypeError(f"{name} must be a function or None, got {_kind(value)} {value!r:.60}")
    return value


def optional(value: Any, check: Callable[..., T], *args: Any, **kwargs: Any) -> Optional[T]:
    """None, or ``check(value, *args, **kwargs)``."""
    return None if value is None else check(value, *args, **kwargs)


def seed(value: Any, name: str = "seed") -> int:
    """A random seed: an integer 0 .. 2**63-1 (what numpy's and torch's generators both accept)."""
    return integer(value, name, 0, SEED_MAX)


def job(value: Any, name: str = "job"):
    """A ``progress.Job`` (or None: no progress, never cancelled)."""
    from .progress import Job, ensure_job

    if value is not None:
        instance(value, name, Job, "gid_engine.progress.Job(); cancel with job.cancel()")
    return ensure_job(value)
