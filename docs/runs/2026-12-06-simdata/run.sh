#!/bin/sh
# The simulated-data session of 2026-12-06 on the 2-core AMD EPYC (no GPU lent), as run: data,
# the ground-truth check, the prior's fine-tune (U-Net + frequency attention from the shipped
# weights; the VAE kept) and the renderer's, and the evaluations with the held-out simulated scenes.
# Run from the repo root. The machine was shared with other jobs throughout (see the logs' rates).
set -e
D=${SIMDATA:-data_sim}
R=docs/runs/2026-12-06-simdata
gid make-data -o $D --split eval --scenes 30 --workers 2
gid make-data -o $D --split train --scenes 400 --workers 2   # stopped after 66 scenes (235 views, 89 triples)
mkdir -p $D/frozen && cp -l $D/train_*.npz $D/frozen/       # the training set: those 66 shards
gid make-data -o $D/verify --split eval --verify 3
gid make-data -o $D/verify_grass --split eval --verify 1 --start 6
gid make-data -o $D/verify_flag --split eval --verify 1 --start 11
gid make-data -o $D/frozen --contact-sheet docs/simdata/contact_sheet.jpg --sheet-count 24
gid train prior unet --config small --init-from gid_engine/assets/motion_prior --out checkpoints/sim \
    --pairs 500 --workers 1 --steps 100000 --time-budget 900 --batch 16 --lr 3e-4 --threads 1 \
    --sim $D/frozen --sim-weight 0.5
gid train prior freq-attn --config small --init-from gid_engine/assets/motion_prior --out checkpoints/sim \
    --pairs 500 --steps 100000 --time-budget 300 --batch 2 --lr 2e-4 --threads 1 --sim $D/frozen --sim-weight 0.5 \
    --export out/prior_sim
gid train render --config small --init-from gid_engine/assets/renderer --steps 100000 --time-budget 1200 \
    --out checkpoints/render_sim --pairs 300 --workers 1 --threads 1 --lr 5e-4 --sim $D/frozen --sim-weight 0.4 \
    --export out/renderer_sim
gid eval render --n 32 --sim $D --json $R/eval_render_shipped.json
gid eval render --weights out/renderer_sim --n 32 --sim $D --json $R/eval_render_sim.json
gid eval prior --n 8 --real-pairs 4 --seam 0 --steps 25 --sim $D --json $R/eval_prior_shipped.json
gid eval prior --weights out/prior_sim --n 8 --real-pairs 4 --seam 0 --steps 25 --sim $D --json $R/eval_prior_sim.json
