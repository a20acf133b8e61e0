#!/usr/bin/env bash
# bash cluster/mlflow-server.sh start|stop|status
#
# An MLflow tracking server on one host: runs and params in PostgreSQL, artifacts in a directory the server
# proxies (clients upload through it, so cluster nodes need no shared artifact path).
#   bash cluster/mlflow-server.sh start     # http://127.0.0.1:5000, database "mlflow" on 127.0.0.1:5432
#   bash cluster/mlflow-server.sh status    # pid, backend, /health
#   bash cluster/mlflow-server.sh stop      # ends the server's whole process group
# Then: unlearn-sweep run presets/tofu-mini.yaml --tracking-uri http://127.0.0.1:5000
#
# The database is created when missing. When PostgreSQL cannot be used (unreachable, refused the login, or
# the psycopg driver is not installed) the server falls back to SQLite in the state dir and prints why.
#
# Environment (defaults):
#   MLFLOW_PORT (5000)   MLFLOW_HOST (127.0.0.1; for nodes on other hosts use 0.0.0.0 and MLFLOW_ALLOWED_HOSTS)
#   MLFLOW_PG_HOST (127.0.0.1)  MLFLOW_PG_PORT (5432)  MLFLOW_PG_USER (postgres)  MLFLOW_PG_DB (mlflow)
#   MLFLOW_PG_PASSWORD (none: trust auth or ~/.pgpass; handed to the server as PGPASSWORD, not in the URI)
#   MLFLOW_BACKEND (auto; postgres = fail instead of falling back; sqlite = skip PostgreSQL)
#   UNLEARN_SWEEP_MLFLOW_DIR (state dir: artifacts/, mlflow.db, server.pid, server.log;
#     default ${UNLEARN_SWEEP_CACHE:-~/.cache/unlearn-sweep}/mlflow-server)
#   PYTHON (the repo's .venv/bin/python when present, else python3)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"

PORT=${MLFLOW_PORT:-5000}
HOST=${MLFLOW_HOST:-127.0.0.1}
PG_HOST=${MLFLOW_PG_HOST:-127.0.0.1}
PG_PORT=${MLFLOW_PG_PORT:-5432}
PG_USER=${MLFLOW_PG_USER:-postgres}
PG_DB=${MLFLOW_PG_DB:-mlflow}
BACKEND=${MLFLOW_BACKEND:-auto}
STATE=${UNLEARN_SWEEP_MLFLOW_DIR:-${UNLEARN_SWEEP_CACHE:-$HOME/.cache/unlearn-sweep}/mlflow-server}
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x "$REPO/.venv/bin/python" ]; then PY="$REPO/.venv/bin/python"
else PY=python3; fi
PIDFILE="$STATE/server.pid"
export MLFLOW_DISABLE_TELEMETRY=${MLFLOW_DISABLE_TELEMETRY:-true}

