"""Scratch experiment (2026-12-03, not shipped): sample the shipped prior from a scaled initial noise
(temperature tau < 1). Result: the amplitude collapses (tau 0.7: 0.01-0.03 of the reference), so a
cooler start is no way to make draws agree on where things move. Log: docs/runs/2026-12-03-cpu/noise_temperature.log.
Usage: python tools/experiments/noise_temperature.py 1.0,0.7,0.5 25 8 5 out.json"""
import json
import sys
import time
import numpy as np
import torch
from gid.gid_tools.motion_prior.weights import load_weights
from gid.gid_engine.prediction.predict import WEIGHTS_DIR
from gid.gid_tools.motion_prior.data import synthetic_pair
from gid.gid_tools.motion_prior.evaluate import magnitude_map, pair_metrics, correlation, eval_real_pairs
from gid.gid_engine.repo_data import TREE_CLIP
torch.set_num_threads(2)
temps = [float(t) for t in sys.argv[1].split(",")]
steps = int(sys.argv[2]); n_syn = int(sys.argv[3]); seeds = int(sys.argv[4])
pipe = load_weights(WEIGHTS_DIR)
cfg = pipe.config
shape = (cfg.num_frequencies, cfg.vae.latent_channels, *cfg.latent_size)
real = eval_real_pairs(TREE_CLIP, cfg, 4)
syn = [synthetic_pair(i, seed=0, split="eval", width=cfg.width, height=cfg.height, k=cfg.num_frequencies) for i in range(n_syn)]
out = {}
for tau in temps:
    for name, pairs, ns in (("real", real, seeds), ("synthetic", syn, 1)):
        rows = []; mean_corr = []
        for i, (image, ref) in enumerate(pairs):
            ref = ref.anchored(); rm = magnitude_map(ref); mags = []
            for s in range(ns):
                g = torch.Generator("cpu").manual_seed(1000 * s + i)
                noise = tau * torch.randn(shape, generator=g)
                t0 = time.time()
                pred = pipe(image, steps=steps, noise=noise, seed=s)
                m = pair_metrics(pred, ref, rm); m["seed"] = s; m["pair"] = i
                rows.append(m); mags.append(magnitude_map(pred))
            mean_corr.append(correlation(np.mean(mags, 0), rm))
        agg = {k: float(np.mean([r[k] for r in rows])) for k in ("spectrum_log_err", "magnitude_corr", "amplitude_ratio")}
        per_seed = [float(np.mean([r["magnitude_corr"] for r in rows if r["seed"] == s])) for s in range(ns)]
        agg["corr_sd_over_seeds"] = float(np.std(per_seed, ddof=1)) if ns > 1 else None
        agg["corr_of_mean_magnitude"] = float(np.mean(mean_corr))
        out[f"{name} tau={tau}"] = agg
        print(name, tau, json.dumps(agg), flush=True)
json.dump(out, open(sys.argv[5], "w"), indent=1)
