#!/usr/bin/env bash
# The main job, from a fresh clone: install, prepare tofu-mini and the tiny zoo (cached), run the default sweep.
#   bash scripts/demo.sh
# Running it again reuses the zoo and resumes/reprints the default sweep in runs/sweeps/tofu-mini.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
source scripts/bootstrap.sh || exit 1
unlearn-sweep prepare tofu-mini || exit $?
if [ -e runs/sweeps/tofu-mini/points.jsonl ]; then
  unlearn-sweep resume runs/sweeps/tofu-mini
else
  unlearn-sweep run sweeps/tofu-mini.yaml
fi
