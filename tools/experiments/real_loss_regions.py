"""Experiment (2026-12-07): where a renderer's whole-frame difference from the plain splat comes from.

Each frame is cut into three regions: the disoccluded pixels ``gid eval render`` scores (splat coverage
< 0.5, dilated by 2 px), the other pixels the correction gate opens (near motion above the gate's
threshold), and the rest (where the neural frame is the plain one by construction). For every region: its
share of the pixels and its part of the whole-frame squared error, neural minus splat (negative: the
neural renderer is closer to the true frame there). Also the whole-frame PSNR gain a renderer would have
if its correction were kept on the disoccluded pixels only (the splat elsewhere).

``--bright Q`` (2026-12-08) adds a split by brightness across the three regions: "bright" pixels are those
whose luma is above the frame's ``Q`` quantile in the still or in the target frame, dilated by 2 px (glints
and white water on a stream), and the rest; each gets its share and its part of the excess error.

Usage: python tools/experiments/real_loss_regions.py OUT.json [--bright Q] LABEL=WEIGHTS [...] -- CLIP|SIM_DIR [...]
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

from gid.gid_engine.media.imaging import to_gray_u8
from gid.gid_tools.renderer.checkpoint import load_renderer
from gid.gid_tools.renderer.data import real_triples, sim_triples
from gid.gid_tools.renderer.evaluate import disocclusion_mask, psnr
from gid.gid_tools.renderer.neural_renderer import correction_gate
from gid.gid_tools.splat_torch import FULL_COVERAGE, softmax_splat
from gid.exporters.opencv import cv2

torch.set_num_threads(2)
args = sys.argv[2:]
bright_q = None
if args[0] == "--bright":
    bright_q, args = float(args[1]), args[2:]
split = args.index("--")
models = {label: load_renderer(Path(w)) for label, w in (a.split("=", 1) for a in args[:split])}
sources = args[split + 1:]


def triples(source: str) -> list:
    if Path(source).is_dir():
        return sim_triples(source)
    return real_triples(source, split="eval")


results: dict = {}
for source in sources:
    rows: dict[str, dict[str, list[float]]] = {label: {} for label in models}
    for tr in triples(source):
        x = [torch.from_numpy(v[None]) for v in (tr.image, tr.flow, tr.z)]
        holes = disocclusion_mask(tr)[0] > 0.5
        with torch.no_grad():
            _, _, coverage = softmax_splat(x[0], x[1], x[2])
            gate = correction_gate(x[1], torch.clamp(coverage / FULL_COVERAGE, 0.0, 1.0))[0, 0].numpy()
            splat = next(iter(models.values())).plain(*x)[0].clamp(0, 1).numpy()
        opened = (gate > 0) & ~holes
        rest = ~holes & ~opened
        regions = [("holes", holes), ("gate", opened), ("rest", rest)]
        if bright_q is not None:
            lit = np.zeros(holes.shape, bool)
            for frame in (tr.image, tr.target):
                luma = to_gray_u8(np.ascontiguousarray(frame.transpose(1, 2, 0)))
                lit |= luma > np.quantile(luma, bright_q)
            lit = cv2.dilate(lit.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            regions += [("bright", lit), ("dim", ~lit)]
        se_splat = ((splat - tr.target) ** 2).sum(0)
        for label, model in models.items():
            with torch.no_grad():
                neural = model(*x)[0].clamp(0, 1).numpy()
            se = ((neural - tr.target) ** 2).sum(0)
            n_px = se.size
            r = rows[label]
            for name, region in regions:
                r.setdefault(f"share_{name}", []).append(float(region.mean()))
                # the region's part of the whole-frame mean squared error, neural minus splat
                r.setdefault(f"dmse_{name}", []).append(float((se - se_splat)[region].sum() / (3 * n_px)))
            holes_only = np.where(holes[None], neural, splat)
            r.setdefault("gain_whole", []).append(psnr(neural, tr.target) - psnr(splat, tr.target))
            r.setdefault("gain_whole_holes_only", []).append(psnr(holes_only, tr.target) - psnr(splat, tr.target))
    name = Path(source).name
    results[name] = {label: {k: float(np.mean(v)) for k, v in r.items()} | {"n": len(r["gain_whole"])}
                     for label, r in rows.items()}
    print(name, json.dumps(results[name], indent=1), flush=True)
Path(sys.argv[1]).write_text(json.dumps(results, indent=1))
