"""Sampling a spectral volume from one image: ``MotionPriorPipeline`` (paper §4.2-4.3, §6 eq. 5).

DDIM over the latents of all K frequency slices at once (frequency-coordinated denoising), with
classifier-free guidance ``eps = (1 + w) eps(z, c) - w eps(z, null)`` and, optionally, motion
self-guidance for seamless loops (eq. 5):

    eps_hat = (1 + w) eps(z_n, n, c) - w eps(z_n, n, null) + u * grad_{z_n} L_g
    L_g = || F_T - F_1 ||_1 + || dF_T - dF_1 ||_1

``L_g`` is computed, differentiably, from the volume the current step predicts: the DDIM clean
latent estimate is decoded by the VAE, denormalized (eq. 4 inverted) and evaluated as a motion
texture at the clip's first and last frames. With this repository's conventions (0-based frames,
period ``T`` = 150 frames, a loop plays frames 0..T-1 then frame 0 again):

* ``F_1`` = displacement at frame 0, ``F_T`` = displacement at frame ``T - 1``;
* ``dF_1 = F(1) - F(0)`` and ``dF_T = F(T-1) - F(T-2)`` (per-frame velocities);
* ``|.|_1`` is summed over x and y and averaged over pixels, in pixels of the 256x160 volume.

A truncated Fourier series is always T-periodic, so a "seam" here is the snap-back a model trained
on non-looping clips puts at the end of the period: a fast return to the start position. ``L_g``
of the final volume is reported as its *seam error* (``volume.extra["seam_error_px"]``).
Self-recurrence (universal guidance): each step is taken ``recurrence`` times, re-noising the
result back to the current noise level in between.

The guidance term is capped: its RMS is at most ``MAX_GUIDANCE_RATIO`` (0.5) x the RMS of the CFG
noise prediction. Denormalization is quadratic (``S = sign(x) x^2 s``), so ``grad L_g`` grows with
the coefficients it pushes; uncapped, a large ``u`` (or a steep, untrained decoder) feeds back on
itself and the sampler diverges (seen: 1.8e20 px with u=2000 on an untrained tiny model). On the
shipped small model the default u=200 stays below the cap on most steps, so the cap only acts as
a trust region.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import torch
from diffusers import DDIMScheduler

from ...gid_engine.errors import InputError
from ...gid_engine.motion.normalization import FrequencyNormalizer
from ...gid_engine.progress import Job, ensure_job
from ...gid_engine.motion.spectral_volume import SpectralVolume
from ...gid_engine.prediction.eulerian_init import check_strength, start_latents, truncated_timesteps
from .models.configs import PriorConfig


MAX_GUIDANCE_RATIO = 0.5


def make_scheduler(num_train_timesteps: int = 1000) -> DDIMScheduler:
    """The LDM noise schedule (scaled-linear betas 0.00085..0.012), epsilon prediction, built in code."""
    return DDIMScheduler(
        num_train_timesteps=num_train_timesteps, beta_start=0.00085, beta_end=0.012,
        beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False, steps_offset=1,
        prediction_type="epsilon", timestep_spacing="leading",
    )


# ----------------------------------------------------------------------------- differentiable motion
def denormalize_torch(normalized: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Inverse of eq. 4 on ``(..., K, 4, H, W)``: ``sign(x) * x^2 * s_k`` (differentiable)."""
    s = scales.to(normalized.dtype).reshape(-1, 1, 1, 1)
    return torch.sign(normalized) * normalized.square() * s


