#!/bin/sh
# The real-share renderer session of 2026-12-07 (fifth session) on the 2-core AMD EPYC (no GPU lent), as run from
# the repo root. Data: the large-motion simulated triples of docs/runs/2026-12-07-render-large/run.sh; start weights:
# the runs of docs/runs/2026-12-07-render-hole48/run.sh (out/renderer_r3_w96, shipped in 4db31b9, and
# out/renderer_r4_w96s1, its data-seed-1 fine-tune). Every run is a 1,800-step fine-tune, one thread, two at a
# time, hole weight 96, half of each batch of 6 crops simulated.
# Round five: half of each batch real (3 real + 3 simulated, no synthetic crop), from the shipped weights with
# data seed 1 and from the seed-1 fine-tune with data seed 3. Then two weight averages (soups) with the shipped
# weights, at no training cost. Round six: from the seed-1 fine-tune, one real crop and two synthetic per batch,
# lr 2.5e-4, data seed 4, the second with half of the synthetic triples' motion replaced by extracted flow.
# Then two soups of the shipped weights with round six (equal shares; and a third each with both runs).
set -e
D=${SIMDATA:-data_sim}
R=docs/runs/2026-12-07-render-real
if [ ! -f out/renderer_r4_w96s1/renderer.json ]; then
  docs/runs/2026-12-07-render-hole48/run.sh   # makes the data when absent and the start weights
fi
train() {  # name init sim-weight real-weight data-seed lr extracted-flow
  gid train render --config small --init-from $2 --steps 1800 --time-budget 2500 \
      --out checkpoints/$1 --pairs 300 --workers 1 --threads 1 --lr $6 --data-seed $5 --sim $D/render_large \
      --sim-weight $3 --real-weight $4 --extracted-flow $7 --hole-weight 96 --export out/renderer_$1 > $R/train_$1.log 2>&1
}
train r5_real50 out/renderer_r3_w96 0.5 0.5 1 5e-4 0 & p1=$!
train r5_real50c out/renderer_r4_w96s1 0.5 0.5 3 5e-4 0 & p2=$!
wait $p1; wait $p2
python tools/experiments/soup_renderer.py out/renderer_soup_w96_r50c out/renderer_r3_w96 out/renderer_r5_real50c
python tools/experiments/soup_renderer.py out/renderer_soup_w96_s1 out/renderer_r3_w96 out/renderer_r4_w96s1
train r6_syn2 out/renderer_r4_w96s1 0.5 0.17 4 2.5e-4 0 & p1=$!
train r6_syn2dis out/renderer_r4_w96s1 0.5 0.17 4 2.5e-4 0.5 & p2=$!
wait $p1; wait $p2
python tools/experiments/soup_renderer.py out/renderer_soup_w96_syn2dis out/renderer_r3_w96 out/renderer_r6_syn2dis
python tools/experiments/soup_renderer.py out/renderer_soup_w96_syn2_syn2dis out/renderer_r3_w96 out/renderer_r6_syn2 \
    out/renderer_r6_syn2dis
for n in r5_real50 r5_real50c soup_w96_r50c soup_w96_s1 r6_syn2 r6_syn2dis soup_w96_syn2dis soup_w96_syn2_syn2dis; do
  gid eval render --weights out/renderer_$n --n 32 --sim $D/render_large $D/render_small \
      --json $R/eval_render_$n.json > $R/eval_render_$n.log 2>&1
  if [ -f checkpoints/$n/render/loss.csv ]; then cp checkpoints/$n/render/loss.csv $R/${n}_loss.csv; fi
done
