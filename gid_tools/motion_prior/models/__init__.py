"""Models of the motion prior, one per file (diffusers style): the spectral VAE, the
frequency-conditioned U-Net denoiser and the frequency-attention layers that coordinate it."""

from .configs import PRESETS, DenoiserConfig, FreqAttnConfig, PriorConfig, VAEConfig, get_config
from .denoiser import FrequencyDenoiser, ImageCondition
from .frequency_attention import FrequencyAttention, FrequencyCoordinatedDenoiser
from .vae import SpectralVAE, multiscale_gradient_loss

__all__ = [
    "PRESETS", "PriorConfig", "VAEConfig", "DenoiserConfig", "FreqAttnConfig", "get_config",
    "SpectralVAE", "multiscale_gradient_loss", "FrequencyDenoiser", "ImageCondition",
    "FrequencyAttention", "FrequencyCoordinatedDenoiser", "build_models",
]


def build_models(config: PriorConfig, coordinated: bool = True):
    """(vae, denoiser) for a config; the denoiser is the frequency-coordinated wrapper unless
    ``coordinated=False``."""
    vae = SpectralVAE(config.vae)
    base = FrequencyDenoiser(config.denoiser, config.latent_size)
    if not coordinated:
        return vae, base
    return vae, FrequencyCoordinatedDenoiser(base, config.num_frequencies, config.freq_attn.head_dim,
                                             config.freq_attn.max_heads)
