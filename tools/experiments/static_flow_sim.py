"""Experiment (2026-12-06): does the learned Eulerian network (StaticFlowNet) place motion better when
half its training pairs are simulated views of `gid make-data` with their exact static-flow fields?
Scores each named network as `gid eval prior` scores the baseline, on the held-out synthetic pairs
(v1 eval stills, n=32), the held-out real clip and every view of the held-out simulated scenes.
Usage: python tools/experiments/static_flow_sim.py SIM_DIR[,SIM_DIR...] OUT.json NAME=WEIGHTS_DIR [NAME=WEIGHTS_DIR ...]
(each SIM_DIR's held-out scenes are one data set, named by its folder)"""
import json
import sys
from pathlib import Path

import torch

from gid.gid_engine.motion.normalization import FrequencyNormalizer
from gid.gid_engine.prediction.predict import WEIGHTS_DIR
from gid.gid_engine.repo_data import TREE_CLIP
from gid.gid_tools.motion_prior.data import real_pairs, synthetic_pair
from gid.gid_tools.motion_prior.evaluate import dominant_bin, score_learned_static_flow
from gid.gid_tools.motion_prior.static_flow import load_static_flow
from gid.gid_tools.simdata.datasets import sim_pairs

torch.set_num_threads(2)
sim_dir, out_path = sys.argv[1], sys.argv[2]
k_star = dominant_bin(FrequencyNormalizer.load(WEIGHTS_DIR / "normalization.json").scales)
nets = {name: load_static_flow(Path(d)) for name, d in (a.split("=") for a in sys.argv[3:])}
sets = {"syn eval (v1, n=32)": [synthetic_pair(i, seed=0, split="eval") for i in range(32)],
        "real tree (n=2)": real_pairs([str(TREE_CLIP)], every=30, width=256, height=160, max_pairs=4, k=16),
        **{f"sim held-out {Path(d).name}": sim_pairs(d, "eval") for d in sim_dir.split(",")}}
out = {}
for sname, pairs in sets.items():
    for nname, net in nets.items():
        m = score_learned_static_flow(net, pairs, k_star) | {"n": len(pairs)}
        out[f"{sname} | {nname}"] = m
        print(f"{sname:28s} {nname:12s} n={len(pairs):3d} spec {m['spectrum_log_err']:.3f} "
              f"corr {m['magnitude_corr']:.3f} amp {m['amplitude_ratio']:.3f}", flush=True)
Path(out_path).write_text(json.dumps(out, indent=1))
