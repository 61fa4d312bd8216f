"""Experiment (2026-12-08): how much of the shipped correction gate's opening on covered pixels the flow-range
gate keeps, per real clip (about 40 evenly spaced held-out triples each; the range gate counted only where the
shipped gate is open too). Companion of ``gate_variants.py``.

Usage: python tools/experiments/gate_opening.py CLIP [...]
"""
import sys

import numpy as np
import torch
from gate_variants import flow_range  # this script's folder is first on sys.path

from gid.gid_tools.renderer.data import real_triples
from gid.gid_tools.renderer.neural_renderer import correction_gate
from gid.gid_tools.splat_torch import FULL_COVERAGE, softmax_splat

torch.set_num_threads(1)

for clip in sys.argv[1:]:
    triples = real_triples(clip, split="eval")
    picked = triples[::max(1, len(triples) // 40)]
    shipped, kept = [], []
    for tr in picked:
        flow, z = torch.from_numpy(tr.flow[None]), torch.from_numpy(tr.z[None])
        _, _, coverage = softmax_splat(torch.zeros_like(z), flow, z)
        confidence = torch.clamp(coverage / FULL_COVERAGE, 0.0, 1.0)
        gate = correction_gate(flow, confidence) - (1.0 - confidence)  # the covered pixels' share of the gate
        spread = flow_range(flow)
        covered = confidence >= 1.0
        shipped.append(float(gate[covered].mean()))
        kept.append(float(torch.minimum(torch.clamp(spread / 0.5, 0.0, 1.0), gate)[covered].mean()))
    print(f"{clip}: {len(picked)} triples, shipped gate on covered pixels {np.mean(shipped):.3f}, "
          f"range_0.5 {np.mean(kept):.3f} ({np.mean(kept) / np.mean(shipped):.0%} kept)")
