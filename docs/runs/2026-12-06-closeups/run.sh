#!/bin/sh
# The second simulated-data session of 2026-12-06 on the 2-core AMD EPYC (no GPU lent), as run:
# the static-flow network (the learned Eulerian model: the prior's condition and its sampler's start)
# trained on simulated views, first the mixed scenes, then tree close-ups whose leaves fill the view.
# Run from the repo root; D is where gid make-data wrote the first session's shards (run.sh beside this).
set -e
D=${SIMDATA:-data_sim}
R=docs/runs/2026-12-06-closeups
# 1. the mixed scenes (train 0-158 of the first session's folder, frozen as they were at the start)
mkdir -p $D/frozen_s3 && cp -l $D/train_*.npz $D/frozen_s3/
gid train static-flow --steps 2738 --pairs 1000 --workers 2 --threads 2 --sim $D/frozen_s3 --sim-weight 0.5 \
    --out checkpoints/sf_sim --export out/sf_sim
# 2. tree close-ups: every camera inside the crown's view (no triples: prior pairs only)
gid make-data -o $D/closeup --kind tree --closeups 1 --triples 0 --scenes 1000 --workers 2   # stopped, see log
gid make-data -o $D/closeup --kind tree --closeups 1 --triples 0 --split eval --scenes 12 --workers 2
mkdir -p $D/closeup_frozen && cp -l $D/closeup/train_*.npz $D/closeup_frozen/
gid train static-flow --init-from gid_engine/assets/static_flow --steps 1200 --pairs 1000 --workers 2 --threads 2 \
    --lr 3e-4 --sim $D/closeup_frozen --sim-weight 0.5 --out checkpoints/sf_cu --export out/sf_cu
python tools/experiments/static_flow_sim.py $D,$D/closeup $R/static_flow_eval.json \
    shipped=gid_engine/assets/static_flow mixed=out/sf_sim closeup=out/sf_cu
gid make-data -o $D/closeup_frozen --contact-sheet docs/simdata/contact_sheet_closeups.jpg --sheet-count 16
gid make-data -o $D/closeup_dense --kind tree --closeups 1 --leaf-density 3 --triples 0 --scenes 1000 --workers 2  # stopped, see log; not yet trained on
