"""The single-machine cluster scripts really work: two loopback Ray nodes, and an MLflow server on PostgreSQL.

    pytest tests/cluster/test_local_cluster_scripts.py            # slow: starts real servers (~1-2 min)
    pytest tests/cluster/test_local_cluster_scripts.py -m "not slow"   # only the shell syntax check

Every server a test starts listens on 127.0.0.1 only (checked on the sockets of its processes) and is
stopped by the test, in a finally block, even when an assertion fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
LOCAL_CLUSTER = REPO / "cluster" / "local-cluster.sh"
MLFLOW_SERVER = REPO / "cluster" / "mlflow-server.sh"
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def port_or_free(default: int) -> int:
    return free_port() if port_open(default) else default


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def listening(procs) -> list[tuple[str, str, int]]:
    """(process name, ip, port) of every listening TCP socket of `procs`."""
    out = []
    for proc in procs:
        try:
            conns = proc.net_connections(kind="inet")
            name = proc.name()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        out += [(name, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return out


def run(cmd: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_scripts_are_valid_bash():
    for script in (LOCAL_CLUSTER, MLFLOW_SERVER):
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- two Ray nodes on 127.0.0.1


def ray_processes(temp_root: str, gcs_port: int) -> list[psutil.Process]:
    """Processes of this test's cluster: their command line names its temp root or GCS address; plus children."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "ray" in cmdline and (temp_root in cmdline or f"127.0.0.1:{gcs_port}" in cmdline):
            found[proc.pid] = proc
            try:
                found.update((c.pid, c) for c in proc.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
    return [p for p in found.values() if alive(p) and p.pid != os.getpid()]


NODES_PROBE = """
import json, sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
print("NODES=" + json.dumps([{k: n[k] for k in ("NodeID", "Alive", "NodeManagerAddress", "Resources")} for n in ray.nodes()]))
ray.shutdown()
"""


@pytest.mark.slow
def test_local_cluster_two_loopback_nodes_then_stop():
    temp_root = tempfile.mkdtemp(prefix="usr-", dir="/tmp")  # short: Ray's unix socket paths must fit 107 bytes
    gcs_port, dash_port = port_or_free(6380), port_or_free(8265)
    env = {**os.environ, "UNLEARN_SWEEP_RAY_TMP": temp_root, "UNLEARN_SWEEP_RAY_PORT": str(gcs_port),
           "UNLEARN_SWEEP_DASHBOARD_PORT": str(dash_port), "UNLEARN_SWEEP_RAY_CLIENT_PORT": str(free_port()),
           "PYTHON": sys.executable, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    try:
        started = run(["bash", str(LOCAL_CLUSTER), "start"], env, timeout=240)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"ray job submit --address http://127.0.0.1:{dash_port}" in started.stdout
        assert "unlearn-sweep run" in started.stdout

        probe = run([sys.executable, "-c", NODES_PROBE, f"127.0.0.1:{gcs_port}"], env, timeout=120)
        assert probe.returncode == 0, probe.stderr[-3000:]
        nodes = json.loads(probe.stdout.split("NODES=", 1)[1])
        assert len(nodes) == 2 and all(n["Alive"] for n in nodes)
        assert {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}
        head = [n for n in nodes if n["Resources"].get("head_node") == 1.0]
        worker = [n for n in nodes if n["Resources"].get("worker_node") == 1.0]
        assert len(head) == 1 and len(worker) == 1 and head != worker
        assert "worker_node" not in head[0]["Resources"] and "head_node" not in worker[0]["Resources"]

        procs = ray_processes(temp_root, gcs_port)
        names = [p.name() for p in procs]
        assert names.count("raylet") == 2 and names.count("gcs_server") == 1, names
        sockets = listening(procs)
        assert ("gcs_server", "::ffff:127.0.0.1", gcs_port) in sockets or \
               ("gcs_server", "127.0.0.1", gcs_port) in sockets, sockets
        assert any(port == dash_port for _, _, port in sockets)
        assert [s for s in sockets if s[1] not in LOOPBACK] == []
        with urllib.request.urlopen(f"http://127.0.0.1:{dash_port}/api/version", timeout=10) as resp:
            assert resp.status == 200

        stopped = run(["bash", str(LOCAL_CLUSTER), "stop"], env, timeout=120)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert ray_processes(temp_root, gcs_port) == []
        assert not port_open(gcs_port) and not port_open(dash_port)
    finally:
        for proc in ray_processes(temp_root, gcs_port):  # only if the script's stop failed
            proc.kill()
        shutil.rmtree(temp_root, ignore_errors=True)


# ---------------------------------------------------------------- MLflow server on PostgreSQL / SQLite


def health(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
        return resp.status


def server_group(state: Path) -> list[psutil.Process]:
    pid = int((state / "server.pid").read_text())
    return [p for p in psutil.process_iter() if alive(p) and _pgid(p) == pid]


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except (ProcessLookupError, PermissionError):
        return None


def _kill_group(state: Path) -> None:
    pid_file = state / "server.pid"
    if pid_file.exists():
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def _mlflow_env(state: Path, port: int, **extra: str) -> dict:
    return {**os.environ, "UNLEARN_SWEEP_MLFLOW_DIR": str(state), "MLFLOW_PORT": str(port),
            "PYTHON": sys.executable, **extra}


def _check_server_and_stop(env: dict, state: Path, port: int) -> None:
    assert health(port) == 200
    group = server_group(state)
    sockets = listening(group)
    assert any(p == port for _, _, p in sockets), sockets
    assert [s for s in sockets if s[1] not in LOOPBACK] == []
    stopped = run(["bash", str(MLFLOW_SERVER), "stop"], env, timeout=60)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert [p for p in group if alive(p)] == []
    assert not port_open(port)


@pytest.mark.slow
def test_mlflow_server_on_local_postgres(tmp_path):
    if not port_open(5432):
        pytest.skip("no PostgreSQL on 127.0.0.1:5432: the PostgreSQL path of mlflow-server.sh cannot be tested")
    psycopg = pytest.importorskip("psycopg", reason='psycopg is not installed (requirements: psycopg[binary])')
    db, port, state = f"mlflow_test_{uuid.uuid4().hex[:8]}", free_port(), tmp_path / "mlflow"
    env = _mlflow_env(state, port, MLFLOW_PG_DB=db, MLFLOW_BACKEND="postgres")
    try:
        started = run(["bash", str(MLFLOW_SERVER), "start"], env, timeout=180)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"created database '{db}'" in started.stdout
        assert "backend postgresql" in started.stdout

        # A run created through the server lands in the PostgreSQL database it created.
        body = json.dumps({"name": "cluster-test"}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/create", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            experiment_id = json.loads(resp.read())["experiment_id"]
        with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=db) as conn:
            row = conn.execute("SELECT name FROM experiments WHERE experiment_id = %s",
                               (int(experiment_id),)).fetchone()
        assert row == ("cluster-test",)

        _check_server_and_stop(env, state, port)
    finally:
        run(["bash", str(MLFLOW_SERVER), "stop"], env, timeout=60)
        _kill_group(state)
        with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.mark.slow
def test_mlflow_server_falls_back_to_sqlite_with_the_reason(tmp_path):
    closed = free_port()  # nothing listens there: PostgreSQL "unreachable"
    port, state = free_port(), tmp_path / "mlflow"
    env = _mlflow_env(state, port, MLFLOW_PG_PORT=str(closed))
    try:
        started = run(["bash", str(MLFLOW_SERVER), "start"], env, timeout=180)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"using SQLite ({state}/mlflow.db) because PostgreSQL at 127.0.0.1:{closed} is unreachable" \
            in started.stdout
        assert (state / "mlflow.db").is_file()
        _check_server_and_stop(env, state, port)
    finally:
        run(["bash", str(MLFLOW_SERVER), "stop"], env, timeout=60)
        _kill_group(state)
