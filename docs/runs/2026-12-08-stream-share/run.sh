#!/bin/sh
# Round 9 (2026-12-08, 2-core AMD EPYC, no GPU lent), as run from the repo root; plan.md was written before
# any of it. Stream triples in the renderer's simulated share, round 8 seed 8's recipe otherwise.
set -e
D=${SIMDATA:-data_sim}
R=docs/runs/2026-12-08-stream-share
W=gid_engine/assets/renderer
# 60 training streams (make-data resumes), next to the 160 scenes and the held-out splits of the 2026-12-08 run
gid make-data -o $D/stream --split train --kind stream --scenes 60 --triples 1.0 --amplitude 3 12 --workers 2
gid make-data -o $D/stream_eval --split eval --kind stream --scenes 10 --triples 1.0 --amplitude 3 12 --workers 1
# r9_pool: one folder holding both, so every simulated triple is as likely
mkdir -p $D/render_pool
for f in $D/render_large/train_*.npz; do ln -sf "$(realpath "$f")" $D/render_pool/; done
for f in $D/stream/train_*.npz; do ln -sf "$(realpath "$f")" "$D/render_pool/train_stream_$(basename "$f" | cut -d_ -f2)"; done
train() {  # name, then the --sim folders
  n=$1; shift
  gid train render --config small --init-from $W --steps 1800 --time-budget 3600 \
      --out checkpoints/$n --pairs 300 --workers 1 --threads 1 --lr 2.5e-4 --data-seed 8 --sim "$@" \
      --sim-weight 0.5 --real-weight 0.25 --hole-weight 96 --extracted-flow 0.5 --sim-extracted-flow 0.5 \
      --export out/renderer_$n > $R/train_$n.log 2>&1
}
train r9_pool $D/render_pool & p1=$!
train r9_half $D/render_large $D/stream & p2=$!
wait $p1; wait $p2
for n in r9_pool r9_half; do
  gid eval render --weights out/renderer_$n --n 32 --sim $D/render_large $D/render_small $D/stream_eval \
      --sim-extracted $D/stream_eval --against $W --json $R/eval_render_$n.json > $R/eval_render_$n.log 2>&1 &
done
wait
for n in r9_pool r9_half; do cp checkpoints/$n/render/loss.csv $R/${n}_loss.csv; done
# round 8 seed 8 (docs/runs/2026-12-08-gate-and-160) on the stream rows only: the same recipe without streams
gid eval render --weights out/renderer_r8_s8 --n 0 --real --sim $D/stream_eval --sim-extracted $D/stream_eval \
    --against $W --json $R/eval_render_r8_s8_streams.json > $R/eval_render_r8_s8_streams.log 2>&1
# the glint check (plan.md, addendum): the excess error over the splat split by bright pixels
python tools/experiments/real_loss_regions.py $R/bright_stream.json --bright 0.95 shipped=$W r9_pool=out/renderer_r9_pool \
    -- samples/stream_of_water.mp4
python tools/experiments/real_loss_regions.py $R/bright_others.json --bright 0.95 shipped=$W r9_pool=out/renderer_r9_pool \
    -- samples/tree.avi samples/bigbuckbunny.mp4 samples/flower.webm
