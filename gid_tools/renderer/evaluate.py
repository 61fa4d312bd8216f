"""``gid eval render``: the neural renderer against the plain splat + push-pull renderer.

Held-out data only: synthetic triples of the held-out stills of the chosen still set (exact
motion and exact disoccluded content), the same frames with the flow gid's extraction finds
between them (what a real triple carries, so the gap between the two rows is the flow's, not the
pictures'), and the held-out part of each real clip (frames after the training split, DIS flow).
For every triple both renderers draw ``I_t`` from ``I0`` and the motion; we report PSNR (dB),
SSIM and the perceptual distance (EfficientNet-Lite0 features, lower is better) over the whole
frame and over the *disoccluded* pixels: those the plain splat leaves uncovered (coverage <
``FULL_COVERAGE``), i.e. where content must be invented, dilated by 2 px.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ...exporters.opencv import cv2
from ..motion_prior.data.synthetic import still_splits
from ...gid_engine.repo_data import DEFAULT_STILL_SET
from ..splat_torch import disocclusion_mask as splat_disocclusion_mask
from .checkpoint import WEIGHTS_DIR, load_renderer
from .data import Triple, real_triples, sim_triples, synthetic_triple, with_extracted_flow
from .train import DEFAULT_REAL


@dataclass
class RenderEvalArgs:
    weights: Path = WEIGHTS_DIR
    n: int = 32  # held-out synthetic triples; 0: no synthetic rows (only --sim, --sim-extracted and the clips)
    seed: int = 0
    real: tuple = field(default_factory=lambda: tuple(str(p) for p in DEFAULT_REAL))
    json_path: Optional[str] = None
    stills: str = DEFAULT_STILL_SET  # whose held-out stills make the synthetic triples
    sim: Sequence[Path] = ()  # folders of simulated shards whose held-out (eval) triples are evaluated too, a row each
    # folders whose held-out triples are scored again with the flow gid's extraction finds between their frames
    # (what a real clip hands the renderer), a row each
    sim_extracted: Sequence[Path] = ()
    against: Optional[Path] = None  # another renderer: the paired gain over it too (what a ship rule compares)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = (a - b) ** 2
    mse = float(d.mean()) if mask is None else float((d * mask).sum() / max(mask.sum() * d.shape[0], 1e-9))
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5) over channels, images (C, H, W) in [0, 1]."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    vals = []
    for x, y in zip(a.astype(np.float64), b.astype(np.float64)):
        blur = lambda m: cv2.GaussianBlur(m, (11, 11), 1.5)  # noqa: E731
        mx, my = blur(x), blur(y)
        sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        num = (2 * mx * my + c1) * (2 * sxy + c2)
        den = (mx * mx + my * my + c1) * (sxx + syy + c2)
        vals.append(float((num / den)[5:-5, 5:-5].mean()))
    return float(np.mean(vals))


def disocclusion_mask(tr: Triple) -> np.ndarray:
    """``(1, H, W)`` the triple's disoccluded pixels (``splat_torch.disocclusion_mask``)."""
    return splat_disocclusion_mask(torch.from_numpy(tr.flow[None]), torch.from_numpy(tr.z[None]))[0].numpy()


def evaluate_triples(model, triples: list[Triple], perceptual=None, against=None) -> dict[str, dict[str, float]]:
    """Mean metrics of the neural and the plain renderer over ``triples`` and the neural renderer's paired
    gain over the plain one; with ``against`` (another renderer) its metrics and the paired gain over it too."""
    rows: dict[str, list[dict[str, float]]] = {"neural": [], "splat": []} | ({"against": []} if against else {})
    for tr in triples:
        x = [torch.from_numpy(v[None]) for v in (tr.image, tr.flow, tr.z)]
        with torch.no_grad():
            frames = {"neural": model(*x), "splat": model.plain(*x)} | ({"against": against(*x)} if against else {})
        mask = disocclusion_mask(tr)
        target = torch.from_numpy(tr.target[None])
        for name, frame in frames.items():
            f = frame[0].clamp(0, 1).numpy()
            row = {"psnr": psnr(f, tr.target), "ssim": ssim(f, tr.target), "hole_fraction": float(mask.mean())}
            if mask.sum() >= 1:
                row["psnr_disoccluded"] = psnr(f, tr.target, mask)
            if perceptual is not None:
                with torch.no_grad():
                    row["perceptual"] = float(perceptual.distance(frame.clamp(0, 1), target)[0])
            rows[name].append(row)
    out = {}
    for name, rs in rows.items():
        keys = sorted({k for r in rs for k in r})
        out[name] = {k: float(np.mean([r[k] for r in rs if k in r])) for k in keys}
        out[name]["n"] = len(rs)
        out[name]["n_disoccluded"] = sum("psnr_disoccluded" in r for r in rs)
    for gain, other in (("gain", "splat"), ("gain_vs_against", "against")):
        if other not in rows:
            continue
        out[gain] = {}
        for key in ("psnr", "psnr_disoccluded"):
            pairs = [(a[key], b[key]) for a, b in zip(rows["neural"], rows[other]) if key in a]
            if pairs:
                out[gain][key] = paired_gain([a for a, _ in pairs], [b for _, b in pairs])
    return out


