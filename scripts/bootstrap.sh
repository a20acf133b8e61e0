#!/usr/bin/env bash
# Create ./.venv and install unlearn-sweep with its pinned, CPU-safe dependencies (idempotent).
#   source scripts/bootstrap.sh        # (scripts/demo.sh and scripts/test.sh source it)
# torch stays at 2.13.0 through constraints.txt (the CPU wheel where one is on disk / in find-links,
# the CUDA build from PyPI on a GPU host); nothing else may pull another torch.
# Sourced, so it returns (never exits your shell) and checks every step itself.
_us_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1
cd "$_us_root" || return 1
_us_py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then  # no copy of pip in it (4 s of the install): see _us_find_pip
  "$_us_py" -m venv --without-pip .venv || { echo "bootstrap: could not create .venv with $_us_py" >&2; return 1; }
fi
# pip for .venv, looked up only when something is installed: its own where it has one, else the pip of the Python the
# venv was made from (pip >= 22.3 installs into another environment with --python), else a copy put in .venv now
_us_find_pip() {
  local _us_base
  if .venv/bin/python -m pip --version >/dev/null 2>&1; then _us_pipcmd=(.venv/bin/python -m pip); return 0; fi
  _us_base=$(.venv/bin/python -c "import sys; print(sys._base_executable)" 2>/dev/null)
  if [ -n "$_us_base" ] && "$_us_base" -m pip --python .venv/bin/python --version >/dev/null 2>&1; then
    _us_pipcmd=("$_us_base" -m pip --python .venv/bin/python); return 0
  fi
  .venv/bin/python -m ensurepip -q >/dev/null 2>&1 || return 1
  _us_pipcmd=(.venv/bin/python -m pip)
}
_us_stamp=.venv/.unlearn-sweep-installed
_us_want=$(cat requirements.txt constraints.txt pyproject.toml | sha256sum | cut -c1-16)
# pip, quiet: no progress bars, no version nag, and none of the "Location ... is ignored" warnings that a
# machine-wide find-links setting prints for every package (errors still show)
_us_pip() {
  PIP_CONSTRAINT="$_us_root/constraints.txt" "${_us_pipcmd[@]}" install -q --progress-bar off \
    --disable-pip-version-check "$@" 2>&1 | grep -v -E "^WARNING: Location '.*' is ignored"
  return "${PIPESTATUS[0]}"
}
# uv, where it installs (about 30 s from an empty cache instead of pip's 2-4 minutes): the same requirements, the
# same constraints and pip's own index settings (`pip config list`: index-url, extra-index-url, find-links, so the
# CPU torch wheel a machine keeps in its find-links is the one chosen, as pip would). UNLEARN_SWEEP_INSTALLER=pip
# skips it; any failure of uv (not installable, a resolution error, torch not 2.13.0 after it) falls back to pip.
_us_uv() {
  [ "${UNLEARN_SWEEP_INSTALLER:-uv}" = "pip" ] && return 1
  if [ ! -x .venv/bin/uv ]; then
    _us_pip uv==0.13.9 >/dev/null 2>&1 || return 1
  fi
  local _us_args=() _us_key _us_val _us_url
  while IFS='=' read -r _us_key _us_val; do
    _us_val=${_us_val#\'}; _us_val=${_us_val%\'}
    case "$_us_key" in
      *.index-url) _us_args+=(--index-url "$_us_val") ;;
      *.extra-index-url) for _us_url in $_us_val; do _us_args+=(--extra-index-url "$_us_url"); done ;;
      *.find-links) for _us_url in $_us_val; do _us_args+=(--find-links "$_us_url"); done ;;
    esac
  done < <("${_us_pipcmd[@]}" config list 2>/dev/null)
  .venv/bin/uv pip install -q --python .venv/bin/python --index-strategy unsafe-best-match "${_us_args[@]}" \
    -c constraints.txt -r requirements.txt || return 1
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e . || return 1
  .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '2.13.0' else 1)"
}
if [ "$(cat "$_us_stamp" 2>/dev/null)" != "$_us_want" ]; then
  echo "installing dependencies into .venv (first run: under a minute with uv, 2-4 minutes with pip) ..."
  _us_find_pip || { echo "bootstrap: no pip for .venv: neither the pip (>= 22.3) of the Python that made it nor ensurepip works" >&2; return 1; }
  if ! _us_uv; then
    [ "${UNLEARN_SWEEP_INSTALLER:-uv}" = "pip" ] || echo "bootstrap: uv could not install; installing with pip" >&2
    _us_pip -r requirements.txt || { echo "bootstrap: pip install -r requirements.txt failed" >&2; return 1; }
    _us_pip --no-deps -e . || { echo "bootstrap: pip install -e . failed" >&2; return 1; }
  fi
  echo "$_us_want" > "$_us_stamp"
fi
# Environment for everything run from here: offline hub, DeepSpeed on CPU when there is no GPU,
# Ray on loopback only, no telemetry.
# Python writes its bytecode caches (.pyc) again: uv installs without them (pip compiled them), and a machine that
# sets PYTHONDONTWRITEBYTECODE then compiles every module of torch, transformers, deepspeed and ray from source in
# every process, every time (a trial worker's imports: 14.2 s instead of 6 s, measured on 2 cores).
unset PYTHONDONTWRITEBYTECODE
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1} HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE:-1}
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$_us_root/.cache/torch_extensions}
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0
export MLFLOW_DISABLE_TELEMETRY=true MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
export HF_HUB_DISABLE_PROGRESS_BARS=${HF_HUB_DISABLE_PROGRESS_BARS:-1} TOKENIZERS_PARALLELISM=false
if [ ! -e /dev/nvidiactl ]; then  # no NVIDIA driver, as the CLI decides it (importing torch to ask takes 1-3 s)
  export DS_ACCELERATOR=${DS_ACCELERATOR:-cpu}
fi
export PATH="$_us_root/.venv/bin:$PATH"
