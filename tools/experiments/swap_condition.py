"""Experiment (2026-12-06): the shipped prior with its frozen static-flow condition (the network inside the
denoiser that gives both the condition and the Eulerian start) replaced by another StaticFlowNet, with no
retraining. Shows how much of a better static-flow network reaches the prior's samples for free, before a
U-Net retrain with that condition (`gid train prior unet --static-flow DIR`).
Usage: python tools/experiments/swap_condition.py PRIOR_DIR STATIC_FLOW_DIR OUT_DIR"""
import sys
from pathlib import Path

from gid.gid_tools.motion_prior.train import load_condition_static_flow
from gid.gid_tools.motion_prior.weights import load_weights, read_index, save_weights

prior, static_flow, out = (Path(a) for a in sys.argv[1:4])
pipe = load_weights(prior)
load_condition_static_flow(getattr(pipe.denoiser, "base", pipe.denoiser), static_flow, print)
training = dict(read_index(prior).get("training", {}))
training["condition_static_flow"] = str(static_flow)
save_weights(out, pipe.vae, pipe.denoiser, pipe.normalizer, pipe.config, latent_scale=pipe.latent_scale,
             scheduler_config=dict(pipe.scheduler.config), training=training)
print(f"wrote {out}")
