#!/usr/bin/env bash
# The main job, from a fresh clone: install, prepare tofu-mini and the two zoo models it needs (cached), run the
# default sweep, and print where the time went.
#   bash scripts/demo.sh
# Running it again reuses the zoo and resumes/reprints the default sweep in runs/sweeps/tofu-mini.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
t0=$(date +%s)
source scripts/bootstrap.sh || exit 1
t1=$(date +%s)
unlearn-sweep prepare tofu-mini || exit $?
t2=$(date +%s)
if [ -e runs/sweeps/tofu-mini/points.jsonl ]; then
  unlearn-sweep resume runs/sweeps/tofu-mini
else
  unlearn-sweep run presets/tofu-mini.yaml
fi
rc=$?
t3=$(date +%s)
echo "demo time: install $((t1 - t0))s, prepare $((t2 - t1))s, sweep $((t3 - t2))s, total $((t3 - t0))s"
exit $rc
