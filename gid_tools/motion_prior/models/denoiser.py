"""The frequency-conditioned latent denoiser (paper §4.2): a diffusers ``UNet2DModel``.

It predicts the noise of ONE 4-channel latent frequency slice at a time. The frequency index
``j`` (0..K-1) enters through ``num_class_embeds=K``: diffusers adds that learned embedding to
the timestep embedding, exactly the paper's "extra frequency embedding along with the time-step
embedding". The input image conditions it by concatenation: the image is brought to the latent
size (area-resampled RGB, or a small learned strided-conv encoding) and concatenated to the
noisy latent, so ``in_channels = 4 + C_cond``. With ``static_flow_width > 0`` the condition also
carries the amplitude field of a frozen ``StaticFlowNet`` (the learned Eulerian model, trained
first by ``gid train static-flow``): a denoiser fed only the image learned how much and how fast
things sway but not where (magnitude correlation ~0.06 on real footage); given ``M`` it learns
where, and the diffusion model adds what one static field cannot (spectrum, phase, variety).
Classifier-free guidance: in training the image is replaced by the null image (all zeros in
[-1, 1] space) with probability ``cond_dropout``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import UNet2DModel
from torch import nn

from .configs import DenoiserConfig
from .static_flow import StaticFlowNet


class ImageCondition(nn.Module):
    """RGB image in [-1, 1] ``(N, 3, H, W)`` -> ``(N, C_cond [+ 3], h, w)`` at the latent size."""

    def __init__(self, cond_type: str, channels: int, static_flow_width: int = 0) -> None:
        super().__init__()
        self.cond_type = cond_type
        self.channels = channels
        # frozen: trained on its own objective; its weights travel inside the denoiser's files
        self.static_flow = StaticFlowNet(static_flow_width).requires_grad_(False) if static_flow_width else None
        if cond_type == "resize":
            if channels != 3:
                raise ValueError("cond_type 'resize' gives 3 channels")
            self.net = None
        elif cond_type == "conv":
            self.net = nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.SiLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.SiLU(),
                nn.Conv2d(32, channels, 3, stride=2, padding=1),
            )
        else:
            raise ValueError(f"unknown cond_type {cond_type!r}")

    def forward(self, image: torch.Tensor, size: tuple[int, int], flow: torch.Tensor | None = None) -> torch.Tensor:
        """``flow``: the static-flow network's output for ``image`` when the caller has it (training
        caches it per pair: it is frozen, and costs more than the U-Net step on a CPU)."""
        if self.net is None:
            y = F.interpolate(image, size=size, mode="area")
        else:
            y = self.net(image)
            if tuple(y.shape[-2:]) != tuple(size):
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        if self.static_flow is None:
            return y
        m = _area_down((self.static_flow(image) if flow is None else flow).to(y.dtype), size)
        return torch.cat([y, m, m.norm(dim=1, keepdim=True)], dim=1)

    def train(self, mode: bool = True) -> "ImageCondition":
        super().train(mode)
        if self.static_flow is not None:
            self.static_flow.eval()  # frozen whatever the rest does
        return self


def _area_down(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area downsampling; an average pool for integer factors, which the ONNX exporter can trace
    where the input's size is only known at run time."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h % size[0] == 0 and w % size[1] == 0:
        return F.avg_pool2d(x, kernel_size=(h // size[0], w // size[1]))
    return F.interpolate(x, size=size, mode="area")


class FrequencyDenoiser(nn.Module):
    """eps(z_n, n, j, c): ``UNet2DModel(in = 4 + C_cond, out = 4, num_class_embeds = K)``."""

    def __init__(self, config: DenoiserConfig, sample_size: tuple[int, int] = (20, 32)) -> None:
        super().__init__()
        self.config = config
        self.sample_size = tuple(sample_size)
        self.cond = ImageCondition(config.cond_type, config.cond_channels, config.static_flow_width)
        self.unet = UNet2DModel(
            sample_size=self.sample_size,
            in_channels=config.in_channels,
            out_channels=config.latent_channels,
            down_block_types=tuple(config.down_block_types),
            up_block_types=tuple(config.up_block_types),
            block_out_channels=tuple(config.block_out_channels),
            layers_per_block=config.layers_per_block,
            norm_num_groups=config.norm_num_groups,
            attention_head_dim=config.attention_head_dim,
            num_class_embeds=config.num_frequencies,
        )

    @property
    def num_frequencies(self) -> int:
        return self.config.num_frequencies

    def encode_condition(self, image: torch.Tensor, flow: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, 3, H, W)`` image in [-1, 1] (zeros = the null condition) -> condition features;
        ``flow``: ``static_field(image)`` if already known."""
        return self.cond(image, self.sample_size, flow)

    @property
    def has_static_field(self) -> bool:
        """Whether the condition includes the static-flow network (what Eulerian starts need)."""
        return self.cond.static_flow is not None

    def static_field(self, image: torch.Tensor) -> torch.Tensor | None:
        """The frozen static-flow network's ``M`` for ``image`` (None without that condition)."""
        if self.cond.static_flow is None:
            return None
        with torch.no_grad():
            return self.cond.static_flow(image)

    def forward(self, latents: torch.Tensor, timesteps: torch.Tensor, freq_index: torch.Tensor,
                cond: torch.Tensor | None = None, image: torch.Tensor | None = None,
                flow: torch.Tensor | None = None) -> torch.Tensor:
        """``latents (N, 4, h, w)``, ``timesteps (N,)``, ``freq_index (N,)`` long, ``cond`` from
        ``encode_condition`` ``(N, C_cond, h, w)`` -> predicted noise ``(N, 4, h, w)``.

        Instead of ``cond``, ``image`` ``(M, 3, H, W)`` with ``N`` a multiple of ``M`` may be given:
        it is encoded here (so data-parallel wrappers see every parameter used in ``forward``) and
        each image conditions ``N / M`` consecutive latents; ``flow`` ``(M, 2, H, W)``: its static
        field, when known.
        """
        n = latents.shape[0]
        if cond is None:
            if image is None:
                raise ValueError("give cond or image")
            cond = self.encode_condition(image, flow)
            if cond.shape[0] != n:
                cond = cond.repeat_interleave(n // cond.shape[0], dim=0)
        if not torch.is_tensor(timesteps) or timesteps.ndim == 0:
            timesteps = torch.full((n,), int(timesteps), device=latents.device, dtype=torch.long)
        x = torch.cat([latents, cond.to(latents.dtype)], dim=1)
        return self.unet(x, timesteps, class_labels=freq_index.long()).sample
