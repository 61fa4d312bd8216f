"""Model configurations, built in code (no hub downloads, ever).

One ``PriorConfig`` describes the whole motion prior: the spectral VAE, the frequency-conditioned
2D U-Net denoiser, the frequency-attention layers and the sampling defaults. Three presets:

* ``tiny``: a few thousand parameters per model; for tests (seconds on a CPU).
* ``small``: what this repository trains on a laptop-class CPU in about half an hour and ships
  (a few MiB of fp32 weights). Quality is limited by the training budget, not the design.
* ``paper-like``: the shape of the paper's setup (§7: LDM f=8 VAE with a 4-channel latent, the
  LDM 2D U-Net with attention, frequency attention after every block) at 256x160, scaled to
  what one 80 GB GPU trains in days; about 0.55 GB of fp32 weights, so it cannot ship inside the
  60 MiB weight budget as is (use fp16 + a smaller U-Net, or download it separately).

The spatial resolution is the paper's 256x160 (W x H) for every preset; the VAE downsamples by 8,
so the latent is 32x20 and the U-Net works on that.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

PRESETS = ("tiny", "small", "paper-like")


@dataclass(frozen=True)
class VAEConfig:
    block_out_channels: tuple[int, ...] = (8, 8, 16, 16)
    layers_per_block: int = 1
    norm_num_groups: int = 4
    latent_channels: int = 4
    mid_block_add_attention: bool = True
    residual: bool = True  # learn around the linear 8x down/up codec (see SpectralVAE)

    def diffusers_kwargs(self) -> dict[str, Any]:
        n = len(self.block_out_channels)
        return dict(
            in_channels=4, out_channels=4, latent_channels=self.latent_channels,
            down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
            block_out_channels=tuple(self.block_out_channels), layers_per_block=self.layers_per_block,
            norm_num_groups=self.norm_num_groups, mid_block_add_attention=self.mid_block_add_attention,
            sample_size=256,
        )  # (residual is ours, not a diffusers argument)

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)


@dataclass(frozen=True)
class DenoiserConfig:
    block_out_channels: tuple[int, ...] = (16, 32)
    down_block_types: tuple[str, ...] = ("DownBlock2D", "DownBlock2D")
    up_block_types: tuple[str, ...] = ("UpBlock2D", "UpBlock2D")
    layers_per_block: int = 1
    norm_num_groups: int = 8
    attention_head_dim: int = 8
    latent_channels: int = 4
    num_frequencies: int = 16
    # image condition: "resize" = the RGB image area-resampled to the latent size (3 channels,
    # the paper's "downsampled I0"); "conv" = a small learned strided-conv encoding (cond_channels)
    cond_type: str = "resize"
    cond_channels: int = 3
    # > 0: also condition on the amplitude field M of a frozen StaticFlowNet of this width (the
    # learned Eulerian model): M_x, M_y, |M| at the latent size, 3 more channels. It tells the
    # denoiser *where* things move, which the image encoding alone did not teach it.
    static_flow_width: int = 0

    @property
    def condition_channels(self) -> int:
        """Channels concatenated to the noisy latent."""
        return self.cond_channels + (3 if self.static_flow_width else 0)

    @property
    def in_channels(self) -> int:
        return self.latent_channels + self.condition_channels


@dataclass(frozen=True)
class FreqAttnConfig:
    head_dim: int = 8
    max_heads: int = 4


@dataclass(frozen=True)
class PriorConfig:
    name: str = "tiny"
    width: int = 256
    height: int = 160
    num_frequencies: int = 16
    fps: float = 30.0
    num_frames: int = 150
    vae: VAEConfig = field(default_factory=VAEConfig)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    freq_attn: FreqAttnConfig = field(default_factory=FreqAttnConfig)
    # sampling defaults
    default_steps: int = 50
    guidance_scale: float = 1.0  # w of classifier-free guidance when not self-guiding
    cond_dropout: float = 0.1
    # training defaults per stage (batch, lr); crops make the VAE stage affordable on a CPU
    vae_crop: tuple[int, int] | None = None  # (W, H) random crop for VAE training, None = full
    vae_batch: int = 8
    vae_lr: float = 1e-3
    unet_batch: int = 16
    unet_lr: float = 1e-3
    attn_batch: int = 2
    attn_lr: float = 5e-4

    @property
    def latent_size(self) -> tuple[int, int]:
        """(h, w) of the latent."""
        f = self.vae.downsample
        return self.height // f, self.width // f

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PriorConfig":
        d = dict(d)
        vae = VAEConfig(**_tuples(d.pop("vae", {})))
        den = DenoiserConfig(**_tuples(d.pop("denoiser", {})))
        fa = FreqAttnConfig(**d.pop("freq_attn", {}))
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}
        return cls(vae=vae, denoiser=den, freq_attn=fa, **d)


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}


def _attention_unet(widths: tuple[int, int, int], layers: int, groups: int, head_dim: int,
                    cond_channels: int, static_flow_width: int = 0) -> DenoiserConfig:
    """The LDM-style 3-level U-Net of the larger presets: self-attention in the two lower levels,
    the image encoded by the learned strided-conv condition."""
    return DenoiserConfig(
        block_out_channels=widths,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        layers_per_block=layers, norm_num_groups=groups, attention_head_dim=head_dim,
        cond_type="conv", cond_channels=cond_channels, static_flow_width=static_flow_width,
    )


def get_config(name: str) -> PriorConfig:
    if name == "tiny":
        return PriorConfig(name="tiny", default_steps=10, vae_batch=4, unet_batch=8, attn_batch=1)
    if name == "small":
        return PriorConfig(
            name="small",
            vae=VAEConfig(block_out_channels=(16, 32, 64, 64), layers_per_block=1, norm_num_groups=8),
            denoiser=_attention_unet((64, 128, 128), layers=1, groups=16, head_dim=32, cond_channels=8,
                                     static_flow_width=32),
            freq_attn=FreqAttnConfig(head_dim=32, max_heads=4),
            default_steps=50, vae_crop=(128, 80), vae_batch=8, vae_lr=1e-3,
            unet_batch=16, unet_lr=5e-4, attn_batch=2, attn_lr=3e-4,
        )
    if name == "paper-like":
        return PriorConfig(
            name="paper-like",
            vae=VAEConfig(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32),
            denoiser=_attention_unet((192, 384, 576), layers=2, groups=32, head_dim=64, cond_channels=16,
                                     static_flow_width=32),
            freq_attn=FreqAttnConfig(head_dim=64, max_heads=8),
            default_steps=250, vae_batch=32, vae_lr=1e-4, unet_batch=64, unet_lr=1e-4, attn_batch=8, attn_lr=5e-5,
        )
    raise ValueError(f"unknown config {name!r}; choose one of {', '.join(PRESETS)}")
