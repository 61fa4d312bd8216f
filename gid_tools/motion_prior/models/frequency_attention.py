"""Frequency attention (paper §4.2 "frequency-coordinated denoising", Fig. 3 right).

The 2D spatial layers of the U-Net treat the ``B*K`` latent slices of a batch as independent
images. A ``FrequencyAttention`` layer views those ``(B*K, C, h, w)`` features as
``(B, K, C, h, w)`` and, at every pixel, lets the K frequency slices attend to each other
(a transformer block along the K axis with a learned frequency position embedding). Its output
projection starts at zero, so inserting the layers leaves a trained base model's output
bit-for-bit unchanged until they are fine-tuned.
"""

from __future__ import annotations

import torch
from torch import nn


class FrequencyAttention(nn.Module):
    def __init__(self, channels: int, num_frequencies: int, head_dim: int = 32, max_heads: int = 4) -> None:
        super().__init__()
        self.channels = channels
        self.num_frequencies = num_frequencies
        heads = max(1, min(max_heads, channels // max(head_dim, 1)))
        while channels % heads:
            heads -= 1
        self.heads = heads
        self.pos = nn.Parameter(torch.randn(num_frequencies, channels) * 0.02)
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj_out = nn.Linear(channels, channels)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B*K, C, h, w)`` -> same shape, ``x + attention over K``."""
        bk, c, h, w = x.shape
        k = self.num_frequencies
        if bk % k:
            raise ValueError(f"frequency attention needs a batch that is a multiple of K={k}, got {bk}")
        b = bk // k
        t = x.reshape(b, k, c, h * w).permute(0, 3, 1, 2).reshape(b * h * w, k, c)  # tokens along K
        y = self.norm(t + self.pos.to(t.dtype))
        q, kk, v = self.qkv(y).chunk(3, dim=-1)
        split = lambda a: a.reshape(a.shape[0], k, self.heads, c // self.heads).transpose(1, 2)  # noqa: E731
        a = torch.nn.functional.scaled_dot_product_attention(split(q), split(kk), split(v))
        a = a.transpose(1, 2).reshape(b * h * w, k, c)
        out = self.proj_out(a)
        out = out.reshape(b, h * w, k, c).permute(0, 2, 3, 1).reshape(bk, c, h, w)
        return x + out


class FrequencyCoordinatedDenoiser(nn.Module):
    """A (frozen) ``FrequencyDenoiser`` with ``FrequencyAttention`` after every down, mid and up block.

    The layers are inserted with forward hooks on the base U-Net's blocks, so the base model's
    code and weights stay untouched (and its state-dict keys keep their names under ``base.``).
    Call it with all K slices of each sample, in order: ``latents (B*K, 4, h, w)``,
    ``freq_index`` = ``arange(K)`` repeated B times. Called with ``coordinate=False`` (or on a
    batch that is not whole volumes) it is exactly the base model.
    """

    def __init__(self, base: nn.Module, num_frequencies: int, head_dim: int = 32, max_heads: int = 4) -> None:
        super().__init__()
        self.base = base
        self.num_frequencies = num_frequencies
        unet = base.unet
        chans = list(unet.config.block_out_channels)
        mk = lambda c: FrequencyAttention(c, num_frequencies, head_dim, max_heads)  # noqa: E731
        self.down_attn = nn.ModuleList(mk(c) for c in chans)
        self.mid_attn = mk(chans[-1])
        self.up_attn = nn.ModuleList(mk(c) for c in reversed(chans))
        self._active = False
        self._hooks = []
        for block, attn in zip(unet.down_blocks, self.down_attn):
            self._hooks.append(block.register_forward_hook(self._down_hook(attn)))
        if unet.mid_block is not None:
            self._hooks.append(unet.mid_block.register_forward_hook(self._plain_hook(self.mid_attn)))
        for block, attn in zip(unet.up_blocks, self.up_attn):
            self._hooks.append(block.register_forward_hook(self._plain_hook(attn)))

    # hooks -------------------------------------------------------------------------------
    def _down_hook(self, attn: FrequencyAttention):
        def hook(module, args, output):
            if not self._active:
                return None
            hidden, res = output
            new = attn(hidden)
            # the block's last skip output is its returned hidden state: keep them the same
            return new, tuple(res[:-1]) + (new,)
        return hook

    def _plain_hook(self, attn: FrequencyAttention):
        def hook(module, args, output):
            if not self._active:
                return None
            return attn(output)
        return hook

    # API ---------------------------------------------------------------------------------
    def attention_parameters(self):
        for m in (self.down_attn, self.mid_attn, self.up_attn):
            yield from m.parameters()

    def freeze_base(self) -> None:
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.base.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if all(not p.requires_grad for p in self.base.parameters()):
            self.base.eval()  # a frozen base stays in eval mode
        return self

    @property
    def config(self):
        return self.base.config

    @property
    def sample_size(self):
        return self.base.sample_size

    def encode_condition(self, image: torch.Tensor, flow: torch.Tensor | None = None) -> torch.Tensor:
        return self.base.encode_condition(image, flow)

    @property
    def has_static_field(self) -> bool:
        return self.base.has_static_field

    def static_field(self, image: torch.Tensor) -> torch.Tensor | None:
        return self.base.static_field(image)

    def forward(self, latents: torch.Tensor, timesteps: torch.Tensor, freq_index: torch.Tensor,
                cond: torch.Tensor | None = None, image: torch.Tensor | None = None,
                coordinate: bool = True, flow: torch.Tensor | None = None) -> torch.Tensor:
        self._active = bool(coordinate) and latents.shape[0] % self.num_frequencies == 0
        try:
            return self.base(latents, timesteps, freq_index, cond, image, flow)
        finally:
            self._active = False
