"""Evaluating the motion prior on held-out pairs: ``gid eval`` (prints a markdown table).

Data: held-out synthetic pairs (``synthetic_pair(i, split="eval")``: stills never seen in
training) and held-out real clips (``real_pairs``: motion extracted from the clip with
``extract_motion``, the start frame as the image; the shipped model never trains on them).

Metrics (per pair, then averaged), all on the 256x160, K=16 volumes in pixels:

* **spectrum log-err** (lower is better): the per-frequency motion power
  ``P_k = mean_p |S_k,x(p)|^2 + |S_k,y(p)|^2`` compared as
  ``mean_k |log10((P_k^pred + eps) / (P_k^ref + eps))|``, ``eps = 1e-4 px^2`` (an amplitude of
  0.01 px, invisible: bins both below it count as right). 1.0 = off by 10x in power on average.
* **magnitude corr** (higher is better): Pearson correlation between the motion-magnitude maps
  ``W(p) = mean_t |F_t(p)|`` of prediction and reference (where things move). Undefined (n/a)
  for a prediction without motion.
* **amplitude ratio** (1 is right): ``mean_p W_pred / mean_p W_ref``.
* **seam L_g** (px): eq. 5's loop loss of the volume (see ``pipeline.loop_loss``).
* **VAE recon L1**: the reference volume normalized, encoded (posterior mean) and decoded, mean
  absolute error in normalized units (the paper's 0.024 / 0.018 are in those units on its data),
  and the same error in pixels after denormalization. An upper bound on the prior's accuracy.

Baselines:

* **no motion**: all coefficients zero (the still itself).
* **static flow (oracle)**: the Eulerian single-static-field model of Holynski et al. 2021, adapted
  to oscillation: one velocity field ``M(p)``, fixed over time, integrated with a sinusoidal
  time profile, ``F_t(p) = M(p) sin(2 pi f* t)``. ``M(p)`` is taken from the *reference* itself
  (oracle): the principal direction of the pixel's reference trajectory times ``sqrt(2)`` x its RMS
  displacement along it; ``f*`` is one global frequency, the bin with the largest training-set
  95th-percentile magnitude excluding DC (from the model's ``normalization.json``). So it knows
  where and in which direction things move and how much, but has one frequency and one phase
  for the whole image: what a single static flow field can express at best.
* **static flow (learned)**: the same model with ``M(p)`` predicted from the image alone by a small
  U-Net trained on the prior's training pairs (``static_flow.py``; shown when its weights are
  installed): the fair Eulerian baseline.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ...gid_engine.errors import InputError
from ...gid_engine.repo_data import DEFAULT_STILL_SET, TREE_CLIP
from ...gid_engine.motion.spectral_volume import SpectralVolume
from ...gid_engine.prediction.baselines import static_flow_baseline

EPS_POWER = 1e-4


# the one licensed real clip of oscillatory motion here: every prior evaluation holds it out, and
# `gid train` refuses it as training data (by content)
HELD_OUT_REAL = TREE_CLIP


@dataclass
class EvalArgs:
    weights: Path
    n: int = 8
    steps: Optional[int] = None
    seed: int = 0
    real: list[str] = field(default_factory=lambda: [str(HELD_OUT_REAL)])
    real_pairs: int = 2
    seam: int = 2
    seam_steps: int = 25
    json_path: Optional[str] = None
    device: str = "auto"
    guidance: Optional[float] = None  # classifier-free guidance scale w (default: the model's)
    # samples per pair (seeds seed + i + r * pairs): one draw of the real clip's two pairs moves its
    # figures by +-0.04, so models are compared on the mean and spread over repeats
    repeats: int = 1
    # < 1: Eulerian-initialised sampling (eulerian_init.py); None: what gid predict does by default
    init_strength: Optional[float] = None
    stills: str = DEFAULT_STILL_SET  # still set whose held-out split gives the synthetic pairs (v2: 4 held-out stills)
    static_flow: Optional[Path] = None  # the learned Eulerian baseline's weights (default: the shipped ones)
    sim: Sequence[Path] = ()  # folders of simulated shards whose held-out (eval) scenes are evaluated too, a row each


# ----------------------------------------------------------------------------- metrics
def power_spectrum(coeffs: np.ndarray) -> np.ndarray:
    c = coeffs.astype(np.float64)
    return (c[:, 0] ** 2 + c[:, 1] ** 2 + c[:, 2] ** 2 + c[:, 3] ** 2).mean(axis=(1, 2))


def spectrum_log_error(pred: np.ndarray, ref: np.ndarray, eps: float = EPS_POWER) -> float:
    return float(np.mean(np.abs(np.log10((power_spectrum(pred) + eps) / (power_spectrum(ref) + eps)))))


def magnitude_map(vol: SpectralVolume) -> np.ndarray:
    return vol.mean_magnitude(samples=50)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel().astype(np.float64) - a.mean()
    b = b.ravel().astype(np.float64) - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-12 else float("nan")


def dominant_bin(scales: np.ndarray) -> int:
    s = np.asarray(scales, dtype=np.float64)
    return int(np.argmax(s[1:]) + 1) if len(s) > 1 else 0


def pair_metrics(pred: SpectralVolume, ref: SpectralVolume, ref_mag: np.ndarray) -> dict[str, float]:
    from .pipeline import seam_error

    mag = magnitude_map(pred)
    return {
        "spectrum_log_err": spectrum_log_error(pred.coeffs, ref.coeffs),
        "magnitude_corr": correlation(mag, ref_mag),
        "amplitude_ratio": float(mag.mean() / max(float(ref_mag.mean()), 1e-9)),
        "seam_px": seam_error(pred),
    }


def eval_real_pairs(clip: str | Path, cfg, max_pairs: int) -> list[tuple[np.ndarray, SpectralVolume]]:
    """The held-out ``(image, volume)`` pairs of a real clip as ``gid eval prior`` takes them: every 30th
    frame a start, at the size and frequency count of the prior's config ``cfg``."""
    from .data import real_pairs

    return real_pairs([clip], every=30, width=cfg.width, height=cfg.height, max_pairs=max_pairs,
                      k=cfg.num_frequencies)


