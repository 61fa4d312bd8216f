"""The interactive preview's caches (plain values and numpy only: undo and file loads cannot
leave them pointing at freed Blender data).

What is costly is kept by what decides it: the modal basis by (motion file + mtime + size, mask
content, modes), the simulator by (basis, physics, fps), the frame renderer by (basis, still,
size). Each store keeps the ``MAX_ENTRIES`` most recently used, so switching back and forth
between two settings costs nothing and memory stays bounded. A mask being painted is keyed by a
checksum of its pixels, so painting invalidates exactly what depends on it.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

MAX_ENTRIES = 3


def remember(store: OrderedDict, key: tuple, value: Any, limit: int = MAX_ENTRIES) -> Any:
    """Put ``value`` in ``store`` as its most recent entry, dropping the oldest past ``limit``."""
    store[key] = value
    store.move_to_end(key)
    while len(store) > limit:
        store.popitem(last=False)
    return value


def checksum(array: np.ndarray) -> int:
    """A cheap content key of an array (CRC-32 of its bytes)."""
    return zlib.crc32(np.ascontiguousarray(array).view(np.uint8))


def basis_key(path: str, mtime_ns: int, size: int, mask_key: tuple, frequencies: str, num_peaks: int) -> tuple:
    """What decides a modal basis: the motion file's identity, the mask's content, which modes."""
    return (str(path), mtime_ns, size, mask_key, frequencies, num_peaks if frequencies == "PEAKS" else 0)


def simulator_key(basis: tuple, damping: float, stiffness_scale: float, mass_scale: float, fps: float) -> tuple:
    """What decides a simulator: its basis and the physics (rounded: UI floats jitter in the last bits)."""
    return (basis, round(damping, 9), round(stiffness_scale, 9), round(mass_scale, 9), round(fps, 9))


class PreviewCaches:
    """All the preview keeps between frames; ``clear()`` forgets everything (a new file)."""

    def __init__(self) -> None:
        self.bases: OrderedDict[tuple, Any] = OrderedDict()
        self.simulators: OrderedDict[tuple, Any] = OrderedDict()
        self.renderers: OrderedDict[tuple, Any] = OrderedDict()
        self.masks: dict[str, tuple[tuple, int, np.ndarray]] = {}
        self.status: dict[str, str] = {}  # scene name -> what its preview last did
        self.last: dict[str, tuple] = {}  # scene name -> stamp of the frame its preview shows

    def clear(self) -> None:
        self.__init__()

    def mask(self, name: str, identity: tuple, dirty: bool, read: Callable[[], np.ndarray]) -> tuple[tuple, np.ndarray]:
        """(key, array) of the mask image ``name``: ``identity`` says which file/size it is; a
        clean mask with the same identity is not read again, a ``dirty`` one (being painted) is
        read and keyed by its content."""
        cached = self.masks.get(name)
        if cached is not None and cached[0] == identity and not dirty:
            return identity + (cached[1],), cached[2]
        array = read()
        crc = checksum(array)
        self.masks[name] = (identity, crc, array)
        return identity + (crc,), array
