#!/bin/bash
# The sf2 continuation's recipe (MODEL_CARD "A longer CPU continuation"), fixed step counts, v2 stills.
set -e
cd /work/main
export PYTHONPATH=/tmp/w/snap
PY=/work/main/.venv/bin/python
$PY -m gid.gid_engine.cli train unet --config small --init-from gid_engine/assets/motion_prior --out /tmp/w/pv2/ck \
  --pairs 1000 --data-seed 1 --stills v2 --workers 2 --steps 4374 --batch 16 --lr 3e-4 --threads 2
$PY -m gid.gid_engine.cli train freq-attn --config small --init-from gid_engine/assets/motion_prior --out /tmp/w/pv2/ck \
  --pairs 1000 --data-seed 1 --stills v2 --steps 708 --batch 2 --lr 2e-4 --threads 2 --export /tmp/w/pv2/prior_v2
echo DONE
