#!/usr/bin/env bash
# Create ./.venv and install unlearn-sweep with its pinned, CPU-safe dependencies (idempotent).
#   bash scripts/bootstrap.sh          # sourced by scripts/demo.sh and scripts/test.sh
# torch stays at 2.13.0 through constraints.txt (the CPU wheel where one is on disk / in find-links,
# the CUDA build from PyPI on a GPU host); nothing else may pull another torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.unlearn-sweep-installed
want=$(cat requirements.txt constraints.txt pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing dependencies into .venv (first run: a few minutes) ..."
  PIP_CONSTRAINT="$PWD/constraints.txt" .venv/bin/python -m pip install -q -r requirements.txt
  PIP_CONSTRAINT="$PWD/constraints.txt" .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi
# Environment for everything run from here: offline hub, DeepSpeed on CPU when there is no GPU,
# Ray on loopback only, no telemetry.
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1} HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE:-1}
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$PWD/.cache/torch_extensions}
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0
export MLFLOW_DISABLE_TELEMETRY=true MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
if ! .venv/bin/python -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  export DS_ACCELERATOR=${DS_ACCELERATOR:-cpu}
fi
export PATH="$PWD/.venv/bin:$PATH"
