"""Training data of the motion prior: image–motion pairs.

* ``synthetic``: exact pairs built in the frequency domain from licensed stills (numpy + OpenCV).
* ``real``: pairs from reference clips through ``extract_motion`` (the paper's recipe).
* ``dataset``: the torch ``MotionPairDataset`` mixing both, and the normalizer fit (needs torch;
  imported lazily so the numpy-only parts work without it).
* ``simulated``: which training pairs are ``gid make-data`` views, shared by every trainer.
* ``shards``: pairs written to ``.npz`` shards by a process pool, for file-based training.
"""

from __future__ import annotations

from typing import Any

from .real import real_pairs
from .shards import generate_shards, read_shard
from .synthetic import (
    MAX_DISPLACEMENT_PX,
    STILLS_DIR,
    load_stills,
    motion_texture_check,
    pair_rng,
    random_view,
    split_names,
    synthetic_pair,
    synthetic_volume,
)

_TORCH_NAMES = ("MotionPairDataset", "fit_frequency_normalizer", "pair_to_tensors")

__all__ = [
    "MAX_DISPLACEMENT_PX", "STILLS_DIR", "load_stills", "motion_texture_check", "pair_rng", "random_view",
    "split_names", "synthetic_pair", "synthetic_volume", "real_pairs", "generate_shards", "read_shard",
    *_TORCH_NAMES,
]


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        from . import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
