"""Experiment (2026-12-07): what renderers put into the holes of held-out simulated scenes, as a picture.
For held-out triples from the widest disocclusions to narrow ones (evenly spaced in that order, holes >= 2 %):
frame 0, the true frame t (Cycles), the plain splat + push-pull frame and each renderer's frame, the
disoccluded pixels (the mask ``gid eval render`` scores) outlined, each output tile labelled with its PSNR there.
Usage: python tools/experiments/render_holes_sheet.py OUT.jpg SIM_DIR [--rows N] LABEL=WEIGHTS [LABEL=WEIGHTS ...]"""
import argparse
from pathlib import Path

import numpy as np
import torch

from gid.exporters.opencv import cv2
from gid.gid_tools.renderer.checkpoint import load_renderer
from gid.gid_tools.renderer.data import sim_triples
from gid.gid_tools.renderer.evaluate import disocclusion_mask, psnr

parser = argparse.ArgumentParser()
parser.add_argument("out", type=Path)
parser.add_argument("sim", type=Path)
parser.add_argument("renderers", nargs="+", metavar="LABEL=WEIGHTS")
parser.add_argument("--rows", type=int, default=6)
args = parser.parse_args()
torch.set_num_threads(1)
names, folders = zip(*(a.split("=", 1) for a in args.renderers))
models = [load_renderer(Path(f)) for f in folders]
triples = sim_triples(args.sim)
masks = [disocclusion_mask(t) for t in triples]
fractions = np.array([float(m.mean()) for m in masks])
ranked = [i for i in np.argsort(-fractions, kind="stable") if fractions[i] >= 0.02]
order = [ranked[int(round(q))] for q in np.linspace(0, len(ranked) - 1, args.rows)]  # widest to narrowest


def tile(chw: np.ndarray, mask: np.ndarray | None = None, text: str = "") -> np.ndarray:
    img = np.ascontiguousarray((np.clip(chw, 0, 1).transpose(1, 2, 0) * 255).astype(np.uint8))
    if mask is not None:
        contours, _ = cv2.findContours(mask[0].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(img, contours, -1, (255, 0, 255), 1)
    if text:
        cv2.putText(img, text, (4, img.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return img


rows = []
for i in order:
    tr, mask = triples[i], masks[i]
    x = [torch.from_numpy(v[None]) for v in (tr.image, tr.flow, tr.z)]
    with torch.no_grad():
        frames = [models[0].plain(*x)[0].numpy()] + [m(*x)[0].numpy() for m in models]
    tiles = [tile(tr.image, text=f"frame 0 (holes {100 * mask.mean():.0f} %)"), tile(tr.target, mask, "frame t")]
    for label, frame in zip(("splat", *names), frames):
        tiles.append(tile(frame, mask, f"{label} {psnr(np.clip(frame, 0, 1), tr.target, mask):.2f} dB"))
    rows.append(np.concatenate(tiles, axis=1))
sheet = np.concatenate(rows, axis=0)
cv2.imwrite(str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
print(f"wrote {args.out}: {len(rows)} rows")
