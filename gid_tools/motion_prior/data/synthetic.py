"""Synthetic image–motion pairs with exact ground truth, for training the motion prior.

The model's input is a still, its target a spectral volume (paper §4). Here the volume is built
*directly in the frequency domain* from the still's content, so it is exact (no flow error) and
cheap (no time-domain warping). The recipe follows what the paper observes of natural
oscillation (§4.1, Fig. 2) and of the scenes it trains on:

* **Regions move together.** The still is segmented (SLIC-like k-means on Lab colour, texture
  and position); every region gets one random temporal signal with random phases, shared by all
  its pixels, so motion is spatially coherent and changes only across region boundaries, which
  are softened (blurred masks) the way extracted flow is.
* **Damped resonances.** A region's signal is 1-3 damped oscillators (transfer function of a
  mass-spring with natural frequency f0 in 0.2-2 Hz and damping ratio 0.05-0.35: a Lorentzian-
  like peak of that bandwidth) driven by wind whose spectrum falls exponentially with frequency,
  plus a low-frequency gust shared by the whole image (filtered by each region's resonance). So
  power decays roughly exponentially with frequency and peaks sit where objects resonate.
* **Anchored at the root, free at the tips.** Amplitude grows with distance from the region's
  anchor edge (mostly its bottom: plants; sometimes its top: hanging things; sometimes uniform:
  water), mixed with the distance from the image bottom.
* **Mostly horizontal sway**, some vertical modes, slightly elliptical trajectories.
* **Flat means static.** Sky and other texture-less areas get zero motion (their flow is
  undefined in real videos and their motion invisible), as do ~10% of textured regions (rocks,
  buildings).
* A gust travels across the image: a smooth delay field shifts each bin's phase by
  ``2 pi f tau(p)``.

Amplitudes are in pixels of the output resolution and scale with its width (a few px at
256x160, like the paper's data at that size). Every volume is anchored (displacement at t=0 is
exactly zero, like extracted data; ``S_0`` is then the mean displacement) and bounded: at the
clip's frames the displacement never exceeds ``MAX_DISPLACEMENT_PX * width / 256`` (evaluated
exactly on the working grid, which bounds the bilinearly upsampled output too).

Determinism: everything is drawn from ``numpy.random.default_rng`` seeded by
``(seed, split, index)``; OpenCV and numpy calls used here are deterministic, so the same triple
gives a bit-identical pair in any process, worker or order.

numpy + OpenCV only (no torch): this module is used by the data workers and the shard writer.
"""

from __future__ import annotations

import functools
import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ....exporters.opencv import cv2
from ....gid_engine.errors import InputError
from ....gid_engine.repo_data import STILL_SETS, STILLS_DIR
from ....gid_engine.motion.spectral_volume import DEFAULT_FPS, DEFAULT_FRAMES, DEFAULT_K, SpectralVolume

SPLITS = tuple(split for pair in STILL_SETS.values() for split in pair)  # train, eval, train_v2, eval_v2
REFERENCE_WIDTH = 256  # amplitudes below are in pixels at this width; they scale with the width
MAX_DISPLACEMENT_PX = 10.0  # hard bound on |F_t(p)| at the reference width
_WORK_FACTOR = 2  # segmentation and maps run at 1/2 resolution, then are upsampled (smooth)


# ----------------------------------------------------------------------------- stills
@dataclass(frozen=True)
class Still:
    """A licensed photo from ``data/stills``: ``pixels`` is (H, W, 3) uint8 RGB."""

    name: str
    pixels: np.ndarray


def still_splits(still_set: str) -> tuple[str, str]:
    """The (train, eval) split names of a still set ("v1" or "v2")."""
    try:
        return STILL_SETS[still_set]
    except KeyError:
        raise InputError(f"unknown still set {still_set!r}; choose one of {', '.join(STILL_SETS)}") from None


