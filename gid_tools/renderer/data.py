"""Training and evaluation triples ``(I0, F_t, W, I_t)`` for the renderer (numpy + OpenCV).

**Synthetic, exact.** A still's random view is the foreground layer and another still's view the
background; the foreground's alpha is where its procedural motion is (``synthetic_volume``: flat
areas such as sky do not move, so they become background). Foreground and background move with
their own exact spectral volumes (the background's smaller, like a far backdrop). ``I0`` is the
composite at t = 0, the forward motion is the alpha-weighted mix of the two (Fourier coefficients
mix linearly, so ``W = mean_t ||F_t||`` is exact too) and the target ``I_t`` composites each layer
*backward*-warped by the inverse of its motion (a fixed-point inversion, converged to < 0.01 px for
these smooth fields). Where the foreground moves away, the true background appears: real
disocclusions with known content.

**Real.** Pairs of decoded frames of a clip with the DIS flow between them (the project's own
extraction method) as ``F_t`` and ``W = ||F_t||``. Each clip's held-out window of frames
(``samples/clips.json``) evaluates; the frames away from it train.

All sizes are multiples of 4 (the pyramid's requirement).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ...exporters.opencv import cv2
from ...gid_engine.errors import InputError
from ..motion_prior.data.synthetic import load_stills, pair_rng, random_view, synthetic_volume
from ...gid_engine.repo_data import CLIPS_FILE
from ...gid_engine.motion.spectral_volume import SpectralVolume

ALPHA_THRESHOLD_PX = 0.3  # mean motion (px at 256 wide) above which a pixel is foreground
INVERSION_ITERATIONS = 12


@dataclass
class Triple:
    image: np.ndarray  # (3, H, W) float32 in [0, 1]: I0
    flow: np.ndarray  # (2, H, W) float32 forward motion 0 -> t, pixels
    z: np.ndarray  # (1, H, W) float32 softmax weights W
    target: np.ndarray  # (3, H, W) float32: I_t

    def stacked(self) -> np.ndarray:
        return np.concatenate([self.image, self.flow, self.z, self.target], axis=0)


def stack_triple(stack: np.ndarray) -> Triple:
    """The ``Triple`` of a ``(9, H, W)`` stack (``Triple.stacked``'s inverse)."""
    x = np.ascontiguousarray(stack, dtype=np.float32)
    return Triple(x[:3], x[3:5], x[5:6], x[6:9])


def synthetic_triple(index: int, *, seed: int = 0, split: str = "train", width: int = 256, height: int = 160,
                     amplitude: tuple[float, float] = (1.5, 4.0), same_still: float = 0.0,
                     extracted_flow: float = 0.0) -> Triple:
    """Triple number ``index`` (a pure function of its arguments). ``amplitude``: the range of the
    foreground motion's random gain over the prior's data (larger motion, larger holes to learn on).
    ``same_still``: the probability that the background is another view of the foreground's still
    (what a hole reveals in a natural scene usually resembles its surroundings: more leaves behind
    leaves) rather than a view of a random still. ``extracted_flow``: the probability that the
    exact motion is replaced by the flow the project's extraction finds between ``I0`` and ``I_t``
    (``with_extracted_flow``)."""
    if width % 4 or height % 4:
        raise InputError(f"renderer triples need sizes that are multiples of 4, got {width}x{height}")
    rng = pair_rng(seed, split, index, "renderer")
    stills = load_stills(split)
    fg_index = int(rng.integers(len(stills)))
    fg_img, _ = random_view(stills[fg_index].pixels, rng, width, height)
    bg_index = int(rng.integers(len(stills)))
    if same_still > 0.0 and pair_rng(seed, split, index, "same-still").random() < same_still:
        bg_index = fg_index  # drawn from its own stream: same_still=0 leaves every other draw as it was
    bg_img, _ = random_view(stills[bg_index].pixels, rng, width, height)
    fg = synthetic_volume(fg_img, rng=rng).scaled(float(rng.uniform(*amplitude)))
    bg = synthetic_volume(bg_img, rng=rng).scaled(float(rng.uniform(0.0, 0.3)))
    threshold = ALPHA_THRESHOLD_PX * width / 256
    alpha = np.clip(fg.mean_magnitude() / threshold - 0.5, 0.0, 1.0).astype(np.float32)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.7)
    t = float(rng.uniform(1.0, fg.num_frames - 1.0))
    d_fg, d_bg = fg.displacement_at(t), bg.displacement_at(t)
    a = alpha[None]
    mixed = SpectralVolume(a[None] * fg.coeffs + (1.0 - a[None]) * bg.coeffs, fps=fg.fps, num_frames=fg.num_frames)
    image = a * fg_img.transpose(2, 0, 1) + (1.0 - a) * bg_img.transpose(2, 0, 1)
    fg_t, alpha_t = _backward_warp(np.concatenate([fg_img, alpha[:, :, None]], axis=2), d_fg)
    bg_t = _backward_warp(bg_img, d_bg)[0]
    target = alpha_t * fg_t + (1.0 - alpha_t) * bg_t
    triple = Triple(image.astype(np.float32), (a * d_fg + (1.0 - a) * d_bg).astype(np.float32),
                    mixed.mean_magnitude()[None].astype(np.float32),
                    np.ascontiguousarray(target.transpose(2, 0, 1), dtype=np.float32))
    if extracted_flow > 0.0 and pair_rng(seed, split, index, "extracted-flow").random() < extracted_flow:
        return with_extracted_flow(triple)  # its own stream, like same_still: other triples stay as they were
    return triple