def displacement_at_torch(coeffs: torch.Tensor, times: torch.Tensor | list[float], num_frames: int) -> torch.Tensor:
    """Torch twin of ``SpectralVolume.displacement_at``: ``(K, 4, H, W)`` -> ``(N, 2, H, W)``.

    ``F(t) = sum_k c_k (Re S_k cos th_k - Im S_k sin th_k)``, ``th_k = 2 pi k t / T``, ``c_0 = 1``,
    ``c_k = 2``: the same basis, so the two agree to float precision.
    """
    k = coeffs.shape[0]
    t = torch.as_tensor(times, dtype=torch.float64, device=coeffs.device).reshape(-1)
    frac = torch.remainder(t / num_frames, 1.0)
    theta = 2.0 * math.pi * frac[:, None] * torch.arange(k, dtype=torch.float64, device=coeffs.device)[None, :]
    scale = torch.full((k,), 2.0, dtype=torch.float64, device=coeffs.device)
    scale[0] = 1.0
    cos = (scale * torch.cos(theta)).to(coeffs.dtype)  # (N, K)
    sin = (-scale * torch.sin(theta)).to(coeffs.dtype)
    re = coeffs[:, 0::2]  # (K, 2, H, W): Re dx, Re dy
    im = coeffs[:, 1::2]
    return torch.einsum("nk,kchw->nchw", cos, re) + torch.einsum("nk,kchw->nchw", sin, im)


