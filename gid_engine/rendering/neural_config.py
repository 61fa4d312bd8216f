"""Renderer configurations, built in code (no downloads).

Two presets: ``tiny`` for tests (a few thousand parameters, seconds on a CPU) and ``small``, the
shipped model, sized for the speed goal of 5 frames a second at 512x288 on 2 CPU cores through
onnxruntime (README, "Measured"). The encoder runs once per still; per frame only the splatting and the synthesis
network run, so the cost that matters is the synthesis network's at full resolution: it keeps
its widest layers at 1/4 resolution and only two narrow convolutions at full size.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

PRESETS = ("tiny", "small")
LEVELS = 3  # pyramid levels at 1, 1/2 and 1/4 of the frame; frames are padded to a multiple of 4
MULTIPLE = 2 ** (LEVELS - 1)


@dataclass(frozen=True)
class RendererConfig:
    name: str = "tiny"
    # feature channels of the encoder per level (full, 1/2, 1/4); level 0 also carries the RGB
    features: tuple[int, int, int] = (4, 8, 8)
    # synthesis network widths per level (full, 1/2, 1/4)
    widths: tuple[int, int, int] = (8, 8, 16)
    # residual blocks at 1/4 resolution (their dilations grow so they see across large holes)
    coarse_blocks: int = 1
    # training
    batch: int = 4
    lr: float = 1e-3
    crop: tuple[int, int] = (128, 80)  # (W, H) training crop, a multiple of 4
    perceptual_weight: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RendererConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known})


def get_config(name: str) -> RendererConfig:
    if name == "tiny":
        return RendererConfig()
    if name == "small":
        return RendererConfig(name="small", features=(8, 24, 48), widths=(16, 32, 64), coarse_blocks=3,
                              batch=6, lr=1e-3, crop=(192, 128), perceptual_weight=0.1)
    raise ValueError(f"unknown renderer config {name!r}; choose one of {', '.join(PRESETS)}")
