"""Experiment (2026-12-07): the learned Eulerian baseline as the mean of several static-flow networks'
outputs (an ensemble, not a weight average), scored beside each member on the sets of `gid eval prior`
(synthetic eval split, the held-out real clip, held-out simulated scenes). Trainings of one recipe
disagree on the real clip by more than the prior's goal margin; the ensemble asks whether averaging
their fields removes that spread.
With --prior it then scores the shipped prior with the mean of all the networks as its frozen condition
(the condition network also gives the Eulerian start of sampling), three draws per pair as `gid eval prior
--repeats 3` draws them, and with the first network alone on the real clip, to check that this reproduces
the eval's figures.
Usage: python tools/experiments/ensemble_static_flow.py [--prior] SIM_DIR STATIC_FLOW_DIR [STATIC_FLOW_DIR ...]"""
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

from gid.gid_engine.prediction.predict import init_strength_for
from gid.gid_engine.repo_data import TREE_CLIP
from gid.gid_tools.motion_prior.data import real_pairs, synthetic_pair
from gid.gid_tools.motion_prior.evaluate import dominant_bin, magnitude_map, pair_metrics, score_learned_static_flow
from gid.gid_tools.motion_prior.static_flow import load_static_flow
from gid.gid_tools.motion_prior.weights import load_weights
from gid.gid_tools.simdata.datasets import sim_pairs


class MeanOfNetworks(torch.nn.Module):
    """The mean of the members' output fields."""

    def __init__(self, members: list[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)


args = sys.argv[1:]
with_prior = "--prior" in args
args = [a for a in args if a != "--prior"]
sim, folders = Path(args[0]), [Path(a) for a in args[1:]]
cfg = (pipe := load_weights(Path("gid_engine/assets/motion_prior"))).config
k_star = dominant_bin(pipe.normalizer.scales)
sets = {
    "synthetic (n=8)": [synthetic_pair(i, seed=0, split="eval", width=cfg.width, height=cfg.height,
                                       k=cfg.num_frequencies) for i in range(8)],
    "tree.avi (n=2)": real_pairs([TREE_CLIP], every=30, width=cfg.width, height=cfg.height, max_pairs=4,
                                 k=cfg.num_frequencies),
    "simulated held-out (n=8)": sim_pairs(sim, "eval", limit=8),
}
nets = {f.name: load_static_flow(f).eval() for f in folders}
candidates: dict[str, torch.nn.Module] = dict(nets)
for size in range(2, len(nets) + 1):
    for names in combinations(nets, size):
        candidates["mean(" + ", ".join(names) + ")"] = MeanOfNetworks([nets[n] for n in names])
print("| network | " + " | ".join(f"{s}: corr / amp / log-err" for s in sets) + " |")
print("|---|" + "---|" * len(sets))
for name, net in candidates.items():
    cells = []
    for pairs in sets.values():
        m = score_learned_static_flow(net, pairs, k_star)
        cells.append(f"{m['magnitude_corr']:.3f} / {m['amplitude_ratio']:.2f} / {m['spectrum_log_err']:.3f}")
    print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


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
    denoiser.cond.static_flow = MeanOfNetworks(list(nets.values())).eval()
    print(f"\n| prior with the mean of all {len(nets)} as condition (3 draws) | corr / amp / log-err |\n|---|---|")
    for name, pairs in sets.items():
        print(f"| {name} | {score_prior(pipe, pairs)} |", flush=True)
