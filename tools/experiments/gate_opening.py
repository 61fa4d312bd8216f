"""Experiment (2026-12-08): how much of the shipped correction gate's opening on covered pixels the flow-range
gate keeps, per real clip (about 40 evenly spaced held-out triples each; the range gate counted only where the
shipped gate is open too). Companion of ``gate_variants.py``.

Usage: python tools/experiments/gate_opening.py CLIP [...]
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

from gid.gid_tools.renderer.data import real_triples
from gid.gid_tools.renderer.neural_renderer import GATE_RADIUS, correction_gate
from gid.gid_tools.splat_torch import FULL_COVERAGE, softmax_splat

torch.set_num_threads(1)
WINDOW = 2 * GATE_RADIUS + 1


def component_range(c: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(c, WINDOW, 1, GATE_RADIUS) + F.max_pool2d(-c, WINDOW, 1, GATE_RADIUS)


for clip in sys.argv[1:]:
    triples = real_triples(clip, split="eval")
    picked = triples[::max(1, len(triples) // 40)]
    shipped, kept = [], []
    for tr in picked:
        flow, z = torch.from_numpy(tr.flow[None]), torch.from_numpy(tr.z[None])
        _, _, coverage = softmax_splat(torch.zeros_like(z), flow, z)
        confidence = torch.clamp(coverage / FULL_COVERAGE, 0.0, 1.0)
        gate = correction_gate(flow, confidence) - (1.0 - confidence)  # the covered pixels' share of the gate
        spread = torch.sqrt(component_range(flow[:, 0:1]).square() + component_range(flow[:, 1:2]).square())
        covered = confidence >= 1.0
        shipped.append(float(gate[covered].mean()))
        kept.append(float(torch.minimum(torch.clamp(spread / 0.5, 0.0, 1.0), gate)[covered].mean()))
    print(f"{clip}: {len(picked)} triples, shipped gate on covered pixels {np.mean(shipped):.3f}, "
          f"range_0.5 {np.mean(kept):.3f} ({np.mean(kept) / np.mean(shipped):.0%} kept)")
