"""Renderers handed extracted flow, scored on the *true* disocclusions (2026-12-04).

``gid eval render`` scores real clips on the pixels the plain splat leaves uncovered by the
extracted flow: with DIS flow those are not the true disocclusions (DIS interpolates across them,
so moved content covers most of them). On held-out synthetic triples the true disocclusions are
known (the plain splat's holes under the *exact* motion), so this asks: given the flow real clips
give, does the neural renderer fill the true holes better than the plain one?

    python tools/experiments/true_holes_extracted_flow.py NAME=WEIGHTS ... [--n 32] [--json F]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from gid.gid_tools.renderer.checkpoint import load_renderer
from gid.gid_tools.renderer.data import synthetic_triple, with_extracted_flow
from gid.gid_tools.renderer.evaluate import disocclusion_mask, psnr


def scores(model, triples, masks) -> dict[str, float]:
    out: dict[str, list[float]] = {"neural": [], "splat": []}
    for tr, mask in zip(triples, masks):
        if mask.sum() < 1:  # no disocclusion in this triple (as gid eval render, left out)
            continue
        x = [torch.from_numpy(v[None]) for v in (tr.image, tr.flow, tr.z)]
        with torch.no_grad():
            frames = {"neural": model(*x), "splat": model.plain(*x)}
        for name, frame in frames.items():
            out[name].append(psnr(frame[0].clamp(0, 1).numpy(), tr.target, mask))
    return {k: float(np.mean(v)) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("weights", nargs="+", help="NAME=FOLDER")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    exact = [synthetic_triple(i, split="eval") for i in range(args.n)]
    extracted = [with_extracted_flow(t) for t in exact]
    true_masks = [disocclusion_mask(t) for t in exact]
    extracted_masks = [disocclusion_mask(t) for t in extracted]
    pairs = [(a, b) for a, b in zip(true_masks, extracted_masks) if a.sum() >= 1]  # triples with true holes
    overlap = float(np.mean([(a * b).sum() / a.sum() for a, b in pairs]))
    pooled = float(sum((a * b).sum() for a, b in pairs) / sum(a.sum() for a, _ in pairs))
    print(f"true holes {np.mean([m.mean() for m in true_masks]):.3f} of the pixels; the extracted flow's holes "
          f"{np.mean([m.mean() for m in extracted_masks]):.3f}; share of the true holes they flag "
          f"{overlap:.3f} (mean over the {len(pairs)} triples with true holes), {pooled:.3f} (pooled pixels)")
    print("| weights | exact flow, true holes: neural / splat (dB) | extracted flow, true holes: neural / splat |")
    print("|---|---|---|")
    results = {"overlap": overlap, "overlap_pooled": pooled}
    for spec in args.weights:
        name, folder = spec.split("=", 1)
        model = load_renderer(Path(folder))
        a, b = scores(model, exact, true_masks), scores(model, extracted, true_masks)
        results[name] = {"exact": a, "extracted": b}
        print(f"| {name} | {a['neural']:.2f} / {a['splat']:.2f} ({a['neural'] - a['splat']:+.2f}) | "
              f"{b['neural']:.2f} / {b['splat']:.2f} ({b['neural'] - b['splat']:+.2f}) |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
