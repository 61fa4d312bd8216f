#!/bin/sh
# The larger-motion renderer session of 2026-12-07 on the 2-core AMD EPYC (no GPU lent), as run from the
# repo root: held-out and training triples whose views move 3-12 px (99th percentile at 256 wide) instead of
# 0.75-6, every view a triple; four fine-tunes of the then shipped renderer (commit ab7c99b's weights), two at a
# time, one thread each, 1,800 steps each: plain L1, --hole-weight 4, a second fine-tune from the hole-4 result, and
# --hole-weight 16 (shipped); the evaluations, with the default small-motion held-out split as a second row.
set -e
D=${SIMDATA:-data_sim}
R=docs/runs/2026-12-07-render-large
B=out/renderer_before   # the renderer shipped before this session
mkdir -p $B
for f in renderer.json renderer.safetensors renderer_encoder.onnx renderer_frame.onnx; do
  git show ab7c99b:gid_engine/assets/renderer/$f > $B/$f
done
gid make-data -o $D/render_large --split eval --scenes 30 --triples 1.0 --amplitude 3 12 --workers 2
gid make-data -o $D/render_large --split train --scenes 160 --triples 1.0 --amplitude 3 12 --workers 2
gid make-data -o $D/render_small --split eval --scenes 30 --workers 1
for v in plain:0 hole4:4; do
  n=${v%%:*}; w=${v##*:}
  gid train render --config small --init-from $B --steps 1800 --time-budget 2400 \
      --out checkpoints/rl_$n --pairs 300 --workers 1 --threads 1 --lr 5e-4 --sim $D/render_large --sim-weight 0.5 \
      --hole-weight $w --export out/renderer_rl_$n &
  pids="$pids $!"
done
for p in $pids; do wait $p; done
gid train render --config small --init-from out/renderer_rl_hole4 --steps 1800 --time-budget 2400 \
    --out checkpoints/rl_hole4_b --pairs 300 --workers 1 --threads 1 --lr 5e-4 --sim $D/render_large --sim-weight 0.5 \
    --hole-weight 4 --export out/renderer_rl_hole4_b &
p1=$!
gid train render --config small --init-from $B --steps 1800 --time-budget 2400 \
    --out checkpoints/rl_hole16 --pairs 300 --workers 1 --threads 1 --lr 5e-4 --sim $D/render_large --sim-weight 0.5 \
    --hole-weight 16 --export out/renderer_rl_hole16 &
p2=$!
wait $p1; wait $p2
gid eval render --weights $B --n 32 --sim $D/render_large $D/render_small --json $R/eval_render_shipped.json
gid eval render --weights out/renderer_rl_plain --n 32 --sim $D/render_large $D/render_small --json $R/eval_render_rl_plain.json
gid eval render --weights out/renderer_rl_hole4 --n 32 --sim $D/render_large $D/render_small --json $R/eval_render_rl_hole4.json
for n in hole4_b hole16; do
  gid eval render --weights out/renderer_rl_$n --n 32 --sim $D/render_large $D/render_small --json $R/eval_render_rl_$n.json
done
python tools/experiments/render_holes_by_kind.py $D/render_large shipped=$B \
    plain=out/renderer_rl_plain hole4=out/renderer_rl_hole4 hole4x2=out/renderer_rl_hole4_b hole16=out/renderer_rl_hole16 \
    > $R/holes_by_kind.json
python tools/experiments/render_holes_sheet.py $R/holes.jpg $D/render_large before=$B \
    plain=out/renderer_rl_plain hole16=out/renderer_rl_hole16
cp -r out/renderer_rl_hole16/. gid_engine/assets/renderer/   # shipped, "default": false and a note added to renderer.json
