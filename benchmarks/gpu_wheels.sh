#!/usr/bin/env bash
# Fills .whl/ with the wheels benchmarks/gpu.sh installs on a borrowed GPU machine (it has
# no network): wmkit's own wheel, and binary wheels of what a run imports and that machine's
# image lacks, at the versions this checkout's .venv runs, for the device's Python (PY,
# default 3.12, the H200 image's). Run it here, then carry .whl to the device:
#
#   bash benchmarks/gpu_wheels.sh            # after `make setup`
#   run: carry [".whl"], command "bash benchmarks/gpu.sh", timeout_s 560
#
# The H200 image (.library/device/KINDS.md, read 2026-11-17) already holds torch, numpy,
# matplotlib, pillow, imageio, safetensors, pyyaml, pluggy, rich, typer, tensorboard, pytest
# and their needs; the working tree and the wheels must stay under 64 MiB together.
set -euo pipefail
PY=${PY:-3.12}
PIP=${PIP:-.venv/bin/pip}
WANT=(gymnasium farama-notifications vizdoom pygame-ce cma pydantic pydantic-core
  annotated-types typing-inspection)

# name==version of each wanted package, as .venv has it (pip's names, compared normalised).
norm() { tr 'A-Z_.' 'a-z--'; }
FROZEN=$("$PIP" freeze --all 2>/dev/null)
pins=()
for name in "${WANT[@]}"; do
  line=$(echo "$FROZEN" | awk -F'==' -v want="$name" \
    '{n=tolower($1); gsub(/[_.]/, "-", n)} n==want {print; exit}')
  if [ -z "$line" ]; then
    echo "gpu_wheels: $name is not installed in .venv (run make setup first)" >&2
    exit 2
  fi
  pins+=("$line")
done

rm -rf .whl && mkdir -p .whl
"$PIP" download -q --no-deps --only-binary=:all: --python-version "$PY" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any -d .whl "${pins[@]}"
"$PIP" wheel -q --no-deps --no-build-isolation -w .whl .
mib() { du -cb --apparent-size --files0-from=- | tail -1 | awk '{printf "%.1f MiB", $1 / 1048576}'; }
echo "gpu_wheels: $(ls .whl | wc -l) wheels, $(find .whl -type f -print0 | mib)"
echo "gpu_wheels: the working tree beside them: $(git ls-files -co --exclude-standard -z | mib)" \
  "(64 MiB in all; benchmarks/gpu_slim.sh on leaves the zoo's weights behind)"
