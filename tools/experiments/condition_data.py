"""Experiment for the next prior (MODEL_CARD.md, "Evaluation"); run from the repo root:
    python tools/experiments/condition_data.py 400
    python tools/experiments/condition_static_flow.py A 1500 400   # and B

Latents (shipped VAE), images and learned static-flow fields of the first N training pairs."""
import sys
import time
import numpy as np
import torch
from gid.gid_tools.motion_prior.weights import load_weights
from gid.gid_engine.prediction.predict import WEIGHTS_DIR
from gid.gid_tools.motion_prior.static_flow import load_static_flow
from gid.gid_tools.motion_prior.data import synthetic_pair
n = int(sys.argv[1]); torch.set_num_threads(2)
pipe = load_weights(WEIGHTS_DIR); sf = load_static_flow()
lat, imgs, ms = [], [], []
t0 = time.time()
with torch.no_grad():
    for i in range(n):
        image, vol = synthetic_pair(i, seed=0, split="train")
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1) * 2 - 1, dtype=np.float32))[None]
        norm = torch.from_numpy(pipe.normalizer.normalize(vol.coeffs).astype(np.float32))
        lat.append(pipe.vae.encode(norm).mode()); imgs.append(x[0]); ms.append(sf(x)[0])
        if i % 100 == 0: print(i, f"{time.time()-t0:.0f}s", flush=True)
torch.save({"latents": torch.stack(lat), "images": torch.stack(imgs), "m": torch.stack(ms)}, "out/condexp_data.pt")
print("done", time.time() - t0)
