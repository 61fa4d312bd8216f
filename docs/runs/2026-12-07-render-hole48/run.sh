#!/bin/sh
# The hole-weight renderer session of 2026-12-07 (fourth session) on the 2-core AMD EPYC (no GPU lent), as run from
# the repo root. Data: the large-motion simulated triples of docs/runs/2026-12-07-render-large/run.sh (render_large
# train + eval, render_small eval; deterministic by seed, the same commands make them again). Every run is a
# 1,800-step fine-tune, one thread, two at a time, lr 5e-4 unless named, half of each batch of 6 crops simulated.
# Round one, from the then shipped renderer (--hole-weight 16, commit 1ea518a): hole weight 48, and 48 with two
# thirds of each batch simulated (no synthetic crop). Round two, from the round-one hole-48 result: 48 again, and 96.
# Round three, from the hole-96 result: 96 with data seed 1, and 96 with data seed 2 at lr 2.5e-4.
# Then the evaluations and the per-kind table.
set -e
D=${SIMDATA:-data_sim}
R=docs/runs/2026-12-07-render-hole48
B=out/renderer_rl_hole16   # the renderer shipped before this session (commit 1ea518a)
if [ ! -f $D/render_large/manifest.json ]; then
  gid make-data -o $D/render_large --split eval --scenes 30 --triples 1.0 --amplitude 3 12 --workers 2
  gid make-data -o $D/render_large --split train --scenes 160 --triples 1.0 --amplitude 3 12 --workers 2
  gid make-data -o $D/render_small --split eval --scenes 30 --workers 1
fi
mkdir -p $B
for f in renderer.json renderer.safetensors renderer_encoder.onnx renderer_frame.onnx; do
  git show 1ea518a:gid_engine/assets/renderer/$f > $B/$f
done
train() {  # name init hole-weight sim-weight data-seed lr
  gid train render --config small --init-from $2 --steps 1800 --time-budget 2500 \
      --out checkpoints/$1 --pairs 300 --workers 1 --threads 1 --lr $6 --data-seed $5 --sim $D/render_large \
      --sim-weight $4 --hole-weight $3 --export out/renderer_$1 > $R/train_$1.log 2>&1
}
train r2_w48 $B 48 0.5 0 5e-4 & p1=$!
train r2_w48s67 $B 48 0.67 0 5e-4 & p2=$!
wait $p1; wait $p2
train r3_w48b out/renderer_r2_w48 48 0.5 0 5e-4 & p1=$!
train r3_w96 out/renderer_r2_w48 96 0.5 0 5e-4 & p2=$!
wait $p1; wait $p2
train r4_w96s1 out/renderer_r3_w96 96 0.5 1 5e-4 & p1=$!
train r4_w96s2lr out/renderer_r3_w96 96 0.5 2 2.5e-4 & p2=$!
wait $p1; wait $p2
for n in r2_w48 r2_w48s67 r3_w48b r3_w96 r4_w96s1 r4_w96s2lr; do
  gid eval render --weights out/renderer_$n --n 32 --sim $D/render_large $D/render_small \
      --json $R/eval_render_$n.json > $R/eval_render_$n.log 2>&1
  cp checkpoints/$n/render/loss.csv $R/${n}_loss.csv
done
python tools/experiments/render_holes_by_kind.py $D/render_large hole16=$B w48=out/renderer_r2_w48 \
    w48x2=out/renderer_r3_w48b w96=out/renderer_r3_w96 w96s1=out/renderer_r4_w96s1 w96s2=out/renderer_r4_w96s2lr \
    > $R/holes_by_kind.json
cp out/renderer_r3_w96/renderer.safetensors out/renderer_r3_w96/renderer_encoder.onnx out/renderer_r3_w96/renderer_frame.onnx \
    out/renderer_r3_w96/renderer.json gid_engine/assets/renderer/   # shipped; "default": false and a note added to renderer.json
