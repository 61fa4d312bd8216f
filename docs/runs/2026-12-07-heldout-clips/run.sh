#!/bin/sh
# The sixth renderer/prior session of 2026-12-07 on a fresh 2-core AMD EPYC (no GPU lent), as run from the repo
# root: the shipped renderer and the two it replaced scored on every real clip of samples/clips.json (the two
# evaluation-only CC0 clips included) with paired intervals; where their whole-frame differences come from; the
# shipped prior on the stream; the held-out simulated splits made again; round 7 (below).
set -e
D=${SIMDATA:-data_sim}
R=docs/runs/2026-12-07-heldout-clips
for w in nov25:1ea518a^ h16:1ea518a; do
  n=${w%%:*}; c=${w#*:}
  mkdir -p out/renderer_$n
  for f in renderer.json renderer.safetensors renderer_encoder.onnx renderer_frame.onnx; do
    git show $c:gid_engine/assets/renderer/$f > out/renderer_$n/$f
  done
done
gid eval render --n 32 --json $R/eval_render_shipped.json
gid eval render --weights out/renderer_nov25 --n 32 --json $R/eval_render_1125.json
gid eval render --weights out/renderer_h16 --n 32 --json $R/eval_render_h16.json
python tools/experiments/real_loss_regions.py $R/regions_real.json shipped=gid_engine/assets/renderer \
    nov25=out/renderer_nov25 -- samples/flower.webm samples/stream_of_water.mp4 samples/bigbuckbunny.mp4 samples/tree.avi
gid eval prior --n 0 --real samples/stream_of_water.mp4 --real-pairs 4 --seam 0 --steps 25 --repeats 3 \
    --json $R/eval_prior_stream.json
python tools/experiments/prior_maps.py $R/prior_maps_stream.jpg - shipped=gid_engine/assets/motion_prior \
    --real samples/stream_of_water.mp4
gid make-data -o $D/render_large --split eval --scenes 30 --triples 1.0 --amplitude 3 12 --workers 2
gid make-data -o $D/render_small --split eval --scenes 30 --workers 2
# round 7 (the plan's addendum): the first 80 training scenes, two fine-tunes of the shipped weights with extracted
# flow on half the simulated and half the synthetic triples, one thread each, two at a time; scored against the shipped
gid make-data -o $D/render_large --split train --scenes 80 --triples 1.0 --amplitude 3 12 --workers 2
train() {  # name data-seed
  gid train render --config small --init-from gid_engine/assets/renderer --steps 1800 --time-budget 2700 \
      --out checkpoints/$1 --pairs 300 --workers 1 --threads 1 --lr 2.5e-4 --data-seed $2 --sim $D/render_large \
      --sim-weight 0.5 --real-weight 0.25 --hole-weight 96 --extracted-flow 0.5 --sim-extracted-flow 0.5 \
      --export out/renderer_$1 > $R/train_$1.log 2>&1
}
train r7_sdis_s5 5 & p1=$!
train r7_sdis_s6 6 & p2=$!
wait $p1; wait $p2
for n in r7_sdis_s5 r7_sdis_s6; do
  gid eval render --weights out/renderer_$n --n 32 --sim $D/render_large $D/render_small \
      --against gid_engine/assets/renderer --json $R/eval_render_$n.json > $R/eval_render_$n.log 2>&1
  cp checkpoints/$n/render/loss.csv $R/${n}_loss.csv
done
