"""Experiment (2026-12-03, not shipped): does the learned Eulerian network (StaticFlowNet) generalise
better when trained on the still set v2 (24 training stills) instead of v1 (12)? Both nets trained by
the same command and step count (2,738 steps, 1,000 pairs, batch 8, lr 1e-3; the v2 one with
`gid train static-flow --steps 2738 --pairs 1000 --workers 2 --threads 2 --stills v2 --out DIR --export W`),
scored here as the baseline is in `gid eval prior` on the held-out stills of v1 (n=32), of v2 (n=64)
and on the held-out real clip. Result in docs/runs/2026-12-03-cpu/static_flow_v2_eval.json.
Usage: python tools/experiments/static_flow_stills.py NAME=WEIGHTS_DIR [NAME=WEIGHTS_DIR ...]"""
import sys
import json
from pathlib import Path
from gid.gid_tools.motion_prior.data import real_pairs, synthetic_pair
from gid.gid_tools.motion_prior.evaluate import dominant_bin, score_learned_static_flow
from gid.gid_tools.motion_prior.static_flow import load_static_flow
from gid.gid_engine.prediction.predict import WEIGHTS_DIR
from gid.gid_engine.repo_data import TREE_CLIP
import torch; torch.set_num_threads(2)
from gid.gid_engine.motion.normalization import FrequencyNormalizer
k_star = dominant_bin(FrequencyNormalizer.load(WEIGHTS_DIR / "normalization.json").scales)
nets = {name: load_static_flow(Path(d)) for name, d in (a.split("=") for a in sys.argv[1:])}
sets = {"syn eval (v1, n=32)": [synthetic_pair(i, seed=0, split="eval") for i in range(32)],
        "syn eval_v2 (n=64)": [synthetic_pair(i, seed=0, split="eval_v2") for i in range(64)],
        "real tree (n=2)": real_pairs([str(TREE_CLIP)], every=30, width=256, height=160, max_pairs=4, k=16)}
out = {}
for sname, pairs in sets.items():
    for nname, net in nets.items():
        m = score_learned_static_flow(net, pairs, k_star)
        out[f"{sname} | {nname}"] = m
        print(f"{sname:22s} {nname:10s} spec {m['spectrum_log_err']:.3f} corr {m['magnitude_corr']:.3f} amp {m['amplitude_ratio']:.3f}", flush=True)
json.dump(out, open("static_flow_stills.json", "w"), indent=1)