def score_learned_static_flow(net, pairs: list, k_star: int) -> dict[str, float]:
    """Mean metrics of the learned Eulerian network ``net`` over ``(image, reference)`` pairs, each
    reference anchored, as the "static flow (learned)" row scores it."""
    from .static_flow import learned_static_flow

    rows = []
    for image, ref in pairs:
        ref = ref.anchored()
        rows.append(pair_metrics(learned_static_flow(net, image, ref, k_star), ref, magnitude_map(ref)))
    return {k: float(np.mean([r[k] for r in rows])) for k in ("spectrum_log_err", "magnitude_corr", "amplitude_ratio")}


def vae_recon_error(pipe, ref: SpectralVolume) -> dict[str, float]:
    import torch

    norm = pipe.normalizer.normalize(ref.coeffs)
    with torch.no_grad():
        x = torch.from_numpy(norm).to(pipe.device)
        rec = pipe.vae.decode(pipe.vae.encode(x).mode()).float().cpu().numpy()
    px = pipe.normalizer.denormalize(rec)
    return {"vae_l1_norm": float(np.abs(rec - norm).mean()), "vae_l1_px": float(np.abs(px - ref.coeffs).mean())}


# ----------------------------------------------------------------------------- run
def run_eval(args: EvalArgs, log: Callable[[str], None] = print) -> dict:
    from ..torch_backend import torch_device
    from ...gid_engine.prediction.predict import init_strength_for
    from .data import synthetic_pair
    from .weights import load_weights

    if args.repeats < 1:
        raise InputError(f"--repeats must be >= 1, got {args.repeats}")
    from ...gid_engine.prediction.eulerian_init import check_strength

    asked = None if args.init_strength is None else check_strength(args.init_strength)
    pipe = load_weights(Path(args.weights), device=torch_device(args.device))
    strength = init_strength_for(pipe, asked)
    cfg = pipe.config
    k_star = dominant_bin(pipe.normalizer.scales)
    datasets: dict[str, list[tuple[np.ndarray, SpectralVolume]]] = {}
    from .data.synthetic import still_splits

    eval_split = still_splits(args.stills)[1]
    synthetic_name = "synthetic (eval split)" if eval_split == "eval" else f"synthetic ({eval_split} split)"
    datasets[synthetic_name] = [
        synthetic_pair(i, seed=args.seed, split=eval_split, width=cfg.width, height=cfg.height, k=cfg.num_frequencies)
        for i in range(args.n)
    ]
    real: list[tuple[np.ndarray, SpectralVolume]] = []
    for clip in args.real or []:
        if not Path(clip).exists():
            log(f"eval: skipping missing clip {clip}")
            continue
        real += eval_real_pairs(clip, cfg, args.real_pairs)
    if real:
        datasets["real (" + ", ".join(Path(c).name for c in args.real) + ")"] = real
    if args.sim:
        from ..simdata.datasets import held_out_label, sim_pairs

        for folder in args.sim:
            label = held_out_label("simulated (held-out scenes)", args.sim, folder)
            datasets[label] = sim_pairs(folder, "eval", limit=max(args.n, 1))
    datasets = {name: pairs for name, pairs in datasets.items() if pairs}  # --n 0: the real clips alone
    if not datasets:
        raise InputError("nothing to evaluate: --n is 0 and no real clip was found")
    steps = int(args.steps or cfg.default_steps)
    from .static_flow import learned_static_flow, load_static_flow

    learned = load_static_flow() if args.static_flow is None else load_static_flow(Path(args.static_flow))
    if learned is None and args.static_flow is not None:
        raise InputError(f"no static-flow weights in {args.static_flow}")
    if learned is not None:
        learned = learned.to(pipe.device)
    init = f", Eulerian init {strength:g}" if strength < 1.0 else ""
    methods = [f"prior ({cfg.name}, {steps} steps{init})", "no motion", "static flow (oracle)"]
    if learned is not None:
        methods.append("static flow (learned)")
    results: dict = {"config": cfg.name, "steps": steps, "k_star": k_star,
                     "guidance": float(args.guidance if args.guidance is not None else cfg.guidance_scale),
                     "init_strength": strength,
                     "f_star_hz": k_star * cfg.fps / cfg.num_frames, "datasets": {}}
    t0 = time.perf_counter()
    sample_seconds = []
    for dname, pairs in datasets.items():
        per: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
        by_repeat: list[list[dict[str, float]]] = [[] for _ in range(args.repeats)]
        vae_err: list[dict[str, float]] = []
        for i, (image, ref) in enumerate(pairs):
            ref = ref.anchored()
            ref_mag = magnitude_map(ref)
            for r in range(args.repeats):
                ts = time.perf_counter()
                pred = pipe(image, steps=steps, seed=args.seed + i + r * len(pairs), guidance_scale=args.guidance,
                            init_strength=strength)
                sample_seconds.append(time.perf_counter() - ts)
                by_repeat[r].append(pair_metrics(pred, ref, ref_mag))
                per[methods[0]].append(by_repeat[r][-1])
            zeros = ref.replace(coeffs=np.zeros_like(ref.coeffs))
            per[methods[1]].append(pair_metrics(zeros, ref, ref_mag))
            per[methods[2]].append(pair_metrics(static_flow_baseline(ref, k_star), ref, ref_mag))
            if learned is not None:
                per[methods[3]].append(pair_metrics(learned_static_flow(learned, image, ref, k_star), ref, ref_mag))
            vae_err.append(vae_recon_error(pipe, ref))
            log(f"eval: {dname} {i + 1}/{len(pairs)} ({time.perf_counter() - t0:.0f}s)")
        results["datasets"][dname] = {
            "n": len(pairs),
            "methods": {m: _mean(v) for m, v in per.items()},
            "repeats": args.repeats,
            "vae": _mean(vae_err),
            "ref_mean_motion_px": float(np.mean([magnitude_map(r.anchored()).mean() for _, r in pairs])),
        }
        if args.repeats > 1:  # the spread of the prior's figures between draws (sd of per-repeat means)
            results["datasets"][dname]["prior_sd"] = _spread([_mean(rows) for rows in by_repeat])
    results["seconds_per_sample"] = float(np.mean(sample_seconds)) if sample_seconds else None
    if args.seam > 0 and args.n > 0:
        results["seam"] = seam_comparison(pipe, datasets[synthetic_name][: args.seam], args.seam_steps,
                                          args.seed, log)
    table = format_table(results)
    print(table)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))
    return results


