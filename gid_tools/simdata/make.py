"""``gid make-data``: simulated scenes rendered by Blender into training shards, in parallel
processes, deterministic by seed and resumable.

Scene ``i`` of split ``train`` has seed ``i``; of split ``eval`` (held out, never trained on) seed
``EVAL_SEED_OFFSET + i``, and its textures come from the held-out stills. Each worker process
holds one Blender (``bpy``) and renders with one Cycles thread, so ``workers`` processes use
``workers`` cores. For each camera of a scene: the first frame's ray casts fix every pixel's
surface point, the exact trajectories give the spectral volume (``truth.py``), the motion is scaled
so its 99th-percentile displacement is a random 0.75-6 px (at 256 px wide), the still is
rendered, and for a share of the views a later frame too (a renderer triple with exact motion and
real disocclusions). A camera that sees too little motion is dropped.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...gid_engine.errors import FormatError, InputError
from ...gid_engine.motion.spectral_volume import DEFAULT_K
from ...gid_engine.repo_data import STILL_SETS
from ..motion_prior.data.synthetic import split_names
from .scenes import Camera, Scene, build_scene
from .shards import View, read_shard, shard_name, write_shard
from .truth import amplitude_px, spectral_volume, trajectories

EVAL_SEED_OFFSET = 10_000_000
SPLITS = ("train", "eval")


@dataclass(frozen=True)
class MakeSettings:
    """What every shard of a run is made with (recorded in ``manifest.json``; a resumed run must match)."""

    split: str = "train"
    width: int = 256
    height: int = 160
    k: int = DEFAULT_K
    cameras: int = 4
    samples: int = 16
    triple_fraction: float = 0.35
    min_moving: float = 0.004  # share of the frame that must move for a view to be kept (a candle flame: ~0.5 %)
    amplitude_px: tuple[float, float] = (0.75, 6.0)  # at 256 px wide
    kind: str | None = None  # every scene of this kind (``scenes.ALL_KINDS``) instead of a drawn mix
    closeups: float = 0.0  # share of tree cameras that look into the crown (``scenes.build_scene``)
    leaf_density: float = 1.0  # a tree's leaves per twig relative to the default

    def build(self, seed: int) -> Scene:
        """Scene ``seed`` as these settings make it."""
        return build_scene(seed, self.kind, stills=self.stills(), cameras=self.cameras, closeups=self.closeups,
                           leaf_density=self.leaf_density)

    def seed(self, index: int) -> int:
        return index + (EVAL_SEED_OFFSET if self.split == "eval" else 0)

    def stills(self) -> tuple[str, ...]:
        train, held_out = STILL_SETS["v2"]
        return tuple(split_names(held_out if self.split == "eval" else train))


@dataclass
class PreparedView:
    """One camera's exact motion at the gain its draws ask for (``scene`` is the scaled scene)."""

    scene: Scene
    gain: float
    texture: np.ndarray
    moving: np.ndarray
    wants_triple: bool
    triple_frame: int


def prepare_view(stage: Any, scene: Scene, camera: Camera, rng: np.random.Generator, settings: MakeSettings
                 ) -> PreparedView | None:
    """Aim ``stage``'s camera, cast the first frame's rays and compute the exact trajectories, scaled
    to a random target amplitude; None when the view sees too little motion. Draws the same three
    numbers from ``rng`` whatever the outcome, so every camera's draws depend only on the seed."""
    lo, hi = (a * settings.width / 256 for a in settings.amplitude_px)
    target = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    wants_triple = bool(rng.random() < settings.triple_fraction)
    t = int(rng.integers(1, scene.num_frames))
    proj = stage.use_camera(camera)
    hits = stage.hits(proj)
    texture, moving = trajectories(scene, hits, proj)
    amp = amplitude_px(texture, moving)
    if moving.mean() < settings.min_moving or amp <= 0:
        return None
    gain = target / amp
    scaled = scene.scaled(gain)
    texture, moving = trajectories(scaled, hits, proj)
    return PreparedView(scaled, gain, texture, moving, wants_triple, t)


_STAGE: Any = None


def _stage(settings: MakeSettings, threads: int) -> Any:
    global _STAGE
    if _STAGE is None:
        from .blender import Stage

        _STAGE = Stage(settings.width, settings.height, settings.samples, threads)
    return _STAGE


