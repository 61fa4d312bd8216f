"""Experiment (2026-12-07): a weight average ("model soup") of static-flow networks fine-tuned from the same
start on different data seeds. Each training alone places motion better on the real clip but they disagree
on its amplitude; the average asks whether that disagreement is noise between trainings that averaging
removes, at no training cost.
Usage: python tools/experiments/soup_static_flow.py OUT_DIR STATIC_FLOW_DIR [STATIC_FLOW_DIR ...]"""
import sys
from pathlib import Path

import torch

from gid.gid_engine.model_folder import STATIC_FLOW, read_index
from gid.gid_tools.motion_prior.static_flow import export_static_flow, load_static_flow
from gid.gid_tools.training import average_state_dicts

out, members = Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]]
nets = [load_static_flow(m) for m in members]
if len(nets) < 2 or any(n is None for n in nets):
    sys.exit("soup_static_flow: give an output folder and two or more static-flow folders")
soup = nets[0]
states = [n.state_dict() for n in nets]
with torch.no_grad():
    soup.load_state_dict(average_state_dicts(states))
summary = {"stage": "soup", "members": [str(m) for m in members],
           "member_training": [read_index(m, STATIC_FLOW).get("training", {}) for m in members]}
export_static_flow(soup, out, summary)
print(f"wrote {out}: the mean of {len(members)} networks")