def paired_gain(neural: Sequence[float], splat: Sequence[float], blocks: int = 10, draws: int = 2000,
                seed: int = 0) -> dict[str, float]:
    """The mean of ``neural - splat`` over triples scored by both, with a 95 % interval from a block
    bootstrap: the triples, in the order they were made (a clip's in frame order), are cut into
    ``blocks`` contiguous blocks that are resampled whole, because neighbouring frame pairs of a clip
    share content and flow errors and would make an interval over single triples too narrow. Also
    the share of triples where the neural renderer is ahead. Fixed seed: the same scores give the
    same interval."""
    d = np.asarray(neural, dtype=np.float64) - np.asarray(splat, dtype=np.float64)
    chunks = [c for c in np.array_split(d, min(blocks, len(d))) if len(c)]
    sums = np.array([c.sum() for c in chunks])
    sizes = np.array([len(c) for c in chunks], dtype=np.float64)
    pick = np.random.default_rng(seed).integers(0, len(chunks), size=(draws, len(chunks)))
    means = sums[pick].sum(1) / sizes[pick].sum(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": float(d.mean()), "lo": float(lo), "hi": float(hi), "ahead": float((d > 0).mean()),
            "n": int(len(d))}


def run_render_eval(args: RenderEvalArgs, log: Callable[[str], None] = print) -> dict:
    from .perceptual import PerceptualFeatures

    model = load_renderer(args.weights)
    against = load_renderer(args.against) if args.against is not None else None
    perceptual = PerceptualFeatures()
    split = still_splits(args.stills)[1]
    held_out = [synthetic_triple(i, seed=args.seed, split=split) for i in range(args.n)]
    results = {} if not held_out else {
        "synthetic": evaluate_triples(model, held_out, perceptual, against),
        # the same frames with the motion real clips get (extracted, with its errors): how much
        # of the real-footage gap is the flow rather than the pictures
        "synthetic, extracted flow": evaluate_triples(model, [with_extracted_flow(t) for t in held_out],
                                                      perceptual, against)}
    from ..simdata.datasets import held_out_label

    for folder in args.sim:
        results[held_out_label("simulated held-out scenes", args.sim, folder)] = evaluate_triples(
            model, sim_triples(folder), perceptual, against)
    for folder in args.sim_extracted:
        results[held_out_label("simulated held-out scenes, extracted flow", args.sim_extracted, folder)] = (
            evaluate_triples(model, sim_triples(folder, extracted_flow=True), perceptual, against))
    for clip in args.real:
        results[f"real {Path(clip).name}"] = evaluate_triples(model, real_triples(clip, split="eval"), perceptual,
                                                              against)
    log(table(results))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=1))
    return results


def table(results: dict) -> str:
    """The renderers' mean metrics per data set, then the neural renderer's paired gain over the splat
    (and over the ``against`` renderer, when there is one) with its 95 % block-bootstrap interval
    (``paired_gain``)."""
    lines = ["| data | renderer | PSNR ↑ | PSNR disoccluded ↑ | SSIM ↑ | perceptual ↓ |", "|---|---|---|---|---|---|"]
    for data, by in results.items():
        for name in ("neural", "splat", "against"):
            if name not in by:
                continue
            r = by[name]
            lines.append(f"| {data} (n={r['n']}, holes {100 * r['hole_fraction']:.1f} %) | {name} | {r['psnr']:.2f} | "
                         f"{r.get('psnr_disoccluded', float('nan')):.2f} | {r['ssim']:.4f} | "
                         f"{r.get('perceptual', float('nan')):.4f} |")
    for gain, other in (("gain", "splat"), ("gain_vs_against", "against")):
        if not any(gain in by for by in results.values()):
            continue
        lines += ["", f"| data | neural − {other}, disoccluded (95 % interval, triples ahead) | whole frame |",
                  "|---|---|---|"]
        for data, by in results.items():
            cells = []
            for key in ("psnr_disoccluded", "psnr"):
                g = by.get(gain, {}).get(key)
                cells.append("n/a" if g is None else
                             f"{g['mean']:+.3f} dB ({g['lo']:+.3f} to {g['hi']:+.3f}, {100 * g['ahead']:.0f} %)")
            lines.append(f"| {data} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)