def with_extracted_flow(triple: Triple) -> Triple:
    """``triple`` with its exact motion replaced by the flow the project's extraction (DIS) finds
    from ``I0`` to ``I_t``, and ``W = ||F||``: exactly what a real clip's triple carries.

    Why: on real clips the renderer is handed extracted flow, whose errors (smoothed over
    disocclusions, wrong on thin structures) open and misplace holes; trained on exact flow only,
    it never sees them. Here the content those holes must reveal is still known exactly."""
    from ...gid_engine.motion.extract import flow_function
    from ...gid_engine.media.imaging import to_gray_u8

    a, b = (to_gray_u8(np.ascontiguousarray(x.transpose(1, 2, 0))) for x in (triple.image, triple.target))
    return _extracted_triple(triple.image, triple.target, a, b, flow_function())


def _extracted_triple(image: np.ndarray, target: np.ndarray, gray_image: np.ndarray, gray_target: np.ndarray,
                      flow_fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Triple:
    """``(I0, F, W, I_t)`` with ``F`` the extracted flow from ``I0`` to ``I_t`` and ``W = ||F||``:
    the one way a triple gets extracted motion, real or synthetic. Images ``(3, H, W)``; the
    grays are passed in so a clip converts each frame once."""
    flow = flow_fn(gray_image, gray_target).transpose(2, 0, 1).astype(np.float32)
    return Triple(image, flow, np.linalg.norm(flow, axis=0)[None].astype(np.float32), target)


def _backward_warp(layer: np.ndarray, forward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Layer (H, W, C) moved by the forward field ``forward`` (2, H, W): solve ``p + D(p) = q`` for
    every target ``q`` by fixed-point iteration ``p <- q - D(p)`` and sample the layer at ``p``.
    Returns (RGB (H, W, 3), the 4th channel (H, W, 1) or None)."""
    h, w = forward.shape[1:]
    qx = np.broadcast_to(np.arange(w, dtype=np.float32)[None, :], (h, w))
    qy = np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w))
    px, py = qx.copy(), qy.copy()
    for _ in range(INVERSION_ITERATIONS):
        dx = cv2.remap(forward[0], px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        dy = cv2.remap(forward[1], px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        px, py = qx - dx, qy - dy
    out = cv2.remap(np.ascontiguousarray(layer, dtype=np.float32), px, py, cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    if layer.shape[2] == 4:
        return out[:, :, :3], out[:, :, 3:]
    return out, None  # type: ignore[return-value]


DEFAULT_HELD_OUT = 0.3  # the last share of an unlisted clip's decoded frames is held out


@dataclass(frozen=True)
class ClipSplit:
    """Which decoded frames of a clip evaluate (``eval_frames``, half-open) and which train: the
    rest, minus ``margin`` frames on each side of the held-out window, since neighbouring frames of
    a clip are nearly the same picture. ``max_gap``: the largest frame distance of a pair (a clip
    whose motion is slow needs wider pairs to show disocclusions)."""

    eval_frames: tuple[int, int]
    margin: int = 0
    max_gap: int = 3

    def segments(self, split: str, n_frames: int) -> list[tuple[int, int]]:
        lo, hi = min(self.eval_frames[0], n_frames), min(self.eval_frames[1], n_frames)
        if split == "eval":
            return [(lo, hi)]
        if split != "train":
            raise InputError(f"unknown split {split!r}; choose train or eval")
        return [(0, max(0, lo - self.margin)), (min(n_frames, hi + self.margin), n_frames)]


def clip_split(clip: str | Path, n_frames: int) -> ClipSplit:
    """``clip``'s entry in ``samples/clips.json`` (matched by file name): the split its model-card
    figures were measured with. An unlisted clip holds out its last 30 %."""
    entry = json.loads(CLIPS_FILE.read_text()).get(Path(clip).name) if CLIPS_FILE.is_file() else None
    if entry is None:
        return ClipSplit((max(1, int((1.0 - DEFAULT_HELD_OUT) * n_frames)), n_frames))
    lo, hi = entry["eval_frames"]
    return ClipSplit((int(lo), int(hi)), int(entry.get("margin", 0)), int(entry.get("max_gap", 3)))


def sim_triples(folder: str | Path, split: str = "eval", *, extracted_flow: bool = False) -> list[Triple]:
    """The renderer triples of a simulated shard folder's ``split`` (``sim_triple_stacks``); with
    ``extracted_flow`` each carries the flow gid's extraction finds between its frames instead of the exact
    motion (``with_extracted_flow``: what a real clip hands the renderer)."""
    from ..simdata.datasets import sim_triple_stacks

    triples = [stack_triple(x) for x in sim_triple_stacks(folder, split)]
    return [with_extracted_flow(t) for t in triples] if extracted_flow else triples


def real_triples(clip: str | Path, *, split: str = "train", held_out: ClipSplit | None = None,
                 width: int = 256, height: int | None = None) -> list[Triple]:
    """Every pair (s, s + g), ``g`` in 1..max_gap, of decoded frames inside one part of the clip.

    ``held_out`` defaults to ``clip_split`` and ``height`` to the clip's aspect ratio (a 16:9
    clip is not squeezed into 4:3).
    """
    from ...gid_engine.motion.extract import flow_function
    from ...gid_engine.media.imaging import to_gray_u8
    from ...gid_engine.media.video import open_frames

    source = open_frames(clip)
    if height is None:
        height = max(4, 4 * round(width * source.size[1] / source.size[0] / 4))
    if width % 4 or height % 4:
        raise InputError(f"renderer triples need sizes that are multiples of 4, got {width}x{height}")
    frames = []
    for f in source.frames(0):
        px = np.clip(f.pixels[:, :, :3], 0.0, 1.0).astype(np.float32)
        frames.append(cv2.resize(px, (width, height), interpolation=cv2.INTER_AREA))
    held_out = held_out or clip_split(clip, len(frames))
    flow_fn = flow_function()
    gray = [to_gray_u8(f) for f in frames]
    out = []
    for lo, hi in held_out.segments(split, len(frames)):
        for s in range(lo, hi):
            for g in range(1, held_out.max_gap + 1):
                if s + g >= hi:
                    break
                out.append(_extracted_triple(frames[s].transpose(2, 0, 1).copy(),
                                             frames[s + g].transpose(2, 0, 1).copy(), gray[s], gray[s + g], flow_fn))
    if not out:
        raise InputError(f"{Path(clip).name}: no frame pairs in its {split} part "
                         f"(held-out frames {held_out.eval_frames[0]}-{held_out.eval_frames[1] - 1})")
    return out
