#!/bin/sh
# The 2026-12-07 session on the 2-core AMD EPYC (no GPU lent), as run: the static-flow network that
# conditions the prior, trained on twice the dense close-ups (127 more scenes, 507 more views, scene
# seeds 127-253), two data seeds, each swapped into the shipped prior and scored; and a weight average
# ("soup") of the two networks of the previous session. Run from the repo root after
# docs/runs/2026-12-06-prior-dense/run.sh (its dense close-ups, out/sf_dense and out/sf_dense_s1).
set -e
D=${SIMDATA:-data_sim}
R=docs/runs/2026-12-07-dense-scale
E="gid eval prior --n 8 --real-pairs 4 --seam 0 --steps 25 --repeats 3 --sim $D/closeup_dense"
# the soup of the previous session's two trainings (508 views, data seeds 0 and 1)
python tools/experiments/soup_static_flow.py out/sf_soup out/sf_dense out/sf_dense_s1
python tools/experiments/swap_condition.py gid_engine/assets/motion_prior out/sf_soup out/prior_swap_soup
$E --weights out/prior_swap_soup --static-flow out/sf_soup --json $R/eval_prior_swap_soup.json
# 127 more dense close-up scenes (the held-out ones, eval_*, stay those of closeup_dense)
gid make-data -o $D/closeup_dense2 --kind tree --closeups 1 --leaf-density 3 --triples 0 --start 127 --scenes 127 --workers 2
mkdir -p $D/dense2_frozen && cp -l $D/closeup_dense/train_*.npz $D/closeup_dense2/train_*.npz $D/dense2_frozen/
for s in 0 1; do
gid train static-flow --init-from gid_engine/assets/static_flow --steps 1200 --pairs 1000 --workers 2 --threads 2 \
    --lr 3e-4 --data-seed $s --sim $D/dense2_frozen --sim-weight 0.5 --out checkpoints/sf_dense2_s$s --export out/sf_dense2_s$s
python tools/experiments/swap_condition.py gid_engine/assets/motion_prior out/sf_dense2_s$s out/prior_swap2_s$s
$E --weights out/prior_swap2_s$s --static-flow out/sf_dense2_s$s --json $R/eval_prior_swap2_s$s.json
done
# the learned baseline as the mean of the four dense networks' outputs, every combination of them; then the
# shipped prior with the first network (a check against the eval above) and with the mean of all four as condition
python tools/experiments/ensemble_static_flow.py --prior $D/closeup_dense out/sf_dense2_s0 out/sf_dense out/sf_dense_s1 \
    out/sf_dense2_s1 > $R/ensemble_static_flow.md
