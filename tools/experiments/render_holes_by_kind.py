"""Experiment (2026-12-07): PSNR on the disoccluded pixels of held-out simulated triples per scene kind
(tree, grass, water, flag, candle), for the plain splat and each renderer, with each kind's mean hole share.
Usage: python tools/experiments/render_holes_by_kind.py SIM_DIR LABEL=WEIGHTS [LABEL=WEIGHTS ...]"""
import collections
import json
import sys
from pathlib import Path

import numpy as np
import torch

from gid.gid_tools.renderer.checkpoint import load_renderer
from gid.gid_tools.renderer.data import stack_triple
from gid.gid_tools.renderer.evaluate import disocclusion_mask, psnr
from gid.gid_tools.simdata.datasets import sim_triple_kinds, sim_triple_stacks

torch.set_num_threads(1)
folder = Path(sys.argv[1])
models = {label: load_renderer(Path(weights)) for label, weights in (a.split("=", 1) for a in sys.argv[2:])}
scores: dict[str, dict[str, list[float]]] = collections.defaultdict(lambda: collections.defaultdict(list))
for kind, stack in zip(sim_triple_kinds(folder, "eval"), sim_triple_stacks(folder, "eval")):
    tr = stack_triple(stack)
    mask = disocclusion_mask(tr)
    if mask.sum() < 1:
        continue
    scores[kind]["holes"].append(float(mask.mean()))
    x = [torch.from_numpy(v[None]) for v in (tr.image, tr.flow, tr.z)]
    with torch.no_grad():
        frames = {"splat": next(iter(models.values())).plain(*x)} | {k: m(*x) for k, m in models.items()}
    for label, frame in frames.items():
        scores[kind][label].append(psnr(frame[0].clamp(0, 1).numpy(), tr.target, mask))
table = {kind: {"n": len(s["holes"]), **{k: float(np.mean(v)) for k, v in s.items()}} for kind, s in sorted(scores.items())}
print(json.dumps(table, indent=1))