def seam_comparison(pipe, pairs, steps: int, seed: int, log) -> dict:
    """Eq. 5's L_g of volumes sampled with and without motion self-guidance (same seeds)."""
    rows = {"without": [], "with": []}
    secs = {"without": [], "with": []}
    for i, (image, _) in enumerate(pairs):
        for key, sg in (("without", False), ("with", True)):
            t = time.perf_counter()
            vol = pipe(image, steps=steps, seed=seed + i, self_guidance=sg)
            secs[key].append(time.perf_counter() - t)
            rows[key].append(vol.extra["seam_error_px"])
        log(f"eval: seam {i + 1}/{len(pairs)}: L_g {rows['without'][-1]:.4f} -> {rows['with'][-1]:.4f} px")
    return {"steps": steps, "n": len(pairs), "without_px": float(np.mean(rows["without"])),
            "with_px": float(np.mean(rows["with"])), "seconds_without": float(np.mean(secs["without"])),
            "seconds_with": float(np.mean(secs["with"])), "per_pair": rows}


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    out = {}
    for key in rows[0] if rows else []:
        vals = np.array([r[key] for r in rows], dtype=np.float64)
        finite = vals[np.isfinite(vals)]
        out[key] = float(finite.mean()) if len(finite) else float("nan")
    return out


