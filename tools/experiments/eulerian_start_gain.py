"""Scratch experiment (2026-12-03) behind Eulerian-initialised sampling (gid_engine/motion_prior/eulerian_init.py):
SDEdit from a volume built from the learned static-flow field, with a hand-set gain (argv[6]; the shipped
code instead matches the Eulerian baseline's motion energy). Logs: docs/runs/2026-12-03-cpu/eulerian_start_gain*.log.
Usage: python tools/experiments/eulerian_start_gain.py 0.5,0.8 25 8 5 out.json 2"""
import json
import sys
import numpy as np
import torch
from diffusers import DDIMScheduler
from gid.gid_tools.motion_prior.weights import load_weights
from gid.gid_engine.prediction.predict import WEIGHTS_DIR
from gid.gid_tools.motion_prior.data import synthetic_pair
from gid.gid_tools.motion_prior.evaluate import magnitude_map, pair_metrics, dominant_bin, eval_real_pairs
from gid.gid_tools.motion_prior.static_flow import load_static_flow, learned_static_flow
from gid.gid_tools.motion_prior.pipeline import prepare_image
from gid.gid_engine.motion.spectral_volume import SpectralVolume
from gid.gid_engine.repo_data import TREE_CLIP
torch.set_num_threads(2)
strengths = [float(t) for t in sys.argv[1].split(",")]
steps = int(sys.argv[2]); FACTOR = float(sys.argv[6]); n_syn = int(sys.argv[3]); seeds = int(sys.argv[4])
pipe = load_weights(WEIGHTS_DIR); cfg = pipe.config; sf = load_static_flow()
K = cfg.num_frequencies; scales = pipe.normalizer.scales; kstar = dominant_bin(scales)
real = eval_real_pairs(TREE_CLIP, cfg, 4)
syn = [synthetic_pair(i, seed=0, split="eval", width=cfg.width, height=cfg.height, k=K) for i in range(n_syn)]

def init_coeffs(image, like, rng):
    m = learned_static_flow(sf, image, like, kstar).coeffs[kstar]  # (4,H,W): (0, -Mx/2, 0, -My/2)
    mx, my = -2 * m[1], -2 * m[3]
    w = scales.copy(); w[0] = 0; w = w / w.sum()
    c = np.zeros((K, 4) + mx.shape, np.float32)
    for k in range(1, K):
        ph = rng.uniform(0, 2 * np.pi)
        a = 0.5 * w[k] * FACTOR
        c[k, 0] = a * mx * np.cos(ph); c[k, 1] = a * mx * np.sin(ph)
        c[k, 2] = a * my * np.cos(ph); c[k, 3] = a * my * np.sin(ph)
    return c

@torch.no_grad()
def sample(image, like, strength, seed):
    rng = np.random.default_rng(seed); g = torch.Generator("cpu").manual_seed(seed)
    sched = DDIMScheduler.from_config(pipe.scheduler.config); sched.set_timesteps(steps)
    img = prepare_image(image, cfg.width, cfg.height)
    cond = pipe.denoiser.encode_condition(img).expand(K, -1, -1, -1)
    null = pipe.denoiser.encode_condition(torch.zeros_like(img)).expand(K, -1, -1, -1)
    fi = torch.arange(K)
    shape = (K, cfg.vae.latent_channels, *cfg.latent_size)
    noise = torch.randn(shape, generator=g)
    ts = [int(t) for t in sched.timesteps]
    if strength < 1.0:
        x = torch.from_numpy(pipe.normalizer.normalize(init_coeffs(image, like, rng)))
        z0 = pipe.vae.encode(x).mode() * pipe.latent_scale
        n_run = max(1, int(round(steps * strength)))
        ts = ts[steps - n_run:]
        z = sched.add_noise(z0, noise, torch.tensor([ts[0]]))
    else:
        z = noise
    for t in ts:
        tt = torch.full((K,), t, dtype=torch.long)
        eps = pipe._eps(z, tt, fi, cond, null, cfg.guidance_scale)
        z = sched.step(eps, t, z, eta=0.0).prev_sample
    coeffs = pipe.normalizer.denormalize(pipe.decode_normalized(z).float().numpy())
    return SpectralVolume(coeffs, fps=cfg.fps, num_frames=cfg.num_frames, source="predicted").anchored()

out = {}
for name, pairs in (("real", real), ("synthetic", syn)):
    rows = [pair_metrics(learned_static_flow(sf, im, r.anchored(), kstar), r.anchored(), magnitude_map(r.anchored())) for im, r in pairs]
    agg = {k: float(np.mean([r[k] for r in rows])) for k in ("spectrum_log_err", "magnitude_corr", "amplitude_ratio")}
    print(name, "eulerian", json.dumps(agg), flush=True)
for st in strengths:
    for name, pairs, ns in (("real", real, seeds), ("synthetic", syn, 1)):
        rows = []
        for i, (image, ref) in enumerate(pairs):
            ref = ref.anchored(); rm = magnitude_map(ref)
            for s in range(ns):
                m = pair_metrics(sample(image, ref, st, 1000 * s + i), ref, rm); m["seed"] = s
                rows.append(m)
        agg = {k: float(np.mean([r[k] for r in rows])) for k in ("spectrum_log_err", "magnitude_corr", "amplitude_ratio")}
        per_seed = [float(np.mean([r["magnitude_corr"] for r in rows if r["seed"] == s])) for s in range(ns)]
        agg["corr_sd_over_seeds"] = float(np.std(per_seed, ddof=1)) if ns > 1 else None
        out[f"{name} strength={st}"] = agg
        print(name, st, json.dumps(agg), flush=True)
    json.dump(out, open(sys.argv[5], "w"), indent=1)
