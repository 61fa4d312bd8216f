#!/bin/sh
# The fourth simulated-data session of 2026-12-06 on the 2-core AMD EPYC (no GPU lent), as run: the
# motion prior's U-Net and frequency attention fine-tuned with the dense close-up static-flow network
# as their frozen condition (which also gives the Eulerian start of sampling), beside the shipped
# prior with only that network swapped in (no retraining), all scored over three draws.
# Run from the repo root. The checkout was fresh, so the dense close-ups and the static-flow network
# were made again from their seeds by the commands of docs/runs/2026-12-06-dense/run.sh.
set -e
D=${SIMDATA:-data_sim}
R=docs/runs/2026-12-06-prior-dense
gid make-data -o $D/closeup_dense --kind tree --closeups 1 --leaf-density 3 --triples 0 --split eval --scenes 12 --workers 2
gid make-data -o $D/closeup_dense --kind tree --closeups 1 --leaf-density 3 --triples 0 --scenes 127 --workers 2
mkdir -p $D/dense_frozen && cp -l $D/closeup_dense/train_*.npz $D/dense_frozen/
gid train static-flow --init-from gid_engine/assets/static_flow --steps 1200 --pairs 1000 --workers 2 --threads 2 \
    --lr 3e-4 --sim $D/dense_frozen --sim-weight 0.5 --out checkpoints/sf_dense --export out/sf_dense
# the shipped prior with the dense static-flow network as its condition, nothing retrained
python tools/experiments/swap_condition.py gid_engine/assets/motion_prior out/sf_dense out/prior_swap
# the prior fine-tuned with that condition: U-Net, then frequency attention
gid train prior unet --config small --init-from gid_engine/assets/motion_prior --out checkpoints/prior_dense \
    --pairs 500 --workers 2 --steps 100000 --time-budget 900 --batch 16 --lr 3e-4 --threads 2 \
    --sim $D/dense_frozen --sim-weight 0.5 --static-flow out/sf_dense
gid train prior freq-attn --config small --init-from gid_engine/assets/motion_prior --out checkpoints/prior_dense \
    --pairs 500 --steps 100000 --time-budget 300 --batch 2 --lr 2e-4 --threads 2 --sim $D/dense_frozen --sim-weight 0.5 \
    --export out/prior_dense
E="gid eval prior --n 8 --real-pairs 4 --seam 0 --steps 25 --repeats 3 --sim $D/closeup_dense"
$E --weights out/prior_dense --static-flow out/sf_dense --json $R/eval_prior_dense.json
$E --weights out/prior_swap --static-flow out/sf_dense --json $R/eval_prior_swap.json
$E --json $R/eval_prior_shipped.json
# the swap with the static-flow network of the other data seed, to see whether the gain survives another training
gid train static-flow --init-from gid_engine/assets/static_flow --steps 1200 --pairs 1000 --workers 2 --threads 2 \
    --lr 3e-4 --data-seed 1 --sim $D/dense_frozen --sim-weight 0.5 --out checkpoints/sf_dense_s1 --export out/sf_dense_s1
python tools/experiments/swap_condition.py gid_engine/assets/motion_prior out/sf_dense_s1 out/prior_swap_s1
$E --weights out/prior_swap_s1 --static-flow out/sf_dense_s1 --json $R/eval_prior_swap_s1.json