def _spread(means: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.nanstd([m[key] for m in means], ddof=1)) for key in means[0]}


def _fmt(v: float, nd: int = 3) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{nd}f}"


def format_table(results: dict) -> str:
    lines = ["| data | method | spectrum log-err ↓ | magnitude corr ↑ | amplitude ratio (1) | seam L_g px ↓ |",
             "|---|---|---|---|---|---|"]
    for dname, d in results["datasets"].items():
        for m, r in d["methods"].items():
            sd = d.get("prior_sd") if m.startswith("prior") else None

            def cell(key: str, nd: int = 3) -> str:
                return _fmt(r[key], nd) + (f" ± {_fmt(sd[key], nd)}" if sd else "")

            rep = f", {d['repeats']} draws" if sd else ""
            lines.append(f"| {dname} (n={d['n']}{rep}) | {m} | {cell('spectrum_log_err')} | {cell('magnitude_corr')} "
                         f"| {cell('amplitude_ratio')} | {cell('seam_px', 4)} |")
    lines += ["", "| data | VAE recon L1 (normalized) | VAE recon L1 (px) | reference mean motion (px) |",
              "|---|---|---|---|"]
    for dname, d in results["datasets"].items():
        lines.append(f"| {dname} | {_fmt(d['vae']['vae_l1_norm'], 4)} | {_fmt(d['vae']['vae_l1_px'], 5)} "
                     f"| {_fmt(d['ref_mean_motion_px'])} |")
    if "seam" in results:
        s = results["seam"]
        lines += ["", f"| seam (eq. 5 L_g, px, n={s['n']}, {s['steps']} steps) | without self-guidance "
                      f"| with (w=1.75, u=200, 2 recurrences) |", "|---|---|---|",
                  f"| mean L_g | {_fmt(s['without_px'], 4)} | {_fmt(s['with_px'], 4)} |",
                  f"| seconds / sample | {_fmt(s['seconds_without'], 1)} | {_fmt(s['seconds_with'], 1)} |"]
    lines.append("")
    lines.append(f"static-flow baseline frequency f* = {results['f_star_hz']:.2f} Hz (bin {results['k_star']}); "
                 f"prior sampling {_fmt(results.get('seconds_per_sample') or float('nan'), 1)} s/sample")
    return "\n".join(lines)
