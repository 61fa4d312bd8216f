"""Scratch experiment (not shipped): does a stronger image condition make the denoiser learn *where*
things move? Same data, same steps; A = the shipped condition (learned 8-ch conv of the image),
B = A + the learned static-flow field M and |M| at latent size (3 more channels)."""
import dataclasses
import sys
import time
import json
import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler
from gid.gid_tools.motion_prior.weights import load_weights
from gid.gid_engine.prediction.predict import WEIGHTS_DIR
from gid.gid_tools.motion_prior.models import FrequencyDenoiser
from gid.gid_tools.motion_prior.models.denoiser import ImageCondition
from gid.gid_tools.motion_prior.static_flow import load_static_flow
from gid.gid_tools.motion_prior.data import synthetic_pair
from gid.gid_tools.motion_prior.evaluate import magnitude_map, correlation
from gid.gid_tools.motion_prior.pipeline import make_scheduler
from gid.gid_tools.training import lr_at

variant, steps, n_pairs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1)
torch.manual_seed(0)
pipe = load_weights(WEIGHTS_DIR)
cfg = pipe.config
sf = load_static_flow()
blob = torch.load("out/condexp_data.pt")
lat, imgs, mfield = blob["latents"][:n_pairs], blob["images"][:n_pairs], blob["m"][:n_pairs]
extra = 3 if variant == "B" else 0
dcfg = dataclasses.replace(cfg.denoiser, cond_channels=cfg.denoiser.cond_channels + extra)
den = FrequencyDenoiser(dcfg, cfg.latent_size)
img_cond = ImageCondition(cfg.denoiser.cond_type, cfg.denoiser.cond_channels)
params = list(den.unet.parameters()) + list(img_cond.parameters())
opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
sched = make_scheduler(); acp = sched.alphas_cumprod; ntt = sched.config.num_train_timesteps
def cond_of(images, m):
    c = img_cond(images, cfg.latent_size)
    if extra:
        mm = F.interpolate(m, size=cfg.latent_size, mode="area")
        c = torch.cat([c, mm, mm.norm(dim=1, keepdim=True)], dim=1)
    return c
rng = np.random.default_rng(1)
t0 = time.time()
for step in range(steps):
    idx = torch.as_tensor(rng.integers(n_pairs, size=16))
    keep = torch.as_tensor(rng.random(16) >= 0.1, dtype=torch.float32)[:, None, None, None]
    freq = torch.as_tensor(rng.integers(16, size=16))
    z0 = lat[idx, freq].float() * pipe.latent_scale
    t = torch.as_tensor(rng.integers(ntt, size=16))
    noise = torch.randn(z0.shape)
    a = acp[t].reshape(-1, 1, 1, 1)
    zt = a.sqrt() * z0 + (1 - a).sqrt() * noise
    c = cond_of(imgs[idx].float() * keep, mfield[idx] * keep)
    for g in opt.param_groups: g["lr"] = lr_at(step, steps, 1e-3)
    loss = F.mse_loss(den(zt, t, freq, cond=c), noise)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
    if step % 200 == 0: print(variant, step, float(loss), f"{time.time()-t0:.0f}s", flush=True)
# evaluate: 8 held-out pairs, 25 DDIM steps, CFG w = 1, magnitude correlation
den.eval(); img_cond.eval()
corrs, amps = [], []
with torch.no_grad():
    for i in range(8):
        image, ref = synthetic_pair(i, seed=0, split="eval")
        ref = ref.anchored()
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1) * 2 - 1, dtype=np.float32))[None]
        m = sf(x)
        c = cond_of(x, m).expand(16, -1, -1, -1)
        nullc = cond_of(torch.zeros_like(x), torch.zeros_like(m)).expand(16, -1, -1, -1)
        s = DDIMScheduler.from_config(pipe.scheduler.config); s.set_timesteps(25)
        z = torch.randn((16, 4) + cfg.latent_size, generator=torch.Generator().manual_seed(i))
        fi = torch.arange(16)
        for tt in s.timesteps:
            tv = torch.full((16,), int(tt))
            both = den(torch.cat([z, z]), torch.cat([tv, tv]), torch.cat([fi, fi]), cond=torch.cat([c, nullc]))
            eps = 2 * both[:16] - both[16:]
            z = s.step(eps, tt, z, eta=0.0).prev_sample
        norm = pipe.decode_normalized(z).numpy()
        from gid.gid_engine.motion.spectral_volume import SpectralVolume
        pred = SpectralVolume(pipe.normalizer.denormalize(norm)).anchored()
        rm = magnitude_map(ref); pm = magnitude_map(pred)
        corrs.append(correlation(pm, rm)); amps.append(pm.mean() / rm.mean())
print(json.dumps({"variant": variant, "steps": steps, "pairs": n_pairs, "magnitude_corr": float(np.nanmean(corrs)),
                  "amplitude_ratio": float(np.mean(amps)), "per_pair": [float(c) for c in corrs]}), flush=True)
