#!/usr/bin/env bash
# bash cluster/local-cluster.sh start|status|stop [--all]
#
# A two-node Ray cluster on this machine, every socket on 127.0.0.1, to develop and test cluster runs:
#   bash cluster/local-cluster.sh start        # head (GCS 127.0.0.1:6380, dashboard 127.0.0.1:8265) + 1 worker
#   bash cluster/local-cluster.sh status       # the nodes and their resources (`ray status`)
#   bash cluster/local-cluster.sh stop         # stop this cluster's processes (SIGTERM, SIGKILL after 3 s)
#   bash cluster/local-cluster.sh stop --all   # `ray stop --force`: every Ray process of this user
# Then submit a sweep to it (entrypoints run in the repository root):
#   ray job submit --address http://127.0.0.1:8265 -- unlearn-sweep run presets/tofu-mini.yaml --address auto
#
# The nodes carry distinct custom resources ({"head_node": 1} and {"worker_node": 1}) so a test can see
# where each trial ran. Port 6379 is left alone (Redis uses it on this machine). Each node has its own Ray
# temp dir under $UNLEARN_SWEEP_RAY_TMP, so two nodes coexist on one machine and a plain `ray.init()` elsewhere
# does not attach to this cluster by accident.
#
# Environment (defaults): UNLEARN_SWEEP_RAY_PORT (6380), UNLEARN_SWEEP_DASHBOARD_PORT (8265),
#   UNLEARN_SWEEP_RAY_CLIENT_PORT (10001), UNLEARN_SWEEP_RAY_TMP (/tmp/unlearn-sweep-ray),
#   UNLEARN_SWEEP_HEAD_CPUS (1), UNLEARN_SWEEP_WORKER_CPUS (1), UNLEARN_SWEEP_OBJECT_STORE_MB (256 per node),
#   PYTHON (the repo's .venv/bin/python when present, else python3).
# Token auth: export RAY_AUTH_MODE=token RAY_AUTH_TOKEN=<32+ random chars> before `start`, and the same two
#   variables wherever you run `ray job submit` (without them the dashboard answers 401).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"

# Ray >= 2.59 turns token auth on for a new local head as soon as ~/.ray/auth_token exists (any earlier
# local `ray.init()` writes it), but the loopback worker join below does not pick the token up: this dev
# cluster listens on 127.0.0.1 only, so auth is off unless you ask for it (see the Token auth line above).
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled}
PORT=${UNLEARN_SWEEP_RAY_PORT:-6380}
DASH_PORT=${UNLEARN_SWEEP_DASHBOARD_PORT:-8265}
CLIENT_PORT=${UNLEARN_SWEEP_RAY_CLIENT_PORT:-10001}
TMP_ROOT=${UNLEARN_SWEEP_RAY_TMP:-/tmp/unlearn-sweep-ray}
HEAD_CPUS=${UNLEARN_SWEEP_HEAD_CPUS:-1}
WORKER_CPUS=${UNLEARN_SWEEP_WORKER_CPUS:-1}
STORE_BYTES=$(( ${UNLEARN_SWEEP_OBJECT_STORE_MB:-256} * 1024 * 1024 ))
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x "$REPO/.venv/bin/python" ]; then PY="$REPO/.venv/bin/python"
else PY=python3; fi
RAY=("$PY" -m ray.scripts.scripts)
# Job entrypoints (`python`, `unlearn-sweep`) resolve on the nodes' PATH: put this Python's bin dir first.
PY_BIN="$(dirname "$(command -v "$PY")")"
export PATH="$PY_BIN:$PATH"

# Loopback only: with this set to 0 Ray binds and advertises 127.0.0.1 (and refuses `ray start --address`
# for non-head nodes, which is why the worker joins through cluster/local_node.py).
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0
export MLFLOW_DISABLE_TELEMETRY=${MLFLOW_DISABLE_TELEMETRY:-true}

port_busy() {  # port_busy PORT -> 0 when something listens on 127.0.0.1:PORT
  "$PY" -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(0 if s.connect_ex(('127.0.0.1', $1)) == 0 else 1)"
}

free_port() {
  "$PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1]); s.close()"
}

