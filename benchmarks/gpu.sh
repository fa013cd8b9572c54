#!/usr/bin/env bash
# One prepared check for a borrowed GPU machine (see docs/benchmarks.md, "On a GPU"); it
# fits in about 8 minutes (QUICK_LIMIT bounds the last step).
#
# 1. installs wheels carried in .whl/ (the device has torch but not gymnasium, vizdoom, ...);
# 2. runs the CUDA tests of the graphed dream and of the training switches (graphed = eager);
# 3. runs the dream benchmark on CUDA at the CarRacing sizes, batch 1024 and 16384, eager and
#    graphed (dream.jsonl: steps/s and roofline fraction of each);
# 4. runs the training benchmark: V frames/s fp32 vs bf16 (+ channels_last), M sequences/s
#    fp32 vs bf16 (train.jsonl);
# 4b. times the Doom Dreamer recipe's training step with the actor-critic's imagination eager
#    and replayed as a CUDA graph (online.jsonl: graph_speedup);
# 5. runs a tiny Doom pipeline on CUDA end to end twice, fp32 and with every switch on
#    (bf16 V and M, channels_last, dream.graph), and prints both final V and M losses;
# 6. runs the Doom quick recipe on CUDA with the switches on, as far as QUICK_LIMIT seconds
#    allow, and keeps its per-stage seconds and scores.
#
# Everything it keeps lands in $OUT (default /tmp/wmkit-gpu): gpu.log, dream.jsonl,
# train.jsonl, online.jsonl, tiny_*.json and the quick run's stages.json and metrics.
# Prepare here first (the device has no network, and a call sends at most 64 MiB):
#   bash benchmarks/gpu_wheels.sh     # .whl/: what the device's image lacks, for Python 3.12
#   bash benchmarks/gpu_slim.sh on    # the zoo's 59 MB of weights stay here (gpu.sh needs none)
#   run: carry [".whl"], command "bash benchmarks/gpu.sh", timeout_s 560
#   bash benchmarks/gpu_slim.sh off   # before any commit (a hook refuses them until then)
set -uo pipefail
OUT=${OUT:-/tmp/wmkit-gpu}
QUICK_LIMIT=${QUICK_LIMIT:-150}
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

SWITCHES=(--set dream.graph=true --set vision.precision=bf16 --set vision.channels_last=true
  --set memory.precision=bf16)

echo "== CUDA tests: graphed dream = eager, training switches"
if python3 -c "import pytest" 2>/dev/null; then
  python3 -m pytest -q -rs -p no:cacheprovider tests/dreams/test_dream_graph.py \
    tests/dreams/test_imagination_graph.py tests/pipelines/test_train_precision.py 2>&1 | tail -15
else
  echo "pytest is not installed here: carry its wheels (pytest, pluggy, iniconfig) in .whl"
fi

echo "== dream benchmark (eager and graphed)"
python3 benchmarks/dream.py --batch 1024 --steps 200 --no-real | tee "$OUT/dream.jsonl"
python3 benchmarks/dream.py --batch 16384 --steps 200 --no-real | tee -a "$OUT/dream.jsonl"

echo "== training benchmark (fp32 vs bf16)"
python3 benchmarks/train.py | tee "$OUT/train.jsonl"

echo "== Dreamer training step on CUDA, imagination eager vs graphed"
python3 benchmarks/online.py --device cuda --updates 8 --episodes 3 | tee "$OUT/online.jsonl"

final_losses() {  # the last epoch's row of V's and M's training metrics
  for role in vision memory; do
    echo "$1 $role: $(tail -n 1 "$2/metrics/fit_$role.jsonl" 2>/dev/null)"
  done
}

echo "== tiny Doom pipeline on CUDA, fp32 then with the switches on"
TINY=(--set collect.episodes=32 --set vision.epochs=1 --set memory.epochs=2
  --set optimizer.generations=2 --set optimizer.population=8
  --set optimizer.rollouts_per_candidate=2 --set dream.score_episodes=8 --set eval.episodes=16
  --set iterate.episodes=32 --set iterate.memory_epochs=2 --set iterate.generations=2)
for variant in fp32 switches; do
  t0=$(date +%s)
  extra=()
  [ "$variant" = switches ] && extra=("${SWITCHES[@]}")
  python3 -m wmkit run recipes/doom_takecover_quick.yaml --out "/tmp/tiny_$variant" \
    "${TINY[@]}" "${extra[@]}" || { echo "tiny pipeline ($variant) failed"; exit 1; }
  echo "tiny pipeline ($variant): $(( $(date +%s) - t0 )) s"
  cp "/tmp/tiny_$variant/stages.json" "$OUT/tiny_${variant}_stages.json" 2>/dev/null
  final_losses "$variant" "/tmp/tiny_$variant" | tee -a "$OUT/tiny_losses.txt"
done

echo "== Doom quick recipe on CUDA, switches on (limit ${QUICK_LIMIT} s)"
t0=$(date +%s)
timeout "$QUICK_LIMIT" python3 -m wmkit run recipes/doom_takecover_quick.yaml --out /tmp/quick \
  "${SWITCHES[@]}"
echo "quick recipe: rc $? after $(( $(date +%s) - t0 )) s"
cp /tmp/quick/stages.json "$OUT/quick_stages.json" 2>/dev/null
cp /tmp/quick/eval.json "$OUT/quick_eval.json" 2>/dev/null
for f in /tmp/quick/metrics/*.jsonl; do cp "$f" "$OUT/quick_$(basename "$f")" 2>/dev/null; done
final_losses quick /tmp/quick
cat "$OUT/quick_stages.json" 2>/dev/null
