#!/bin/sh
# The simulated-data session of 2026-12-06 on the 2-core CPU (no GPU lent): data, the GT check,
# the prior's fine-tune (U-Net + frequency attention from the shipped weights) and the renderer's,
# and the evaluations with the held-out simulated scenes. Run from the repo root.
set -e
D=${SIMDATA:-data_sim}
gid make-data -o $D --split eval --scenes 30 --workers 2
gid make-data -o $D --split train --scenes 400 --workers 2      # stopped and frozen (cp -l) after $TRAIN_SCENES
gid make-data -o $D/verify --split eval --verify 3
gid make-data -o $D --split train --contact-sheet docs/simdata/contact_sheet.jpg --sheet-count 24
F=$D/frozen
gid train prior unet --config small --init-from gid_engine/assets/motion_prior --out checkpoints/sim \
    --pairs 500 --workers 1 --steps 100000 --time-budget 1200 --batch 16 --lr 3e-4 --threads 1 --sim $F --sim-weight 0.5
gid train prior freq-attn --config small --init-from gid_engine/assets/motion_prior --out checkpoints/sim \
    --pairs 500 --steps 100000 --time-budget 420 --batch 2 --lr 2e-4 --threads 1 --sim $F --sim-weight 0.5 \
    --export out/prior_sim
gid train render --config small --init-from gid_engine/assets/renderer --steps 100000 --time-budget 1500 \
    --out checkpoints/render_sim --pairs 300 --workers 1 --threads 1 --lr 5e-4 --sim $F --sim-weight 0.4 \
    --export out/renderer_sim
gid eval prior --n 8 --real-pairs 4 --seam 0 --steps 25 --sim $D --json docs/runs/2026-12-06-simdata/eval_prior_shipped.json
gid eval prior --weights out/prior_sim --n 8 --real-pairs 4 --seam 0 --steps 25 --sim $D \
    --json docs/runs/2026-12-06-simdata/eval_prior_sim.json
gid eval render --n 32 --sim $D --json docs/runs/2026-12-06-simdata/eval_render_shipped.json
gid eval render --weights out/renderer_sim --n 32 --sim $D --json docs/runs/2026-12-06-simdata/eval_render_sim.json