def loop_loss(coeffs: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 5's ``L_g`` for a denormalized ``(K, 4, H, W)`` volume (pixels): (total, position, velocity)."""
    t = num_frames
    f = displacement_at_torch(coeffs, [0.0, 1.0, t - 2.0, t - 1.0], t)  # F(0), F(1), F(T-2), F(T-1)
    pos = (f[3] - f[0]).abs().sum(0).mean()
    vel = ((f[3] - f[2]) - (f[1] - f[0])).abs().sum(0).mean()
    return pos + vel, pos, vel


def seam_error(volume: SpectralVolume) -> float:
    """``L_g`` (eq. 5, pixels) of a finished volume: 0 for a loop that is still at the seam."""
    with torch.no_grad():
        return float(loop_loss(torch.from_numpy(volume.coeffs), volume.num_frames)[0])


# ----------------------------------------------------------------------------- image
def prepare_image(image: np.ndarray, width: int, height: int) -> torch.Tensor:
    """``(H, W, C)`` float in [0, 1] (C = 1, 3 or 4) -> ``(1, 3, height, width)`` in [-1, 1].

    The numpy ``prepare_image_array`` (shared with the ONNX pipeline), as a tensor.
    """
    from ...gid_engine.prediction.onnx_pipeline import prepare_image_array

    return torch.from_numpy(prepare_image_array(image, width, height))


# ----------------------------------------------------------------------------- CUDA graphs
class _GraphedCall:
    """``fn`` captured as a CUDA graph over static copies of its inputs; a call copies the inputs
    in, replays, and returns a copy of the output. Not thread-safe (one set of static buffers): a
    pipeline samples on one thread at a time."""

    def __init__(self, fn, example: tuple[torch.Tensor, ...]) -> None:
        self.inputs = [x.clone() for x in example]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up off the capture (allocator, cuDNN autotuning)
            for _ in range(2):
                fn(*self.inputs)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = fn(*self.inputs)

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        for dst, src in zip(self.inputs, args):
            dst.copy_(src)
        self.graph.replay()
        return self.output.clone()


def _capture(fn, example: tuple[torch.Tensor, ...]):
    """A ``_GraphedCall`` that reproduces ``fn`` on ``example`` (checked against an eager call),
    or None (eager from then on) when capture fails or disagrees."""
    try:
        graphed = _GraphedCall(fn, example)
        got, want = graphed(*example), fn(*example)
        scale = float(want.abs().max().clamp_min(1e-6))
        if float((got - want).abs().max()) > 1e-3 * scale:
            return None
        return graphed
    except Exception:
        return None


# ----------------------------------------------------------------------------- pipeline
class MotionPriorPipeline:
    """Image -> spectral volume. ``vae`` (``SpectralVAE``), ``denoiser`` (frequency-coordinated or
    base ``FrequencyDenoiser``), a ``DDIMScheduler``, the ``FrequencyNormalizer`` the models were
    trained with, the ``PriorConfig``, and the latent scale (1 / std of training latents)."""

    def __init__(self, vae, denoiser, scheduler: DDIMScheduler, normalizer: FrequencyNormalizer,
                 config: PriorConfig, latent_scale: float = 1.0) -> None:
        if normalizer.K != config.num_frequencies:
            raise ValueError(f"normalizer has K={normalizer.K}, model K={config.num_frequencies}")
        self.vae = vae.eval()
        self.denoiser = denoiser.eval()
        self.scheduler = scheduler
        self.normalizer = normalizer
        self.config = config
        self.latent_scale = float(latent_scale)
        self.device = torch.device("cpu")
        # autocast dtype of the denoiser (None = float32). float32 is the default on every device:
        # bf16 is not faster at the default steps on a GPU (README, "Measured": `gid bench --gpu`)
        self.denoiser_dtype: Optional[torch.dtype] = None
        # on CUDA the denoiser call is captured once per input shape as a CUDA graph and replayed
        # (the small U-Net is launch-bound: graphs remove the per-kernel launch cost)
        self.cuda_graphs = True
        self._graphs: dict[tuple, Any] = {}
        for p in list(self.vae.parameters()) + list(self.denoiser.parameters()):
            p.requires_grad_(False)

    def to(self, device: str | torch.device) -> "MotionPriorPipeline":
        self.device = torch.device(device)
        self._graphs.clear()
        self.vae.to(self.device)
        self.denoiser.to(self.device)
        return self

    # ------------------------------------------------------------------ pieces
    def _eps(self, z: torch.Tensor, t: torch.Tensor, fi: torch.Tensor, cond: torch.Tensor,
             null: Optional[torch.Tensor], w: float) -> torch.Tensor:
        k = z.shape[0]
        if null is None or w == 0.0:
            return self._denoise(z, t, fi, cond)
        both = self._denoise(torch.cat([z, z]), torch.cat([t, t]), torch.cat([fi, fi]), torch.cat([cond, null]))
        eps_c, eps_u = both[:k], both[k:]
        return (1.0 + w) * eps_c - w * eps_u

    def _denoise(self, z: torch.Tensor, t: torch.Tensor, fi: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """One denoiser call (float32 out): replayed from a CUDA graph when possible, else eager."""
        if self.cuda_graphs and self.device.type == "cuda" and not torch.is_grad_enabled():
            # everything a capture depends on: shapes, dtypes, the mode (inference tensors cannot be
            # copied into outside inference mode) and the very parameters it read
            first = next(self.denoiser.parameters())
            key = (tuple(z.shape), z.dtype, tuple(cond.shape), cond.dtype, self.denoiser_dtype, str(self.device),
                   torch.is_inference_mode_enabled(), id(self.denoiser), first.data_ptr(), first.dtype)
            if key not in self._graphs:
                with torch.cuda.device(self.device):
                    self._graphs[key] = _capture(self._eager_denoise, (z, t, fi, cond))
            graph = self._graphs[key]
            if graph is not None:
                with torch.cuda.device(self.device):
                    return graph(z, t, fi, cond)
        return self._eager_denoise(z, t, fi, cond)

    def _eager_denoise(self, z: torch.Tensor, t: torch.Tensor, fi: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        dtype = self.denoiser_dtype
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            return self.denoiser(z, t, fi, cond).float()

    def decode_normalized(self, latents: torch.Tensor) -> torch.Tensor:
        """``(K, 4, h, w)`` scaled latents -> ``(K, 4, H, W)`` normalized volume."""
        return self.vae.decode(latents / self.latent_scale)

    def encode_normalized(self, normalized: torch.Tensor) -> torch.Tensor:
        """``(K, 4, H, W)`` normalized volume -> scaled latents (the posterior mode, as in training)."""
        return self.vae.encode(normalized).mode() * self.latent_scale

    @property
    def supports_eulerian_start(self) -> bool:
        """Whether ``init_strength`` < 1 can run (the model has a static-flow network)."""
        return bool(self.denoiser.has_static_field)

    def eulerian_start(self, field: Optional[torch.Tensor], noise: torch.Tensor, t: int, seed: int) -> torch.Tensor:
        """The latents at timestep ``t`` of the volume built from the static-flow ``field``
        ``(1, 2, H, W)`` of the image (``eulerian_init.start_latents``), noised with ``noise``."""
        if field is None:
            raise InputError("this motion model has no static-flow network, so it cannot start from the "
                             "Eulerian field: use --init-strength 1 (in Blender: Variation 1)")
        cfg = self.config

        def encode(normalized: np.ndarray) -> np.ndarray:
            return self.encode_normalized(torch.from_numpy(normalized).to(self.device)).float().cpu().numpy()

        z = start_latents(field[0].float().cpu().numpy(), self.normalizer, seed, cfg.fps, cfg.num_frames, encode,
                          noise.float().cpu().numpy(), float(self.scheduler.alphas_cumprod[int(t)]))
        return torch.from_numpy(z).to(self.device)

    def _renoise(self, z_prev: torch.Tensor, t: int, t_prev: int, gen: torch.Generator) -> torch.Tensor:
        ac = self.scheduler.alphas_cumprod
        a_t = float(ac[t])
        a_prev = float(ac[t_prev]) if t_prev >= 0 else float(self.scheduler.final_alpha_cumprod)
        ratio = a_t / a_prev
        noise = torch.randn(z_prev.shape, generator=gen, dtype=torch.float32).to(z_prev.device)
        return math.sqrt(ratio) * z_prev + math.sqrt(max(1.0 - ratio, 0.0)) * noise

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def __call__(self, image: np.ndarray, *, steps: Optional[int] = None, guidance_scale: Optional[float] = None,
                 seed: int = 0, generator: Optional[torch.Generator] = None, self_guidance: bool = False,
                 w: float = 1.75, u: float = 200.0, recurrence: int = 2, job: Optional[Job] = None,
                 return_trace: bool = False, noise: Optional[np.ndarray | torch.Tensor] = None,
                 init_strength: float = 1.0) -> SpectralVolume:
        """Sample a spectral volume ``(K, 4, 160, 256)`` in pixels (anchored: ``F(0) = 0``).

        ``guidance_scale`` is the classifier-free guidance weight ``w`` of plain sampling (default:
        the config's); with ``self_guidance`` the paper's looping setting is used instead: CFG weight
        ``w`` (1.75), self-guidance weight ``u`` and ``recurrence`` passes per step. The same
        ``seed`` (or an identically seeded ``generator``) gives a bit-identical volume. ``noise``
        ``(K, 4, h, w)`` replaces the initial ``torch.randn`` draw (the generator still drives the
        self-guidance re-noising), so this and the ONNX pipeline can start from the same latents.
        ``init_strength`` < 1 starts from the static-flow field's motion instead of pure noise and
        runs only that share of the steps (``eulerian_init.py``; the phases drawn from ``seed``).
        """
        job = ensure_job(job)
        cfg = self.config
        steps = int(steps or cfg.default_steps)
        if steps < 1:
            raise ValueError("steps must be >= 1")
        cfg_w = float(guidance_scale) if guidance_scale is not None else (w if self_guidance else cfg.guidance_scale)
        passes = max(1, int(recurrence)) if self_guidance else 1
        gen = generator if generator is not None else torch.Generator("cpu").manual_seed(int(seed))
        k = cfg.num_frequencies
        h, wl = cfg.latent_size
        dev = self.device
        sched = DDIMScheduler.from_config(self.scheduler.config)
        sched.set_timesteps(steps)
        img = prepare_image(image, cfg.width, cfg.height).to(dev)
        field = self.denoiser.static_field(img)  # once: the condition and an Eulerian start share it
        cond = self.denoiser.encode_condition(img, field).expand(k, -1, -1, -1)
        null = self.denoiser.encode_condition(torch.zeros_like(img)).expand(k, -1, -1, -1) if cfg_w else None
        fi = torch.arange(k, device=dev)
        scales = torch.as_tensor(self.normalizer.scales, dtype=torch.float32, device=dev)
        shape = (k, cfg.vae.latent_channels, h, wl)
        if noise is None:
            z = torch.randn(shape, generator=gen, dtype=torch.float32).to(dev)
        else:
            z = torch.as_tensor(np.asarray(noise, dtype=np.float32) if not torch.is_tensor(noise) else noise)
            if tuple(z.shape) != shape:
                raise ValueError(f"noise must have shape {shape}, got {tuple(z.shape)}")
            z = z.to(device=dev, dtype=torch.float32)
        z = z * sched.init_noise_sigma
        trace: list[dict[str, float]] = []
        timesteps = [int(t) for t in sched.timesteps]
        strength = check_strength(init_strength)
        if strength < 1.0:
            timesteps = truncated_timesteps(timesteps, strength)
            z = self.eulerian_start(field, z, timesteps[0], seed)
        stride = sched.config.num_train_timesteps // sched.num_inference_steps
        for i, t in enumerate(timesteps):
            tt = torch.full((k,), t, device=dev, dtype=torch.long)
            t_prev = t - stride
            for r in range(passes):
                if self_guidance:
                    eps, lg, ratio = self._guided_eps(z, t, tt, fi, cond, null, cfg_w, u, scales)
                    trace.append({"step": i, "pass": r, "t": t, "L_g": lg, "guidance_ratio": ratio})
                else:
                    eps = self._eps(z, tt, fi, cond, null, cfg_w)
                z_prev = sched.step(eps, t, z, eta=0.0).prev_sample
                if r < passes - 1:
                    z = self._renoise(z_prev, t, t_prev, gen)
            z = z_prev
            job.step(i + 1, len(timesteps), "sampling motion")
        normalized = self.decode_normalized(z).float().cpu().numpy()
        coeffs = self.normalizer.denormalize(normalized)
        vol = SpectralVolume(coeffs, fps=cfg.fps, num_frames=cfg.num_frames, source="predicted").anchored()
        extra: dict[str, Any] = {
            "model": cfg.name, "seed": int(seed) if generator is None and noise is None else None, "steps": steps,
            "guidance_scale": cfg_w, "self_guidance": bool(self_guidance),
        }
        if self_guidance:
            extra.update({"u": float(u), "recurrence": passes})
        if strength < 1.0:
            extra["init_strength"] = strength
        extra["seam_error_px"] = round(seam_error(vol), 6)
        vol = vol.replace(extra=extra)
        if return_trace:
            return vol, trace  # type: ignore[return-value]
        return vol

    def _guided_eps(self, z, t, tt, fi, cond, null, cfg_w, u, scales):
        """CFG noise plus ``u * grad_z L_g`` of the volume predicted from ``z`` (eq. 5), the guidance
        term capped at ``MAX_GUIDANCE_RATIO`` x the RMS of the CFG noise (see module doc)."""
        a_t = float(self.scheduler.alphas_cumprod[t])
        with torch.enable_grad():
            zg = z.detach().requires_grad_(True)
            eps = self._eps(zg, tt, fi, cond, null, cfg_w)
            x0 = (zg - math.sqrt(1.0 - a_t) * eps) / math.sqrt(a_t)
            coeffs = denormalize_torch(self.decode_normalized(x0), scales)
            lg, _, _ = loop_loss(coeffs.float(), self.config.num_frames)
            (grad,) = torch.autograd.grad(lg, zg)
        eps = eps.detach()
        grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
        # The ratio is taken of the gradient before it is scaled by u, so a capped term does not
        # depend on u at all: every u past the cap gives the same bits on any CPU's kernels.
        grad_ratio = float(grad.square().mean().sqrt() / eps.square().mean().sqrt().clamp_min(1e-12))
        ratio = float(u) * grad_ratio
        if ratio > MAX_GUIDANCE_RATIO:
            return eps + grad * (MAX_GUIDANCE_RATIO / grad_ratio), float(lg.detach()), ratio
        return eps + float(u) * grad, float(lg.detach()), ratio
