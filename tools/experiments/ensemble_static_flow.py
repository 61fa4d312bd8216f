"""Experiment (2026-12-07): the learned Eulerian baseline as the mean of several static-flow networks'
outputs (an ensemble, not a weight average), scored beside each member on the sets of `gid eval prior`
(synthetic eval split, the held-out real clip, held-out simulated scenes). Trainings of one recipe
disagree on the real clip by more than the prior's goal margin; the ensemble asks whether averaging
their fields removes that spread.
With --prior it then scores the shipped prior with the mean of all the networks as its frozen condition
(the condition network also gives the Eulerian start of sampling), three draws per pair as `gid eval prior
--repeats 3` draws them, and with the first network alone on the real clip, to check that this reproduces
the eval's figures.
With --student DIR it also scores a network distilled from the mean of all the networks (`gid train static-flow
--teacher`), it and the mean averaged with their mirror images' fields (a free two-view ensemble), and how well
the student's magnitude map agrees with the mean's image by image (correlation), which says how much of a
difference in score the metric gives two nearly equal fields.
Usage: python tools/experiments/ensemble_static_flow.py [--prior] [--student DIR] SIM_DIR STATIC_FLOW_DIR
[STATIC_FLOW_DIR ...]"""
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

from gid.gid_engine.prediction.predict import init_strength_for
from gid.gid_engine.repo_data import TREE_CLIP
from gid.gid_tools.motion_prior.data import synthetic_pair
from gid.gid_tools.motion_prior.evaluate import (dominant_bin, eval_real_pairs, magnitude_map, pair_metrics,
                                                 score_learned_static_flow)
from gid.gid_tools.motion_prior.static_flow import MeanOfNetworks, load_static_flow, network_input
from gid.gid_tools.motion_prior.weights import load_weights
from gid.gid_tools.simdata.datasets import sim_pairs


args = sys.argv[1:]
with_prior = "--prior" in args
args = [a for a in args if a != "--prior"]
student = None
if "--student" in args:
    at = args.index("--student")
    student = Path(args[at + 1])
    del args[at : at + 2]
sim, folders = Path(args[0]), [Path(a) for a in args[1:]]
cfg = (pipe := load_weights(Path("gid_engine/assets/motion_prior"))).config
k_star = dominant_bin(pipe.normalizer.scales)
sets = {
    "synthetic (n=8)": [synthetic_pair(i, seed=0, split="eval", width=cfg.width, height=cfg.height,
                                       k=cfg.num_frequencies) for i in range(8)],
    "tree.avi (n=2)": eval_real_pairs(TREE_CLIP, cfg, 4),
    "simulated held-out (n=8)": sim_pairs(sim, "eval", limit=8),
}
nets = {f.name: load_static_flow(f).eval() for f in folders}
candidates: dict[str, torch.nn.Module] = dict(nets)
for size in range(2, len(nets) + 1):
    for names in combinations(nets, size):
        candidates["mean(" + ", ".join(names) + ")"] = MeanOfNetworks([nets[n] for n in names])


class MirrorAveraged(torch.nn.Module):
    """The mean of a network's field and the mirrored field of the mirror image (``(M_x, -M_y)`` flipped)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sign = torch.tensor([1.0, -1.0], device=x.device).view(1, 2, 1, 1)
        return 0.5 * (self.net(x) + self.net(x.flip(-1)).flip(-1) * sign)


mean_of_all = MeanOfNetworks(list(nets.values())).eval()
if student is not None:
    candidates[f"student {student.name}"] = student_net = load_static_flow(student)
    candidates[f"student {student.name}, mirror-averaged"] = MirrorAveraged(student_net)
    candidates["mean of all, mirror-averaged"] = MirrorAveraged(mean_of_all)
print("| network | " + " | ".join(f"{s}: corr / amp / log-err" for s in sets) + " |")
print("|---|" + "---|" * len(sets))
for name, net in candidates.items():
    cells = []
    for pairs in sets.values():
        m = score_learned_static_flow(net, pairs, k_star)
        cells.append(f"{m['magnitude_corr']:.3f} / {m['amplitude_ratio']:.2f} / {m['spectrum_log_err']:.3f}")
    print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
if student is not None:
    print("\n| set | correlation of the student's magnitude map with the mean's, per image |\n|---|---|")
    for label, pairs in sets.items():
        x = torch.stack([network_input(im) for im, _ in pairs])
        with torch.no_grad():
            a, b = student_net(x).norm(dim=1).flatten(1), mean_of_all(x).norm(dim=1).flatten(1)
        print(f"| {label} | " + ", ".join(f"{np.corrcoef(u, v)[0, 1]:.3f}" for u, v in zip(a.numpy(), b.numpy()))
              + " |", flush=True)


def score_prior(pipe, pairs: list, repeats: int = 3, steps: int = 25) -> str:
    """The prior's mean corr / amplitude / log-err over ``repeats`` draws, each ± the sd of the per-draw means."""
    strength = init_strength_for(pipe, None)
    by_repeat = []
    for r in range(repeats):
        rows = []
        for i, (image, ref) in enumerate(pairs):
            ref = ref.anchored()
            pred = pipe(image, steps=steps, seed=i + r * len(pairs), guidance_scale=None, init_strength=strength)
            rows.append(pair_metrics(pred, ref, magnitude_map(ref)))
        by_repeat.append({k: float(np.mean([row[k] for row in rows])) for k in rows[0]})
    keys = ("magnitude_corr", "amplitude_ratio", "spectrum_log_err")
    return " / ".join(f"{np.mean([m[k] for m in by_repeat]):.3f} ± {np.std([m[k] for m in by_repeat], ddof=1):.3f}"
                      for k in keys)


if with_prior:
    denoiser = getattr(pipe.denoiser, "base", pipe.denoiser)
    first = next(iter(nets))
    denoiser.cond.static_flow = nets[first]
    print(f"\nprior with {first} as condition, tree.avi (n=2, 3 draws): corr / amp / log-err "
          f"{score_prior(pipe, sets['tree.avi (n=2)'])}", flush=True)
    denoiser.cond.static_flow = mean_of_all
    print(f"\n| prior with the mean of all {len(nets)} as condition (3 draws) | corr / amp / log-err |\n|---|---|")
    for name, pairs in sets.items():
        print(f"| {name} | {score_prior(pipe, pairs)} |", flush=True)