alive_nodes() {  # number of alive nodes the dashboard at 127.0.0.1:$DASH_PORT reports (0 when unreachable)
  "$PY" -c '
import sys
from ray.util.state import list_nodes
try:
    print(sum(n.state == "ALIVE" for n in list_nodes(address=sys.argv[1])))
except Exception:
    print(0)
' "http://127.0.0.1:$DASH_PORT" 2>/dev/null || echo 0
}

submit_hint() {
  cat <<EOF
Ray cluster up: 2 nodes on 127.0.0.1 (GCS 127.0.0.1:$PORT, dashboard http://127.0.0.1:$DASH_PORT).
Submit a sweep (job entrypoints run in $REPO):
  ray job submit --address http://127.0.0.1:$DASH_PORT -- unlearn-sweep run presets/tofu-mini.yaml --address auto
Follow it: ray job logs --address http://127.0.0.1:$DASH_PORT --follow JOB_ID   (or open http://127.0.0.1:$DASH_PORT)
Or run the driver here:
  unlearn-sweep run presets/tofu-mini.yaml --address 127.0.0.1:$PORT
Stop it:
  bash cluster/local-cluster.sh stop
EOF
}

cmd_start() {
  if port_busy "$PORT"; then
    echo "local-cluster: 127.0.0.1:$PORT is already in use (a cluster already running? try: bash $0 status)." >&2
    echo "  Pick another port with UNLEARN_SWEEP_RAY_PORT=... (6379 is Redis here)." >&2
    exit 1
  fi
  if port_busy "$DASH_PORT"; then
    echo "local-cluster: dashboard port 127.0.0.1:$DASH_PORT is in use; set UNLEARN_SWEEP_DASHBOARD_PORT." >&2
    exit 1
  fi
  if port_busy "$CLIENT_PORT"; then CLIENT_PORT=$(free_port); fi
  mkdir -p "$TMP_ROOT/head" "$TMP_ROOT/worker"
  cd "$REPO"  # the nodes' working directory: job entrypoints resolve relative paths (presets/...) from here
  echo "starting the head node (127.0.0.1:$PORT) ..."
  "${RAY[@]}" start --head \
    --node-ip-address=127.0.0.1 --port="$PORT" \
    --include-dashboard=true --dashboard-host=127.0.0.1 --dashboard-port="$DASH_PORT" \
    --dashboard-agent-listen-port="$(free_port)" --ray-client-server-port="$CLIENT_PORT" \
    --min-worker-port=0 --max-worker-port=0 \
    --num-cpus="$HEAD_CPUS" --num-gpus=0 --object-store-memory="$STORE_BYTES" \
    --resources='{"head_node": 1}' \
    --temp-dir="$TMP_ROOT/head" --disable-usage-stats >"$TMP_ROOT/head-start.log" 2>&1 \
    || { cat "$TMP_ROOT/head-start.log" >&2; cmd_stop; exit 1; }
  echo "starting the worker node ..."
  "$PY" "$HERE/local_node.py" worker --address "127.0.0.1:$PORT" --temp-dir "$TMP_ROOT/worker" \
    --num-cpus "$WORKER_CPUS" --resources '{"worker_node": 1}' --object-store-memory "$STORE_BYTES" \
    >"$TMP_ROOT/worker-start.log" 2>&1 \
    || { cat "$TMP_ROOT/worker-start.log" >&2; cmd_stop; exit 1; }
  for _ in $(seq 1 60); do
    if [ "$(alive_nodes)" -ge 2 ]; then submit_hint; return 0; fi
    sleep 1
  done
  echo "local-cluster: the 2 nodes did not both come up within 60 s; logs under $TMP_ROOT/*/session_latest/logs" >&2
  cmd_stop
  exit 1
}

cmd_status() {
  if ! port_busy "$PORT"; then echo "local cluster: not running (nothing on 127.0.0.1:$PORT)"; return 1; fi
  "${RAY[@]}" status --address "127.0.0.1:$PORT"
}

cmd_stop() {
  if [ "${1:-}" = "--all" ]; then
    "${RAY[@]}" stop --force
  else
    "$PY" "$HERE/local_node.py" stop --temp-root "$TMP_ROOT" --gcs-port "$PORT"
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  status) cmd_status ;;
  stop) shift; cmd_stop "${1:-}" ;;
  *) echo "usage: bash cluster/local-cluster.sh start|status|stop [--all]" >&2; exit 2 ;;
esac
