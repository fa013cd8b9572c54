#!/usr/bin/env bash
# Keeps the zoo's checkpoints (about 59 MB of tracked weights) out of what a device call
# sends, so that the working tree and the wheels of benchmarks/gpu_wheels.sh fit the device
# tool's 64 MiB. gpu.sh needs none of the zoo.
#
#   bash benchmarks/gpu_slim.sh on    # before the device call
#   bash benchmarks/gpu_slim.sh off   # after it, before any commit
#
# "on" takes the checkpoints out of git's index (the files stay on disk) and ignores them in
# .git/info/exclude, so they are neither tracked nor untracked-and-sent; it also installs a
# pre-commit hook that refuses every commit until "off", which would otherwise record the
# zoo's deletion. "off" puts the index back as HEAD has it and removes both.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PATTERN='/zoo/*/checkpoints/'
EXCLUDE=.git/info/exclude
HOOK=.git/hooks/pre-commit
MARK='# wmkit gpu_slim'

case "${1:-}" in
  on)
    if [ -e "$HOOK" ] && ! grep -q "$MARK" "$HOOK"; then
      echo "gpu_slim: $HOOK exists and is not ours; not touching it" >&2
      exit 2
    fi
    git rm -r -q --cached zoo/*/checkpoints
    grep -qxF "$PATTERN" "$EXCLUDE" 2>/dev/null || echo "$PATTERN" >>"$EXCLUDE"
    mkdir -p .git/hooks
    printf '#!/bin/sh\n%s\necho "gpu_slim is on: run bash benchmarks/gpu_slim.sh off before committing" >&2\nexit 1\n' \
      "$MARK" >"$HOOK"
    chmod +x "$HOOK"
    git ls-files -co --exclude-standard -z | du -cb --apparent-size --files0-from=- | tail -1 |
      awk '{printf "gpu_slim: on; the working tree that travels: %.1f MiB\n", $1 / 1048576}'
    ;;
  off)
    git reset -q -- zoo
    if [ -f "$EXCLUDE" ]; then
      grep -vxF "$PATTERN" "$EXCLUDE" >"$EXCLUDE.tmp" || true
      mv "$EXCLUDE.tmp" "$EXCLUDE"
    fi
    if [ -f "$HOOK" ] && grep -q "$MARK" "$HOOK"; then rm "$HOOK"; fi
    git status --short -- zoo
    echo "gpu_slim: off; the zoo is tracked again"
    ;;
  *)
    echo "usage: bash benchmarks/gpu_slim.sh on|off" >&2
    exit 2
    ;;
esac
