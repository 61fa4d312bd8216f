#!/bin/sh
# The 2026-12-07 second session on the 2-core AMD EPYC (no GPU lent), as run: one static-flow network
# distilled from the mean of the four dense-close-up networks of docs/runs/2026-12-06-prior-dense and
# docs/runs/2026-12-07-dense-scale (their out/ folders), so the prior's one-network condition carries the
# ensemble; swapped into the prior shipped before it and scored. Run from the repo root after those run.sh.
# This run's network and prior were then shipped (gid_engine/assets/static_flow, motion_prior and, by
# `gid export-onnx --prior`, motion_prior_onnx), so the starting weights come from commit 45e6361.
set -e
D=${SIMDATA:-data_sim}
R=docs/runs/2026-12-07-distil
E="gid eval prior --n 8 --real-pairs 4 --seam 0 --steps 25 --repeats 3 --sim $D/closeup_dense"
for folder in static_flow motion_prior; do
    mkdir -p out/before/$folder
    git ls-tree --name-only 45e6361 gid_engine/assets/$folder/ | while read -r f; do
        git show 45e6361:$f > out/before/$folder/$(basename $f); done
done
gid train static-flow --init-from out/before/static_flow --steps 1500 --pairs 2000 --workers 2 --threads 2 \
    --lr 3e-4 --data-seed 2 --sim $D/dense2_frozen --sim-weight 0.5 \
    --teacher out/sf_dense2_s0 out/sf_dense out/sf_dense_s1 out/sf_dense2_s1 \
    --out checkpoints/sf_distil --export out/sf_distil
python tools/experiments/swap_condition.py out/before/motion_prior out/sf_distil out/prior_swap_distil
$E --weights out/prior_swap_distil --static-flow out/sf_distil --json $R/eval_prior_swap_distil.json
# the student beside its teachers and their mean, with mirror averaging and the per-image agreement
python tools/experiments/ensemble_static_flow.py --student out/sf_distil $D/closeup_dense out/sf_dense2_s0 \
    out/sf_dense out/sf_dense_s1 out/sf_dense2_s1 > $R/ensemble_student.md
# a second student of the same teachers and recipe, data seed 3 (how far two distillations differ)
gid train static-flow --init-from out/before/static_flow --steps 1500 --pairs 2000 --workers 2 --threads 2 \
    --lr 3e-4 --data-seed 3 --sim $D/dense2_frozen --sim-weight 0.5 \
    --teacher out/sf_dense2_s0 out/sf_dense out/sf_dense_s1 out/sf_dense2_s1 \
    --out checkpoints/sf_distil_s3 --export out/sf_distil_s3
python tools/experiments/ensemble_static_flow.py --student out/sf_distil_s3 $D/closeup_dense out/sf_dense2_s0 \
    out/sf_dense out/sf_dense_s1 out/sf_dense2_s1 > $R/ensemble_student_s3.md
python tools/experiments/swap_condition.py out/before/motion_prior out/sf_distil_s3 out/prior_swap_distil_s3
$E --weights out/prior_swap_distil_s3 --static-flow out/sf_distil_s3 --json $R/eval_prior_swap_distil_s3.json
python tools/experiments/prior_maps.py $R/prior_maps.jpg $D/closeup_dense "prior before=out/before/motion_prior" \
    "prior now=gid_engine/assets/motion_prior"
