"""All three motion-prior stages in one process, each within a time budget (a lent GPU's session).

The training pairs (several GiB) are generated once, in parallel, and shared by the stages instead
of going through ``OUT/pairs.pt``; otherwise this is exactly ``gid train prior vae|unet|freq-attn``:

    python tools/train_prior_stages.py --out checkpoints/gpu --pairs 6000 --workers 12 \\
        --budget 200 420 180 --batch 64 128 16 --lr 1e-3 1e-3 3e-4 --export out/prior_gpu
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gid.gid_tools.motion_prior.models import get_config
from gid.gid_tools.motion_prior.train import STAGES, PairCache, TrainArgs, export, get_normalizer, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", default="small")
    ap.add_argument("--pairs", type=int, default=6000)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--budget", type=float, nargs=3, required=True, metavar=("VAE", "UNET", "ATTN"),
                    help="seconds per stage")
    ap.add_argument("--max-steps", type=int, nargs=3, default=(100_000, 100_000, 100_000))
    ap.add_argument("--batch", type=int, nargs=3, default=(None, None, None))
    ap.add_argument("--lr", type=float, nargs=3, default=(None, None, None))
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--export", default=None)
    args = ap.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = get_config(args.config)
    t0 = time.perf_counter()
    defaults = TrainArgs(stage="vae")  # the same data seed and normalization sample as gid train
    normalizer = get_normalizer(out, defaults.norm_samples, defaults.data_seed, print)
    cache = PairCache.build(args.pairs, config, normalizer, defaults.data_seed, workers=args.workers)
    print(f"data ready in {time.perf_counter() - t0:.0f}s", flush=True)
    for i, stage in enumerate(STAGES):
        train(TrainArgs(stage=stage, config=args.config, steps=args.max_steps[i], batch=args.batch[i],
                        out=out, lr=args.lr[i], pairs=args.pairs, ckpt_every=1000, log_every=100,
                        threads=args.threads, time_budget=args.budget[i], pair_cache=False), cache=cache)
    if args.export:
        export(out, Path(args.export))
    print(f"all stages in {time.perf_counter() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