def split_names(split: str = "train", stills_dir: str | Path | None = None) -> list[str]:
    """File names of the stills in ``split`` (one of ``SPLITS``), from ``splits.json``."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    folder = Path(stills_dir) if stills_dir is not None else STILLS_DIR
    try:
        doc = json.loads((folder / "splits.json").read_text())
    except FileNotFoundError:
        raise InputError(f"training stills not found: {folder / 'splits.json'}") from None
    names = doc.get(split) if isinstance(doc, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InputError(f"{folder / 'splits.json'}: '{split}' must be a non-empty list of file names")
    return list(names)


@functools.lru_cache(maxsize=8)
def load_stills(split: str = "train", stills_dir: str | None = None) -> tuple[Still, ...]:
    """The stills of a split, decoded once per process (uint8, a few MB)."""
    folder = Path(stills_dir) if stills_dir is not None else STILLS_DIR
    out = []
    for name in split_names(split, folder):
        data = np.fromfile(str(folder / name), dtype=np.uint8) if (folder / name).exists() else None
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
        if bgr is None:
            raise InputError(f"training still missing or unreadable: {folder / name}")
        out.append(Still(name, np.ascontiguousarray(bgr[:, :, ::-1])))
    return tuple(out)


# ----------------------------------------------------------------------------- public API
def pair_rng(seed: int, split: str, index: int, stream: str = "") -> np.random.Generator:
    """The generator of one pair: a pure function of ``(seed, split, index, stream)``."""
    if index < 0 or seed < 0:
        raise InputError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    words = [int(seed), zlib.crc32(split.encode()), int(index)]
    if stream:
        words.append(zlib.crc32(stream.encode()))
    return np.random.default_rng(np.random.SeedSequence(words))


def synthetic_pair(
    index: int,
    *,
    seed: int = 0,
    split: str = "train",
    width: int = 256,
    height: int = 160,
    k: int = DEFAULT_K,
    stills_dir: str | Path | None = None,
) -> tuple[np.ndarray, SpectralVolume]:
    """Pair number ``index``: a random view of a still (float32 (H, W, 3) sRGB in [0, 1]) and
    its exact spectral volume ``(k, 4, H, W)`` in pixels of ``width x height``."""
    if width < 8 or height < 8:
        raise InputError(f"synthetic pairs need at least 8x8 pixels, got {width}x{height}")
    rng = pair_rng(seed, split, index)
    stills = load_stills(split, None if stills_dir is None else str(stills_dir))
    choice = int(rng.integers(len(stills)))
    image, view = random_view(stills[choice].pixels, rng, width, height)
    extra = {"seed": int(seed), "split": split, "index": int(index), "still": stills[choice].name, **view}
    volume = synthetic_volume(image, rng=rng, k=k, extra=extra)
    return image, volume


def random_view(pixels: np.ndarray, rng: np.random.Generator, width: int, height: int
                ) -> tuple[np.ndarray, dict[str, Any]]:
    """Random crop (aspect of ``width/height``, 40-100% of the largest), flip and colour jitter
    of a uint8 RGB still, resized to ``width x height``: float32 sRGB in [0, 1]."""
    h0, w0 = pixels.shape[:2]
    aspect = width / height
    cw_max = min(w0, h0 * aspect)
    s_min = min(1.0, max(0.4, width / (1.25 * cw_max)))  # at most 1.25x upsampling
    s = float(rng.uniform(s_min, 1.0))
    cw = max(2, min(w0, int(round(cw_max * s))))
    ch = max(2, min(h0, int(round(cw / aspect))))
    x0 = int(rng.integers(0, w0 - cw + 1))
    y0 = int(rng.integers(0, h0 - ch + 1))
    crop = pixels[y0 : y0 + ch, x0 : x0 + cw]
    interp = cv2.INTER_AREA if (width < cw and height < ch) else cv2.INTER_LINEAR
    img = cv2.resize(crop, (width, height), interpolation=interp).astype(np.float32) * np.float32(1 / 255)
    flip = bool(rng.random() < 0.5)
    if flip:
        img = img[:, ::-1]
    # colour jitter: gamma, brightness, contrast, saturation, white balance
    gamma = float(np.exp(rng.uniform(-0.2, 0.2)))
    gains = (rng.uniform(0.85, 1.15) * rng.uniform(0.94, 1.06, size=3)).astype(np.float32)
    contrast = np.float32(rng.uniform(0.8, 1.2))
    saturation = np.float32(rng.uniform(0.7, 1.3))
    img = np.power(img, np.float32(gamma)) * gains
    luma = img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    img = luma[:, :, None] + saturation * (img - luma[:, :, None])
    mean = np.float32(luma.mean())
    img = mean + contrast * (img - mean)
    img = np.ascontiguousarray(np.clip(img, 0.0, 1.0), dtype=np.float32)
    view = {"crop": [x0, y0, cw, ch], "flip": flip}
    return img, view


def synthetic_volume(
    image: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
    seed: int = 0,
    k: int = DEFAULT_K,
    fps: float = DEFAULT_FPS,
    num_frames: int = DEFAULT_FRAMES,
    extra: dict[str, Any] | None = None,
) -> SpectralVolume:
    """A plausible, exact spectral volume for ``image`` (float (H, W, 3) sRGB in [0, 1]).

    ``rng`` (or a fresh one from ``seed``) drives every random choice; see the module doc for
    the model. The result is anchored and bounded by ``MAX_DISPLACEMENT_PX * W / 256``.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 8 or img.shape[1] < 8:
        raise InputError(f"synthetic_volume needs an (H, W, 3) image of at least 8x8, got {img.shape}")
    if not (1 <= k <= num_frames // 2):
        raise InputError(f"K={k} does not fit {num_frames} frames")
    rng = rng if rng is not None else np.random.default_rng(seed)
    height, width = img.shape[:2]
    px = width / REFERENCE_WIDTH  # pixels per reference pixel
    freqs = np.arange(k, dtype=np.float64) * fps / num_frames

    w2, h2 = max(8, -(-width // _WORK_FACTOR)), max(8, -(-height // _WORK_FACTOR))
    small = cv2.resize(img, (w2, h2), interpolation=cv2.INTER_AREA)
    texture = _texture_weight(small)  # (h2, w2) in [0, 1]: 0 on flat areas
    # Objects move as a whole, flat interiors included (flow fills them in from their edges),
    # so the texture gate is coarse: large flat areas (sky), even inside a region the
    # segmentation merged with something textured, get zero; the rest of a region moves fully.
    # (the 0.05 offset cuts the blur's tail: flat areas more than ~1.6 sigma = 10 px at 256x160
    # from any texture get exactly 0)
    coarse = cv2.GaussianBlur(texture, (0, 0), 3.0 * min(w2, h2) / 80.0)
    pixel_weight = np.clip((coarse - 0.05) / 0.25, 0.0, 1.0)
    labels, n_regions = _segment(small, pixel_weight, rng)
    masks = _soft_masks(labels, n_regions)  # (R, h2, w2), sums to 1

    ys = (np.arange(h2, dtype=np.float32) + 0.5) / h2  # 0 at the top, 1 at the bottom
    global_profile = np.broadcast_to((1.0 - ys)[:, None], (h2, w2))  # free at the top of the image

    amp_image = float(np.exp(rng.uniform(math.log(0.5), math.log(5.0)))) * px  # px, peak sinusoid
    gust = _gust_spectrum(freqs, rng)
    gust_dir = float(rng.normal(0.0, 0.25))
    spatial: list[np.ndarray] = []
    spectra: list[np.ndarray] = []  # (k, 2) complex per spatial map
    regions_meta = []
    for r in range(n_regions):
        hard = labels == r
        area = float(hard.mean())
        tex = float(pixel_weight[hard].mean()) if area > 0 else 0.0
        unlucky = rng.random() < 0.1  # a textured region that does not move (rock, wall)
        static = area < 0.002 or tex < 0.25 or unlucky
        # draw the region's parameters even when static, so one region's fate does not
        # reshuffle the others' random numbers
        params = _region_params(rng, freqs)
        if static:
            regions_meta.append({"static": True})
            continue
        rows = np.nonzero(hard.any(axis=1))[0]
        top, bottom = float(rows[0]) / h2, float(rows[-1] + 1) / h2
        anchor = params["anchor"]
        span = max(bottom - top, 2.0 / h2)
        if anchor == "bottom":
            local = np.clip((bottom - ys) / span, 0.0, 1.0)
        elif anchor == "top":
            local = np.clip((ys - top) / span, 0.0, 1.0)
        else:
            local = np.ones_like(ys)
        local = local ** params["shape_gamma"]
        beta = params["global_mix"]
        profile = (1.0 - beta) * local[:, None] + beta * global_profile  # (h2, w2)
        base_map = masks[r] * profile * pixel_weight
        gain = amp_image * params["gain"] * (0.6 + 0.4 * tex)
        spec_low = np.zeros((k, 2), dtype=np.complex128)
        spec_high = np.zeros((k, 2), dtype=np.complex128)
        for m, mode in enumerate(params["modes"]):
            target = spec_low if m == 0 else spec_high
            target[:, 0] += mode["spectrum"] * math.cos(mode["angle"])
            target[:, 1] += mode["spectrum"] * math.sin(mode["angle"]) * np.exp(1j * mode["ellipticity"])
        # the shared gust, through this region's own resonance
        gust_r = gust * params["modes"][0]["response"] * params["gust_share"]
        spec_low[:, 0] += gust_r * math.cos(gust_dir)
        spec_low[:, 1] += gust_r * math.sin(gust_dir)
        spatial.append(base_map)
        spectra.append(spec_low * gain)
        if len(params["modes"]) > 1:  # higher modes bend the free end more than the middle
            spatial.append(base_map * profile)
            spectra.append(spec_high * gain)
        regions_meta.append({"static": False, "anchor": anchor,
                             "f0_hz": [round(m["f0"], 3) for m in params["modes"]]})

    coeffs_low = np.zeros((k, 2, h2 * w2), dtype=np.complex128)
    if spatial:
        maps = np.stack([s.reshape(-1) for s in spatial]).astype(np.float64)  # (J, P)
        vec = np.stack(spectra).reshape(len(spectra), k * 2)  # (J, 2k)
        coeffs_low = (vec.T @ maps).reshape(k, 2, h2 * w2)
        coeffs_low *= _travel_phase(freqs, h2, w2, rng)[:, None, :]
    # anchor: F(0) = S_0 + 2 sum_k Re S_k = 0, so S_0 (the mean displacement) is real
    coeffs_low[0] = -2.0 * coeffs_low[1:].real.sum(axis=0)
    # bound the displacement over the clip's frames; checked on the working grid, which
    # bounds the output too (bilinear upsampling only takes convex combinations)
    limit = MAX_DISPLACEMENT_PX * px
    scale = _displacement_scale(coeffs_low, num_frames, limit)
    coeffs_low *= scale

    packed = np.empty((h2, w2, k * 4), dtype=np.float32)
    view = packed.reshape(h2, w2, k, 4)
    grid = coeffs_low.reshape(k, 2, h2, w2).transpose(2, 3, 0, 1)  # (h2, w2, k, 2)
    view[..., 0], view[..., 1] = grid[..., 0].real, grid[..., 0].imag
    view[..., 2], view[..., 3] = grid[..., 1].real, grid[..., 1].imag
    full = cv2.resize(packed, (width, height), interpolation=cv2.INTER_LINEAR) if (w2, h2) != (width, height) else packed
    coeffs = np.ascontiguousarray(full.reshape(height, width, k, 4).transpose(2, 3, 0, 1))
    coeffs[0, 1] = 0.0
    coeffs[0, 3] = 0.0
    meta = {"amplitude_px": round(amp_image * scale, 4), "regions": regions_meta}
    meta.update(extra or {})
    return SpectralVolume(coeffs, fps=float(fps), num_frames=int(num_frames), source="synthetic",
                          extra=meta).anchored()


def motion_texture_check(volume: SpectralVolume, max_displacement: float | None = None) -> dict[str, Any]:
    """Sanity of a volume's motion texture: finite, periodic (``t`` and ``t + T`` agree and the
    loop's closing step is no bigger than twice the largest frame step), anchored, and the largest displacement (px) under ``max_displacement``
    (default ``MAX_DISPLACEMENT_PX`` scaled to the width, plus a 20% margin)."""
    if max_displacement is None:
        max_displacement = 1.2 * MAX_DISPLACEMENT_PX * volume.width / REFERENCE_WIDTH
    tex = volume.to_motion_texture()  # (T, 2, H, W)
    finite = bool(np.isfinite(tex).all())
    mag = np.sqrt(np.square(tex).sum(axis=1))
    steps = np.sqrt(np.square(np.diff(tex, axis=0)).sum(axis=1)).max()
    wrap = np.sqrt(np.square(tex[0] - tex[-1]).sum(axis=0)).max()
    late = volume.displacement_at(float(volume.num_frames) + 7.0)
    early = volume.displacement_at(7.0)
    report = {
        "finite": finite,
        "max_displacement": float(mag.max()),
        "max_step": float(steps),
        "wrap_step": float(wrap),
        "period_error": float(np.abs(late - early).max()),
        "f0_error": float(np.abs(volume.displacement_at(0.0)).max()),
    }
    report["ok"] = bool(
        finite
        and report["max_displacement"] < max_displacement
        and report["wrap_step"] <= 2.0 * report["max_step"] + 1e-4
        and report["period_error"] < 1e-4
        and report["f0_error"] < 1e-4
    )
    return report


# ----------------------------------------------------------------------------- internals
def _displacement_scale(coeffs: np.ndarray, num_frames: int, limit: float) -> float:
    """Factor (<= 1) that keeps ``|F_t(p)| <= limit`` at every frame ``t`` for complex
    ``coeffs`` (k, 2, P) of an anchored volume.

    Exact, and cheap: pixels are visited in decreasing order of their triangle-inequality bound
    ``|S_0| + 2 sum_k |S_k|`` and evaluated in time only until that bound falls below both the
    limit and the largest displacement found so far (no later pixel can beat either)."""
    k = coeffs.shape[0]
    mags = np.sqrt(np.square(np.abs(coeffs)).sum(axis=1))  # (k, P)
    bound = mags[0] + 2.0 * mags[1:].sum(axis=0)
    order = np.argsort(-bound, kind="stable")
    if len(order) == 0 or bound[order[0]] <= limit:
        return 1.0
    theta = 2.0 * np.pi * np.outer(np.arange(num_frames), np.arange(k)) / num_frames  # (T, k)
    weight = np.full(k, 2.0)
    weight[0] = 1.0
    basis = np.concatenate([weight * np.cos(theta), -weight * np.sin(theta)], axis=1).astype(np.float32)
    peak = 0.0
    for start in range(0, len(order), 1024):
        idx = order[start : start + 1024]
        if bound[idx[0]] <= max(limit, peak):
            break
        sub = coeffs[:, :, idx]  # (k, 2, n)
        stacked = np.concatenate([sub.real, sub.imag], axis=0).reshape(2 * k, -1).astype(np.float32)
        disp = (basis @ stacked).reshape(num_frames, 2, len(idx))
        peak = max(peak, float(np.sqrt(np.square(disp).sum(axis=1)).max()))
    return min(1.0, limit / peak) if peak > limit else 1.0


def _texture_weight(small: np.ndarray) -> np.ndarray:
    """Per-pixel texture in [0, 1]: local luminance standard deviation through a smoothstep.

    Sky, plain walls and smooth gradients (std < ~0.01) give 0, foliage and grass ~1."""
    gray = small @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    mean = cv2.GaussianBlur(gray, (0, 0), 1.2)
    var = cv2.GaussianBlur(gray * gray, (0, 0), 1.2) - mean * mean
    std = np.sqrt(np.maximum(var, 0.0))
    t = np.clip((std - 0.012) / (0.045 - 0.012), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def _segment(small: np.ndarray, texture: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """SLIC-like k-means on (Lab, coarse texture, x, y): ``(h, w)`` int labels and their count."""
    h, w = texture.shape
    n = int(rng.integers(5, 13))
    compact = float(rng.uniform(0.6, 1.6))
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2Lab)  # L 0..100, a/b about -100..100
    grid_step = math.sqrt(h * w / n)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    feats = np.concatenate(
        [lab / np.float32(12.0), texture[..., None] * np.float32(2.0),
         (xx[..., None] / grid_step) * compact, (yy[..., None] / grid_step) * compact], axis=2
    ).reshape(-1, 6).astype(np.float32)
    sub = feats.reshape(h, w, 6)[::2, ::2].reshape(-1, 6)
    centers = sub[rng.choice(len(sub), size=n, replace=False)].copy()
    for _ in range(8):
        lab_sub = _nearest(sub, centers)
        for c in range(n):
            members = sub[lab_sub == c]
            if len(members):
                centers[c] = members.mean(axis=0)
    labels = _nearest(feats, centers).reshape(h, w)
    used = np.unique(labels)  # relabel to 0..R-1 without empty clusters
    remap = np.zeros(n, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return remap[labels], len(used)


def _nearest(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    d = (points * points).sum(1)[:, None] - 2.0 * points @ centers.T + (centers * centers).sum(1)[None, :]
    return np.argmin(d, axis=1)


def _soft_masks(labels: np.ndarray, n: int) -> np.ndarray:
    onehot = (labels[..., None] == np.arange(n)[None, None, :]).astype(np.float32)  # (h, w, R)
    blurred = np.empty_like(onehot)
    for start in range(0, n, 4):  # blur 4 channels at a time (any OpenCV build takes 4)
        chunk = np.ascontiguousarray(onehot[..., start : start + 4])
        out = cv2.GaussianBlur(chunk, (0, 0), 1.0)
        blurred[..., start : start + 4] = out.reshape(chunk.shape)
    blurred /= np.maximum(blurred.sum(axis=2, keepdims=True), 1e-6)
    return np.ascontiguousarray(blurred.transpose(2, 0, 1))


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(math.log(lo), math.log(hi))))


def _oscillator(freqs: np.ndarray, f0: float, zeta: float) -> np.ndarray:
    """|H(f)| of a damped oscillator, 1 at f = 0, 1 / (2 zeta) at resonance, ~(f0/f)^2 above."""
    r = freqs / f0
    return 1.0 / np.sqrt((1.0 - r * r) ** 2 + (2.0 * zeta * r) ** 2)


def _random_phase_spectrum(rng: np.random.Generator, magnitude: np.ndarray) -> np.ndarray:
    """``magnitude`` with a little log-normal jitter and uniform random phases; DC = 0; the
    largest bin is scaled to 0.5 (a 1 px peak sinusoid)."""
    k = len(magnitude)
    mag = magnitude * np.exp(rng.normal(0.0, 0.25, size=k))
    spec = mag * np.exp(2j * np.pi * rng.random(k))
    spec[0] = 0.0
    peak = np.abs(spec).max()
    return spec * (0.5 / peak) if peak > 0 else spec


def _region_params(rng: np.random.Generator, freqs: np.ndarray) -> dict[str, Any]:
    """A region's dynamics: 1-3 resonant modes, anchoring, gains; a fixed number of draws."""
    n_modes = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2]))
    wind_scale = float(rng.uniform(0.6, 1.5))  # Hz: e-folding of the wind's forcing spectrum
    forcing = np.exp(-freqs / wind_scale)
    modes = []
    f0 = _loguniform(rng, 0.2, 1.6)
    for m in range(3):  # always draw 3 so later regions see the same stream
        zeta = _loguniform(rng, 0.05, 0.35)
        response = _oscillator(freqs, f0, zeta)
        spectrum = _random_phase_spectrum(rng, response * forcing)
        rel = 1.0 if m == 0 else float(rng.uniform(0.15, 0.6)) / m
        if rng.random() < 0.15:  # a vertical mode (leaves bobbing, water)
            angle = math.pi / 2 + float(rng.normal(0.0, 0.3))
        else:
            angle = float(rng.normal(0.0, 0.35))
        ellipticity = float(rng.normal(0.0, 0.4))
        if m < n_modes:
            modes.append({"f0": f0, "zeta": zeta, "response": response, "spectrum": spectrum * rel,
                          "angle": angle, "ellipticity": ellipticity})
        f0 = min(f0 * float(rng.uniform(1.6, 3.5)), 3.0)
    anchor = str(rng.choice(["bottom", "top", "uniform"], p=[0.75, 0.1, 0.15]))
    return {
        "modes": modes,
        "anchor": anchor,
        "shape_gamma": float(rng.uniform(0.7, 2.0)),
        "global_mix": float(rng.uniform(0.2, 0.8)),
        "gain": _loguniform(rng, 0.5, 1.5),
        "gust_share": float(rng.uniform(0.0, 0.7)),
    }


def _gust_spectrum(freqs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The image-wide low-frequency wind gust (e-folding 0.15-0.4 Hz)."""
    return _random_phase_spectrum(rng, np.exp(-freqs / float(rng.uniform(0.15, 0.4))))


def _travel_phase(freqs: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """``exp(-2 pi i f_k tau(p))``, (k, h*w): a gust front crossing the image with a delay
    ``tau`` of up to 0.5 s across it, plus a smooth random wobble."""
    direction = float(rng.normal(0.0, 0.5)) + (math.pi if rng.random() < 0.5 else 0.0)
    spread = float(rng.uniform(0.0, 0.5))  # seconds across the image's diagonal extent
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    proj = (xx * math.cos(direction) + yy * math.sin(direction)) / float(max(h, w))
    wobble_small = rng.normal(0.0, 1.0, size=(4, 6)).astype(np.float32)
    wobble = cv2.resize(wobble_small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    tau = spread * (proj - proj.mean()) + 0.05 * wobble
    return np.exp(-2j * np.pi * freqs[:, None] * tau.reshape(1, -1))
