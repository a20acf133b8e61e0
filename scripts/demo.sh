#!/usr/bin/env bash
# The main job, from a fresh clone: install, prepare tofu-mini and the tiny zoo (cached), run the default sweep.
#   bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
unlearn-sweep prepare tofu-mini
if unlearn-sweep --help | grep -q " run "; then
  unlearn-sweep run sweeps/tofu-mini.yaml
fi
