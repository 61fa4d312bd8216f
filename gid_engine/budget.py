"""What one request may cost, estimated before any work, and refused with the option to change.

Every command (and the add-on's operators, through the same engine calls) estimates the frames,
pixels and bytes its request implies from sizes it knows before reading or computing anything
(a file's size, an image's header, a motion file's declared shape, a clip's working size) and
refuses what exceeds the budget with one line naming the option that lowers the cost:

* frames: at most ``MAX_FRAMES`` output frames per render, however they arise (``--frames``,
  or one loop of the motion at ``--fps`` x ``--slowmo``);
* memory: the estimated peak of the process, at most the memory budget, 2 GiB by default (the goal
  for a 4K loop, README "High resolution"); ``--memory-budget`` or ``GID_MEMORY_BUDGET`` (GiB)
  raises it for a machine that has more.

The per-pixel costs are measured peaks of the real commands (``/usr/bin/time -v``, README
"Budgets"), so the estimate tracks what the process will really hold, not a bound far above it.
"""

from __future__ import annotations

import math
import os
from typing import Optional

from .errors import InputError

MAX_FRAMES = 100_000
DEFAULT_MEMORY_BUDGET_GIB = 2.0
GIB = 2**30

# Measured peaks (README "Budgets"): process base, and bytes per pixel of what each job holds.
PROCESS_BASE = 350 * 2**20  # python, numpy, OpenCV, onnxruntime and the renderer's session
RENDER_BYTES_PER_PIXEL = 92  # gid render: frames, warped fields and the still at full size
DECODE_BYTES_PER_PIXEL = 32  # an image being decoded: its 8/16-bit pixels and their float32 copy
EXTRACT_BYTES_PER_PIXEL_FRAME = 66  # gid extract: gray frames, chained flow, trajectories, FFT
MOTION_BYTES_PER_VALUE = 11  # a float32 coefficient with the copies loading, resizing and anchoring make

CLI_RAISE_HINT = "raise the budget (--memory-budget, GID_MEMORY_BUDGET)"
_override: Optional[float] = None
_raise_hint = CLI_RAISE_HINT


class BudgetError(InputError):
    """A request would cost more than the budget allows; the message names what to change."""


def memory_budget() -> int:
    """The memory budget in bytes: ``set_memory_budget``, else ``GID_MEMORY_BUDGET`` (GiB), else 2 GiB."""
    gib = _override
    if gib is None:
        raw = os.environ.get("GID_MEMORY_BUDGET", "")
        try:
            gib = float(raw) if raw.strip() else DEFAULT_MEMORY_BUDGET_GIB
        except ValueError:
            raise InputError(f"GID_MEMORY_BUDGET must be a number of GiB, got {raw!r}") from None
    return int(check_budget_gib(gib) * GIB)


def check_budget_gib(gib: float) -> float:
    """``gib`` as a float when it is a budget gid accepts (0.25 .. 4096 GiB), else one-line InputError."""
    if not (isinstance(gib, (int, float)) and math.isfinite(gib) and 0.25 <= gib <= 4096):
        raise InputError(f"memory budget must be 0.25 .. 4096 GiB, got {gib!r}")
    return float(gib)


def set_memory_budget(gib: Optional[float], raise_hint: str = CLI_RAISE_HINT) -> None:
    """Set the budget for this process (the CLI's ``--memory-budget``, the add-on's Memory Budget);
    None returns to the default. ``raise_hint`` ends refusals: where the caller's user raises it."""
    global _override, _raise_hint
    _override = None if gib is None else check_budget_gib(gib)
    _raise_hint = raise_hint


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / 2**20:.0f} MiB"


def check_memory(estimate: float, what: str, lower: str) -> None:
    """Refuse ``what`` when its estimated peak ``estimate`` (bytes) is over the memory budget.

    ``lower`` says how to make the request smaller ("lower --max-side"); the message adds how to
    raise the budget.
    """
    budget = memory_budget()
    if estimate > budget:
        raise BudgetError(f"{what} needs about {_gib(estimate)} of memory, over the {_gib(budget)} budget: "
                          f"{lower}, or {_raise_hint}")


def check_frames(count: float, what: str, lower: str) -> None:
    """Refuse a render of more than ``MAX_FRAMES`` frames (``count`` may be huge or not finite)."""
    if not (math.isfinite(count) and count <= MAX_FRAMES):
        shown = f"{count:,.0f}" if math.isfinite(count) and count < 1e15 else f"{count:.3g}"
        raise BudgetError(f"{what} makes {shown} frames, over the limit of {MAX_FRAMES:,}: {lower}")


def render_bytes(width: int, height: int, k: int, motion: tuple[int, int], work: tuple[int, int]) -> float:
    """Estimated peak of rendering (or displacing) ``width`` x ``height`` frames with a ``k``-frequency
    motion of size ``motion``, prepared at ``work`` (the output size, or the proxy the motion is
    splatted at)."""
    values = 4.0 * k * (float(motion[0]) * motion[1] + float(work[0]) * work[1])
    return PROCESS_BASE + RENDER_BYTES_PER_PIXEL * float(width) * float(height) + MOTION_BYTES_PER_VALUE * values


def decode_bytes(width: int, height: int, file_bytes: int = 0) -> float:
    """Estimated peak of reading an image file of ``file_bytes`` and decoding it to float32."""
    return PROCESS_BASE + float(file_bytes) + DECODE_BYTES_PER_PIXEL * float(width) * float(height)


def extract_bytes(width: int, height: int, frames: int) -> float:
    """Estimated peak of extracting motion at ``width`` x ``height`` from ``frames`` frames."""
    return PROCESS_BASE + EXTRACT_BYTES_PER_PIXEL_FRAME * float(width) * float(height) * float(frames)


def motion_bytes(k: int, width: int, height: int) -> float:
    """Estimated peak of holding a spectral volume of ``k`` frequencies at ``width`` x ``height``."""
    return PROCESS_BASE + MOTION_BYTES_PER_VALUE * float(k) * 4 * float(width) * float(height)
