"""Real held-out frames rendered with the motion ``gid extract`` gives, not pair-fitted flow (2026-12-04).

``gid eval render`` hands each real pair the DIS flow between its two frames: flow fitted to the
very target, which helps the plain renderer where content is revealed and hides half the holes
(``true_holes_extracted_flow.py``). Here each held-out start frame ``s`` of a clip gets the clip's
spectral volume from ``s`` (``extract_motion``: 5 s at 30 fps, K = 16, anchored, as ``gid render``
receives motion), and frame ``s + g`` is rendered from frame ``s`` with ``F`` at the matching
time and ``W`` the volume's mean magnitude; both renderers are scored as ``gid eval render``
scores them (holes: the plain splat's uncovered pixels under this motion, dilated 2 px).

    python tools/experiments/real_holes_spectral_motion.py NAME=WEIGHTS ... [--json F]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from gid.exporters.opencv import cv2
from gid.gid_engine.errors import InputError
from gid.gid_engine.motion.extract import extract_motion
from gid.gid_tools.renderer.checkpoint import load_renderer
from gid.gid_tools.renderer.data import Triple, clip_split, with_extracted_flow
from gid.gid_tools.renderer.evaluate import evaluate_triples
from gid.gid_tools.renderer.perceptual import PerceptualFeatures
from gid.gid_tools.renderer.train import DEFAULT_REAL
from gid.gid_engine.media.video import open_frames


def spectral_triples(clip: Path, width: int = 256) -> tuple[list[Triple], list[Triple]]:
    """The held-out pairs with the clip's spectral motion, and the same pairs with pair-fitted DIS
    flow (as ``gid eval render`` scores them), so the two are compared on the same pairs."""
    source = open_frames(clip)
    height = max(4, 4 * round(width * source.size[1] / source.size[0] / 4))
    fps = float(source.fps)
    frames = [cv2.resize(np.clip(f.pixels[:, :, :3], 0, 1).astype(np.float32), (width, height),
                         interpolation=cv2.INTER_AREA) for f in source.frames(0)]
    split = clip_split(clip, len(frames))
    lo, hi = split.segments("eval", len(frames))[0]
    out, pair_fitted = [], []
    for s in range(lo, hi - 1):
        try:
            vol = extract_motion(clip, start_frame=s, resolution=(width, height)).anchored()
        except InputError:  # too little of the clip left after s for a volume (gid extract's own limit)
            continue
        z = vol.mean_magnitude()[None].astype(np.float32)
        for g in range(1, split.max_gap + 1):
            if s + g >= hi:
                break
            flow = vol.displacement_at(g * vol.fps / fps).astype(np.float32)  # volume frames at its own rate
            out.append(Triple(frames[s].transpose(2, 0, 1).copy(), flow, z, frames[s + g].transpose(2, 0, 1).copy()))
            pair_fitted.append(with_extracted_flow(out[-1]))
    return out, pair_fitted


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("weights", nargs="+", help="NAME=FOLDER")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    perceptual = PerceptualFeatures()
    data, same_pairs = {}, {}
    for p in DEFAULT_REAL:
        data[p.name], same_pairs[p.name] = spectral_triples(p)
    print("| weights | clip (n, holes) | neural: PSNR / disocc. / perceptual | splat: PSNR / disocc. / perceptual | disocc. margin |")
    print("|---|---|---|---|---|")
    results: dict = {}
    for spec in args.weights:
        name, folder = spec.split("=", 1)
        model = load_renderer(Path(folder))
        for clip, triples in data.items():
            r = evaluate_triples(model, triples, perceptual)
            results.setdefault(name, {})[clip] = r
            n, s = r["neural"], r["splat"]
            print(f"| {name} | {clip} ({n['n']}, {100 * n['hole_fraction']:.1f} %) | {n['psnr']:.2f} / "
                  f"{n['psnr_disoccluded']:.2f} / {n['perceptual']:.4f} | {s['psnr']:.2f} / {s['psnr_disoccluded']:.2f} / "
                  f"{s['perceptual']:.4f} | {n['psnr_disoccluded'] - s['psnr_disoccluded']:+.2f} |", flush=True)
    for clip, triples in same_pairs.items():  # the renderers do not change the pair-fitted flow: once is enough
        name = args.weights[0].split("=", 1)[0]
        r = evaluate_triples(load_renderer(Path(args.weights[0].split("=", 1)[1])), triples, perceptual)
        results.setdefault("pair-fitted flow, same pairs", {})[clip] = {"weights": name, **r}
        n, s = r["neural"], r["splat"]
        print(f"| {name}, pair-fitted DIS flow, same pairs | {clip} ({n['n']}, {100 * n['hole_fraction']:.1f} %) | "
              f"{n['psnr']:.2f} / {n['psnr_disoccluded']:.2f} / {n['perceptual']:.4f} | {s['psnr']:.2f} / "
              f"{s['psnr_disoccluded']:.2f} / {s['perceptual']:.4f} | "
              f"{n['psnr_disoccluded'] - s['psnr_disoccluded']:+.2f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
