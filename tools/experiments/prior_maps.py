"""Experiment (2026-12-07): where two priors place motion, as pictures. For the held-out real clip's pairs
and the first held-out simulated views: the still, the reference motion-magnitude map, and each prior's
map (one draw, seed 0, 25 steps, the default Eulerian start), each map scaled to its own 99.5th
percentile so placement, not amplitude, is compared.
Usage: python tools/experiments/prior_maps.py OUT.jpg SIM_DIR|- LABEL=PRIOR_DIR [LABEL=PRIOR_DIR ...] [--real CLIP]
(``-``: no simulated views; ``--real``: another held-out clip than ``tree.avi``)."""
import sys
from pathlib import Path

import numpy as np

from gid.exporters.opencv import cv2
from gid.gid_engine.prediction.predict import init_strength_for
from gid.gid_engine.repo_data import TREE_CLIP
from gid.gid_tools.motion_prior.evaluate import eval_real_pairs
from gid.gid_tools.motion_prior.weights import load_weights
from gid.gid_tools.simdata.contact import magnitude_image
from gid.gid_tools.simdata.datasets import sim_pairs

args = sys.argv[1:]
clip = TREE_CLIP
if "--real" in args:
    at = args.index("--real")
    clip = Path(args[at + 1])
    del args[at:at + 2]
out, sim = Path(args[0]), args[1]
names, priors = zip(*(a.split("=", 1) for a in args[2:]))
pipes = [load_weights(Path(p)) for p in priors]
cfg = pipes[0].config
pairs = eval_real_pairs(clip, cfg, 4)
if sim != "-":
    pairs += sim_pairs(Path(sim), "eval", limit=4)


def heat(vol) -> np.ndarray:
    mag = vol.mean_magnitude(samples=30)
    return magnitude_image(mag, float(np.percentile(mag, 99.5)))


rows = []
for image, ref in pairs:
    tiles = [(image[:, :, :3] * 255).astype(np.uint8), heat(ref.anchored())]
    for pipe in pipes:
        tiles.append(heat(pipe(image, steps=25, seed=0, guidance_scale=None, init_strength=init_strength_for(pipe, None))))
    rows.append(np.concatenate(tiles, axis=1))
sheet = np.concatenate(rows, axis=0)
labels = ["still", "reference", *names]
for i, text in enumerate(labels):
    cv2.putText(sheet, text, (4 + i * cfg.width, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
print(f"wrote {out}: {len(pairs)} rows")
