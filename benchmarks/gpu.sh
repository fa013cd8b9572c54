#!/usr/bin/env bash
# One prepared check for a borrowed GPU machine (see docs/benchmarks.md, "On a GPU").
#
# 1. installs wheels carried in .whl/ (the device has torch but not gymnasium, vizdoom, ...);
# 2. runs the dream benchmark on CUDA at the CarRacing sizes, batch 1024 and 16384;
# 3. runs a tiny Doom pipeline on CUDA end to end (fails fast if a tensor is on the wrong device);
# 4. runs the Doom quick recipe on CUDA, as far as QUICK_LIMIT seconds allow, and keeps its
#    per-stage seconds and scores.
#
# Everything it keeps lands in $OUT (default /tmp/wmkit-gpu): gpu.log, dream.jsonl, and the
# quick run's stages.json and metrics. Prepare the wheels here first (Python 3.12, x86_64):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 ... -d .whl gymnasium ...
#   pip wheel --no-deps --no-build-isolation -w .whl .
set -uo pipefail
OUT=${OUT:-/tmp/wmkit-gpu}
QUICK_LIMIT=${QUICK_LIMIT:-360}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu.log") 2>&1
export PYTHONUNBUFFERED=1 SDL_VIDEODRIVER=dummy
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
fi
nvidia-smi -L
nproc
python3 -c "import torch, wmkit; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
python3 -m wmkit plugins

echo "== dream benchmark"
python3 benchmarks/dream.py --batch 1024 | tee "$OUT/dream.jsonl"
python3 benchmarks/dream.py --batch 16384 | tee -a "$OUT/dream.jsonl"

echo "== tiny Doom pipeline on CUDA"
t0=$(date +%s)
python3 -m wmkit run recipes/doom_takecover_quick.yaml --out /tmp/tiny \
  --set collect.episodes=32 --set vision.epochs=1 --set memory.epochs=2 \
  --set optimizer.generations=2 --set optimizer.population=8 \
  --set optimizer.rollouts_per_candidate=2 --set dream.score_episodes=8 \
  --set eval.episodes=16 || { echo "tiny pipeline failed"; exit 1; }
echo "tiny pipeline: $(( $(date +%s) - t0 )) s"

echo "== Doom quick recipe on CUDA (limit ${QUICK_LIMIT} s)"
t0=$(date +%s)
timeout "$QUICK_LIMIT" python3 -m wmkit run recipes/doom_takecover_quick.yaml --out /tmp/quick
echo "quick recipe: rc $? after $(( $(date +%s) - t0 )) s"
cp /tmp/quick/stages.json "$OUT/quick_stages.json" 2>/dev/null
cp /tmp/quick/eval.json "$OUT/quick_eval.json" 2>/dev/null
for f in /tmp/quick/metrics/*.jsonl; do cp "$f" "$OUT/quick_$(basename "$f")" 2>/dev/null; done
cat "$OUT/quick_stages.json" 2>/dev/null
