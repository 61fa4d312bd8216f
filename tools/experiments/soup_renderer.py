"""Experiment (2026-12-07): a weight average ("model soup") of neural renderers fine-tuned along one chain.
Fine-tunes that gain on simulated holes lose on the real clip's, and each run lands somewhere on that
trade; averaging the weights of a run that keeps the real clip with one that gains on simulated holes asks
whether the mean keeps both, at no training cost.
Usage: python tools/experiments/soup_renderer.py OUT_DIR RENDERER_DIR[=WEIGHT] RENDERER_DIR[=WEIGHT] ...
(weights default to equal shares and are normalised to sum to 1)"""
import sys
from pathlib import Path

import torch

from gid.gid_engine.model_folder import RENDERER, read_index
from gid.gid_tools.renderer.checkpoint import load_renderer, save_renderer
from gid.gid_tools.renderer.onnx_export import export_renderer_onnx
from gid.gid_tools.training import average_state_dicts

out = Path(sys.argv[1])
members = [(Path(a.split("=")[0]), float(a.split("=")[1]) if "=" in a else 1.0) for a in sys.argv[2:]]
if len(members) < 2 or any(w <= 0 for _, w in members):
    sys.exit("soup_renderer: give an output folder and two or more renderer folders with positive weights")
total = sum(w for _, w in members)
nets = [load_renderer(m) for m, _ in members]
states = [n.state_dict() for n in nets]
shares = [w / total for _, w in members]
soup = nets[0]
with torch.no_grad():
    soup.load_state_dict(average_state_dicts(states, shares))
summary = {"stage": "soup", "members": [str(m) for m, _ in members], "shares": shares,
           "member_training": [read_index(m, RENDERER).get("training", {}) for m, _ in members]}
save_renderer(soup.eval(), out, {"training": summary})
export_renderer_onnx(out, model=soup)
print(f"wrote {out}: the weighted mean of {len(members)} renderers, shares {[round(a, 3) for a in shares]}")
