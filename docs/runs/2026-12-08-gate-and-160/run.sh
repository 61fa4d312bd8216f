#!/bin/sh
# The 2026-12-08 renderer session on a 2-core AMD EPYC (no GPU lent), as run from the repo root; plan.md was
# written before any of it. A: other correction gates on the shipped weights (inference only). B: round 8,
# round 7's recipe on all 160 training scenes.
set -e
D=${SIMDATA:-data_sim}
R=docs/runs/2026-12-08-gate-and-160
W=gid_engine/assets/renderer
# A, phase 1: every variant on what candidates were always chosen on; phase 2: the chosen one on the new clips
python tools/experiments/gate_variants.py $R/gate_phase1.json $W current,holes_only,half,range_0.5,range_1,range_2 \
    synthetic-extracted samples/tree.avi samples/bigbuckbunny.mp4 $D/render_large $D/render_small
python tools/experiments/gate_variants.py $R/gate_phase2.json $W current,range_0.5 samples/flower.webm \
    samples/stream_of_water.mp4
# B: the held-out splits as on 2026-12-07, the training split grown to 160 scenes (make-data resumes)
gid make-data -o $D/render_large --split eval --scenes 30 --triples 1.0 --amplitude 3 12 --workers 2
gid make-data -o $D/render_small --split eval --scenes 30 --workers 2
gid make-data -o $D/render_large --split train --scenes 160 --triples 1.0 --amplitude 3 12 --workers 2
train() {  # name data-seed
  gid train render --config small --init-from $W --steps 1800 --time-budget 3600 \
      --out checkpoints/$1 --pairs 300 --workers 1 --threads 1 --lr 2.5e-4 --data-seed $2 --sim $D/render_large \
      --sim-weight 0.5 --real-weight 0.25 --hole-weight 96 --extracted-flow 0.5 --sim-extracted-flow 0.5 \
      --export out/renderer_$1 > $R/train_$1.log 2>&1
}
train r8_s7 7 & p1=$!
train r8_s8 8 & p2=$!
wait $p1; wait $p2
for n in r8_s7 r8_s8; do
  gid eval render --weights out/renderer_$n --n 32 --sim $D/render_large $D/render_small \
      --against $W --json $R/eval_render_$n.json > $R/eval_render_$n.log 2>&1 &
done
wait
for n in r8_s7 r8_s8; do cp checkpoints/$n/render/loss.csv $R/${n}_loss.csv; done
# C: the stream kind (gid make-data --kind stream): three held-out streams checked against gid extract, a contact
# sheet of three training streams, and ten held-out streams for the renderer (every view a triple, wider motion)
gid make-data -o $D/stream_verify --split eval --kind stream --verify 3 --workers 1
cp $D/stream_verify/verify.json $R/verify_stream.json
gid make-data -o $D/stream_try --split train --scenes 3 --kind stream --triples 1.0 --workers 1
gid make-data -o $D/stream_try --contact-sheet $R/stream_contact_sheet.jpg --sheet-count 12
gid make-data -o $D/stream_eval --split eval --kind stream --scenes 10 --triples 1.0 --amplitude 3 12 --workers 1
# the shipped renderer on the ten held-out streams, exact and extracted flow (gate_stream_sim.json)
python tools/experiments/gate_variants.py $R/gate_stream_sim.json $W current,range_0.5 $D/stream_eval \
    extracted:$D/stream_eval
