"""Diagnostic (2026-12-03): how well can anything trained on the synthetic pairs know where the held-out
real clip moves? The synthetic motion rule (`synthetic_volume`) is applied to the real clip's own start
frames 24 times (seeds 0-23); the correlation of its *mean* magnitude map with the clip's extracted
motion is what the rule itself "knows" about the clip. Compared with the learned Eulerian network's map
(StaticFlowNet, shipped). Log: docs/runs/2026-12-03-cpu/rule_ceiling.log.
Usage: python tools/experiments/rule_ceiling.py"""
import numpy as np
from gid.gid_tools.motion_prior.data import real_pairs
from gid.gid_tools.motion_prior.data.synthetic import synthetic_volume
from gid.gid_tools.motion_prior.evaluate import magnitude_map, correlation
from gid.gid_engine.repo_data import TREE_CLIP
from gid.gid_tools.motion_prior.static_flow import load_static_flow, learned_static_flow
real = real_pairs([str(TREE_CLIP)], every=30, width=256, height=160, max_pairs=4, k=16)
net = load_static_flow()
for image, ref in real:
    ref = ref.anchored(); rm = magnitude_map(ref)
    mags = [magnitude_map(synthetic_volume(image, seed=s)) for s in range(24)]
    per = [correlation(m, rm) for m in mags]
    lm = magnitude_map(learned_static_flow(net, image, ref, 5))
    print("rule per-draw %.3f±%.3f  rule mean-map %.3f  learned M %.3f  learned-vs-rulemean %.3f" % (
        np.mean(per), np.std(per), correlation(np.mean(mags, 0), rm), correlation(lm, rm), correlation(lm, np.mean(mags,0))))
