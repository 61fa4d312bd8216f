"""Simulated views of ``gid make-data`` as training pairs: which pairs of a run are simulated, which
view each one is, and the key a run's cached data must match. Shared by the prior's pair cache and
the static-flow network's trainer so both draw the same views for the same seed."""

from __future__ import annotations

from ....gid_engine.errors import InputError
from .synthetic import pair_rng


def sim_data_key(sim: tuple[str, ...], sim_fraction: float) -> list:
    """What the pair cache must match for simulated data: the shards (by name and size) and the share."""
    if not 0.0 <= sim_fraction <= 1.0:
        raise InputError(f"--sim-weight must be in [0, 1], got {sim_fraction}")
    if not sim:
        return []
    from ...simdata.datasets import SimViews

    return ["sim", SimViews(sim, "train").key(), float(sim_fraction)]


def is_sim_pair(seed: int, split: str, i: int, sim_fraction: float) -> bool:
    """Whether training pair ``i`` of a run with simulated data is drawn from the simulated views."""
    return pair_rng(seed, split, i, stream="sim").random() < sim_fraction


def sim_pick(views, seed: int, split: str, i: int) -> tuple[int, bool]:
    """Which simulated view training pair ``i`` is and whether it is mirrored: a pure function of the seed."""
    rng = pair_rng(seed, split, i, stream="sim-pick")
    return int(rng.integers(len(views))), bool(rng.random() < 0.5)
