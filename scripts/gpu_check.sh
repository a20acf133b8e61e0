#!/usr/bin/env bash
# GPU check of unlearn-sweep (docs/gpu-check.md): on a CUDA machine, one tiny-zoo `unlearn-sweep train` run with
# DeepSpeed ZeRO-2 and one with ZeRO-3 in bf16, and a 2-trial sweep with `resources: {gpus: 1}`, each compared
# with the same run on the CPU (relative tolerance printed), with throughput (steps/s, tokens/s).
#   bash scripts/gpu_check.sh              # no CUDA here: says so in one line, exits 0
#   bash scripts/gpu_check.sh --cpu-only   # the CPU reference runs only (the check's plumbing, on any machine)
# Installs nothing beyond the project's requirements (scripts/bootstrap.sh). Exit 1 when a metric is off.
set -u
cpu_only=0
for arg in "$@"; do
  case "$arg" in
    --cpu-only) cpu_only=1 ;;
    -h|--help) sed -n 2,7p "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: unknown argument $arg (only --cpu-only)" >&2; exit 2 ;;
  esac
done
[ "${GPU_CHECK_CPU_ONLY:-0}" = 1 ] && cpu_only=1
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
source "$root/scripts/bootstrap.sh" >&2 || exit 1
if [ "$cpu_only" = 0 ]; then
  if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no CUDA device on this machine (torch.cuda.is_available() is False): nothing to check"
    exit 0
  fi
  export DS_ACCELERATOR=cuda
  exec python "$root/scripts/gpu_check.py"
fi
exec python "$root/scripts/gpu_check.py" --cpu-only
