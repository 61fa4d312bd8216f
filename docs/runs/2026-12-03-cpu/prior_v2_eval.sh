#!/bin/bash
cd /tmp/w/pv2
while ! grep -q "^DONE" /tmp/w/pv2/train.log; do sleep 15; if ! pgrep -f pv2/run.sh >/dev/null && ! grep -q "^DONE" train.log; then echo "training failed"; exit 1; fi; done
export PYTHONPATH=/tmp/w/snap
G="/work/main/.venv/bin/python -m gid.gid_engine.cli eval prior --weights /tmp/w/pv2/prior_v2 --seam 0 --steps 50"
$G --n 32 --real-pairs 4 --init-strength 1 --json eval_plain.json > eval_plain.log 2>&1
for S in 1 2 3 4; do $G --n 0 --real-pairs 4 --init-strength 1 --seed $S --json real_plain_seed$S.json > real_plain_seed$S.log 2>&1; done
$G --n 0 --real-pairs 4 --repeats 5 --init-strength 0.5 --json real_init05.json > real_init05.log 2>&1
$G --n 32 --real-pairs 4 --init-strength 0.5 --json eval_init05.json > eval_init05.log 2>&1
echo EVALDONE