def make_scene(index: int, settings: MakeSettings, out: Path, threads: int = 1) -> dict[str, Any]:
    """Make (or find already made) scene ``index``'s shard; returns what it holds and how long it took."""
    seed = settings.seed(index)
    path = out / shard_name(settings.split, seed)
    if path.exists():
        try:
            shard = read_shard(path)
            return {"index": index, "views": len(shard), "triples": len(list(shard.triples())), "seconds": 0.0,
                    "renders": 0, "resumed": True}
        except (InputError, FormatError):  # a damaged shard is made again
            path.unlink()
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    stage = _stage(settings, threads)
    scene = settings.build(seed)
    stage.build(scene)
    rng = np.random.default_rng([seed, 7])
    views, renders = [], 0
    for ci, camera in enumerate(scene.cameras):
        view = prepare_view(stage, scene, camera, rng, settings)
        if view is None:
            continue
        info = {"camera": ci, "gain": view.gain, "amplitude_px": amplitude_px(view.texture, view.moving),
                "moving": float(view.moving.mean()), "lens_mm": camera.lens_mm}
        out_view = View(stage.render(None), spectral_volume(view.scene, view.texture, settings.k, camera=ci),
                        info=info)
        renders += 1
        if view.wants_triple:
            t = view.triple_frame
            out_view.target, out_view.flow = stage.render(t, view.gain), view.texture[t].copy()
            out_view.target_frame = t
            renders += 1
        views.append(out_view)
    meta = {"kind": scene.kind, "seed": seed, "index": index, "split": settings.split, "scene": scene.info,
            "settings": asdict(settings)}
    write_shard(path, views, meta, size=(settings.width, settings.height), k=settings.k, fps=scene.fps,
                num_frames=scene.num_frames)
    return {"index": index, "views": len(views), "triples": sum(v.target is not None for v in views),
            "seconds": time.perf_counter() - start, "renders": renders, "resumed": False, "kind": scene.kind}


def _make_one(job: tuple[int, MakeSettings, Path]) -> dict[str, Any]:
    return make_scene(*job, threads=1)


def _init_worker() -> None:
    from ..motion_prior.data.shards import exit_with_parent

    exit_with_parent()


def make_data(out: Path, scenes: int, settings: MakeSettings, *, start: int = 0, workers: int = 2,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Make scenes ``start .. start + scenes - 1`` of ``settings.split`` into ``out``; returns the
    run's summary (also written to ``out/manifest.json``), including the measured rate."""
    if settings.split not in SPLITS:
        raise InputError(f"unknown split {settings.split!r}; choose train or eval")
    if scenes < 1 or workers < 1 or start < 0:
        raise InputError(f"bad request: scenes={scenes}, workers={workers}, start={start}")
    if settings.width % 4 or settings.height % 4:
        raise InputError(f"sizes must be multiples of 4, got {settings.width}x{settings.height}")
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.json"
    if manifest.exists():
        old = json.loads(manifest.read_text()).get("settings", {}).get(settings.split)
        if old is not None:  # a setting added since those shards were made had its default then
            old = json.loads(json.dumps(asdict(MakeSettings(split=settings.split)))) | old
        if old is not None and old != json.loads(json.dumps(asdict(settings))):
            raise InputError(f"{out} holds {settings.split} shards made with other settings: {old}")
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    indices = list(range(start, start + scenes))

    def note(r: dict[str, Any]) -> None:
        results.append(r)
        made = [x for x in results if not x["resumed"]]
        views = sum(x["views"] for x in results)
        if len(results) % max(1, min(20, scenes // 10 or 1)) == 0 or len(results) == scenes:
            wall = time.perf_counter() - t0
            rate = sum(x["views"] for x in made) / wall if made else 0.0
            log(f"make-data: {len(results)}/{scenes} scenes, {views} views, "
                f"{sum(x['triples'] for x in results)} triples; {rate * 3600:.0f} views/hour")

    if workers == 1:
        for i in indices:
            note(make_scene(i, settings, out, threads=1))
    else:
        from ..motion_prior.data.shards import single_threaded_children

        # a Pool, not a ProcessPoolExecutor: leaving its block terminates the workers, whose
        # Blender would otherwise keep them alive at exit
        with single_threaded_children(), get_context("spawn").Pool(workers, initializer=_init_worker,
                                                                    maxtasksperchild=200) as pool:
            for r in pool.imap_unordered(_make_one, [(i, settings, out) for i in indices]):
                note(r)
    wall = time.perf_counter() - t0
    made = [r for r in results if not r["resumed"]]
    summary = {
        "split": settings.split, "scenes": scenes, "start": start, "workers": workers,
        "views": sum(r["views"] for r in results), "triples": sum(r["triples"] for r in results),
        "made_scenes": len(made), "wall_s": wall, "renders": sum(r["renders"] for r in made),
        "views_per_hour": sum(r["views"] for r in made) / wall * 3600 if made else None,
        "triples_per_hour": sum(r["triples"] for r in made) / wall * 3600 if made else None,
        "kinds": {k: sum(1 for r in made if r.get("kind") == k)
                  for k in sorted({r.get("kind") for r in made} - {None})},
        "cpu": os.cpu_count(),
    }
    doc = json.loads(manifest.read_text()) if manifest.exists() else {"format": "gid.simdata.manifest", "version": 1}
    doc.setdefault("settings", {})[settings.split] = asdict(settings)
    doc.setdefault("runs", []).append(summary)
    tmp = manifest.with_name(".manifest.json.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(manifest)
    return summary
