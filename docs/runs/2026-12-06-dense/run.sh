#!/bin/sh
# The third simulated-data session of 2026-12-06 on the 2-core AMD EPYC (no GPU lent), as run: the
# static-flow network (the learned Eulerian model: the prior's condition and its sampler's start)
# fine-tuned on dense tree close-ups (three times the leaves per twig), scored beside the shipped one.
# Run from the repo root. The checkout was fresh, so every folder was made again from its seeds.
set -e
D=${SIMDATA:-data_sim}
R=docs/runs/2026-12-06-dense
gid make-data -o $D/closeup_dense --kind tree --closeups 1 --leaf-density 3 --triples 0 --split eval --scenes 12 --workers 2
gid make-data -o $D/closeup_dense --kind tree --closeups 1 --leaf-density 3 --triples 0 --scenes 127 --workers 2
mkdir -p $D/dense_frozen && cp -l $D/closeup_dense/train_*.npz $D/dense_frozen/
gid train static-flow --init-from gid_engine/assets/static_flow --steps 1200 --pairs 1000 --workers 2 --threads 2 \
    --lr 3e-4 --sim $D/dense_frozen --sim-weight 0.5 --out checkpoints/sf_dense --export out/sf_dense
# the two other held-out folders of the earlier tables, made again by seed
gid make-data -o $D/closeup --kind tree --closeups 1 --triples 0 --split eval --scenes 12 --workers 2
gid make-data -o $D/v1 --split eval --scenes 30 --workers 2
python tools/experiments/static_flow_sim.py $D/v1,$D/closeup,$D/closeup_dense $R/static_flow_eval.json \
    shipped=gid_engine/assets/static_flow dense=out/sf_dense
# the same recipe on other pairs and batches (data seed 1), to see the spread between trainings
gid train static-flow --init-from gid_engine/assets/static_flow --steps 1200 --pairs 1000 --workers 2 --threads 2 \
    --lr 3e-4 --data-seed 1 --sim $D/dense_frozen --sim-weight 0.5 --out checkpoints/sf_dense_s1 --export out/sf_dense_s1
python tools/experiments/static_flow_sim.py $D/v1,$D/closeup,$D/closeup_dense $R/static_flow_eval_seed1.json \
    dense_seed1=out/sf_dense_s1
gid make-data -o $D/dense_frozen --contact-sheet docs/simdata/contact_sheet_dense_closeups.jpg --sheet-count 16