# prepare_postgres: creates $PG_DB when missing; prints the backend URI, or exits 1 with the reason on stderr.
prepare_postgres() {
  MLFLOW_PG_PASSWORD=${MLFLOW_PG_PASSWORD:-} "$PY" - "$PG_HOST" "$PG_PORT" "$PG_USER" "$PG_DB" <<'EOF'
import os, socket, sys
from urllib.parse import quote
host, port, user, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
password = os.environ.get("MLFLOW_PG_PASSWORD") or None
try:
    socket.create_connection((host, port), timeout=3).close()
except OSError as exc:
    sys.exit(f"PostgreSQL at {host}:{port} is unreachable ({exc})")
try:
    import psycopg
    from psycopg import sql
except ImportError:
    sys.exit('the PostgreSQL driver psycopg is not installed (pip install "psycopg[binary]==3.3.9")')
try:
    with psycopg.connect(host=host, port=port, user=user, password=password, dbname="postgres",
                         connect_timeout=5, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
            print(f"created database {db!r} on {host}:{port}", file=sys.stderr)
except psycopg.Error as exc:
    sys.exit(f"PostgreSQL at {host}:{port} refused user {user!r} or database {db!r}: "
             f"{str(exc).strip().splitlines()[0]}")
# No password in the URI (it would show in `ps`): the server gets it as PGPASSWORD, which libpq reads.
print(f"postgresql+psycopg://{quote(user)}@{host}:{port}/{quote(db)}")
EOF
}

health_ok() {
  "$PY" -c "import sys, urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:$PORT/health', timeout=2).status == 200 else 1)" \
    2>/dev/null
}

running_pid() {  # prints the server's pid when it is alive
  [ -f "$PIDFILE" ] || return 1
  local pid; pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

cmd_start() {
  if pid=$(running_pid); then
    echo "mlflow-server: already running (pid $pid, $(cat "$STATE/backend.txt" 2>/dev/null)); stop it first" >&2
    exit 1
  fi
  if "$PY" -c "import socket,sys; s=socket.socket(); sys.exit(0 if s.connect_ex(('127.0.0.1', $PORT)) == 0 else 1)"; then
    echo "mlflow-server: port $PORT is in use; pick another with MLFLOW_PORT=..." >&2
    exit 1
  fi
  mkdir -p "$STATE/artifacts"
  local uri="" reason=""
  if [ "$BACKEND" != "sqlite" ]; then
    if uri=$(prepare_postgres 2>"$STATE/postgres.err"); then :; else
      reason=$(tail -1 "$STATE/postgres.err"); uri=""
      if [ "$BACKEND" = "postgres" ]; then echo "mlflow-server: $reason" >&2; exit 1; fi
    fi
    grep "created database" "$STATE/postgres.err" || true
  else
    reason="MLFLOW_BACKEND=sqlite"
  fi
  if [ -z "$uri" ]; then
    uri="sqlite:///$STATE/mlflow.db"
    echo "mlflow-server: using SQLite ($STATE/mlflow.db) because $reason"
  fi
  local allowed=()
  if [ -n "${MLFLOW_ALLOWED_HOSTS:-}" ]; then allowed=(--allowed-hosts "$MLFLOW_ALLOWED_HOSTS"); fi
  # Own session (setsid) so `stop` can end the server and every worker it forks as one process group.
  # Job execution off and 1 worker: 2 processes and ~0.5 GB instead of 15 and ~2.6 GB.
  if [ -n "${MLFLOW_PG_PASSWORD:-}" ]; then export PGPASSWORD="$MLFLOW_PG_PASSWORD"; fi
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid "$PY" -m mlflow server \
    --host "$HOST" --port "$PORT" --workers 1 \
    --backend-store-uri "$uri" --artifacts-destination "$STATE/artifacts" "${allowed[@]}" \
    >"$STATE/server.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  case "$uri" in
    postgresql*) echo "postgresql $PG_USER@$PG_HOST:$PG_PORT/$PG_DB" > "$STATE/backend.txt" ;;
    *) echo "$uri" > "$STATE/backend.txt" ;;
  esac
  for _ in $(seq 1 90); do
    if health_ok; then
      echo "MLflow tracking server: http://$HOST:$PORT (backend ${uri%%:*}, artifacts $STATE/artifacts, pid $(cat "$PIDFILE"))"
      echo "  unlearn-sweep run presets/tofu-mini.yaml --tracking-uri http://127.0.0.1:$PORT"
      return 0
    fi
    if ! running_pid >/dev/null; then break; fi
    sleep 1
  done
  echo "mlflow-server: the server did not answer /health; last log lines:" >&2
  tail -20 "$STATE/server.log" >&2
  cmd_stop >/dev/null 2>&1 || true
  exit 1
}

cmd_stop() {
  local pid
  if ! pid=$(running_pid); then echo "mlflow-server: not running"; rm -f "$PIDFILE"; return 0; fi
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
  for _ in $(seq 1 30); do
    if ! pgrep -g "$pid" >/dev/null 2>&1; then break; fi
    sleep 0.5
  done
  pgrep -g "$pid" >/dev/null 2>&1 && kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
  echo "mlflow-server: stopped (pid $pid)"
}

cmd_status() {
  local pid
  if ! pid=$(running_pid); then echo "mlflow-server: not running"; return 1; fi
  if health_ok; then h="healthy"; else h="not answering /health"; fi
  echo "mlflow-server: pid $pid, http://$HOST:$PORT, $h, backend $(cat "$STATE/backend.txt" 2>/dev/null)"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: bash cluster/mlflow-server.sh start|stop|status" >&2; exit 2 ;;
esac
